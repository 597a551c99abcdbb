"""Authentication on every route, problem documents, upload limits, unreadable uploads, Dagster
being down, readiness, CORS and the OpenAPI error documentation."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.dagster_gateway import GraphQLGateway
from api.main import create_app
from media_pipeline import db
from media_pipeline.db.models import CutVersion, Job
from media_pipeline.settings import Settings
from media_pipeline_tests.test_api_support import *  # noqa: F403  (fixtures)
from media_pipeline_tests.test_api_support import AUTH, PROBLEM, TOKEN, assert_problem, three_shot_cut, upload

PATH_VALUES = {"cut_id": "1", "shot_id": "1", "job_id": str(uuid.uuid4()), "path": "cuts/x/thumb.jpg"}


class _PathValues(dict[str, str]):
    # Any other area's path parameter (slideshow_id, extraction_id, ...) gets a well-formed id.
    def __missing__(self, key: str) -> str:
        return "x1"


def app_routes(app: FastAPI) -> list[tuple[str, set[str]]]:
    """(path, methods) of every API route in app.routes, through included routers."""
    try:
        from fastapi.routing import iter_route_contexts  # FastAPI >= 0.16x includes routers lazily
    except ImportError:
        return [(route.path, route.methods) for route in app.routes if isinstance(route, APIRoute)]
    return [
        (str(context.path), set(context.methods or ()))
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
    ]


def v1_requests(app: FastAPI) -> list[tuple[str, str]]:
    requests = []
    for route_path, methods in app_routes(app):
        if route_path.startswith("/v1"):
            path = route_path.replace("{path:path}", "{path}").format_map(_PathValues(PATH_VALUES))
            requests.extend((method, path) for method in sorted(methods))
    return requests


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_every_v1_route_needs_the_token(app: FastAPI, client: TestClient) -> None:
    requests = v1_requests(app)
    documented = {
        (method.upper(), path.format_map(_PathValues(PATH_VALUES)))
        for path, item in app.openapi()["paths"].items()
        if path.startswith("/v1")
        for method in item
    }
    assert set(requests) == documented and len(requests) >= 13
    wrong = [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer "},
        {"X-API-Key": "wrong-token"},
        {"X-API-Key": TOKEN.upper()},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"X-API-Key": "tökén".encode("latin-1")},  # type: ignore[dict-item]  (non-ASCII bytes)
    ]
    for method, path in requests:
        for headers in wrong:
            response = client.request(method, path, headers=headers)
            body = assert_problem(response, 401, "unauthorized")
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert TOKEN not in response.text and TOKEN[:6] not in body["detail"]
        for good in (AUTH, {"X-API-Key": TOKEN}):
            assert client.request(method, path, headers=good).status_code != 401, (method, path)
    # Health routes are open.
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_token_is_checked_before_the_body_is_read(client: TestClient) -> None:
    # Bigger than the upload limit: an anonymous client gets 401, not 413, and nothing is read.
    response = client.post("/v1/cuts", content=b"x" * 200_000, headers={"Content-Type": "application/octet-stream"})
    assert_problem(response, 401, "unauthorized")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_unset_token_refuses_everyone(api_settings: Settings, gateway) -> None:  # type: ignore[no-untyped-def]
    settings = api_settings.model_copy(update={"api_token": ""})
    with TestClient(create_app(settings, gateway=gateway)) as client:
        for headers in ({}, {"Authorization": "Bearer "}, {"X-API-Key": ""}):
            assert_problem(client.get("/v1/cuts", headers=headers), 401, "unauthorized")


def test_unknown_ids_are_404_problems(client: TestClient) -> None:
    for path in ("/v1/cuts/424242", "/v1/cuts/424242/shots", "/v1/shots/424242", f"/v1/jobs/{uuid.uuid4()}"):
        body = assert_problem(client.get(path, headers=AUTH), 404, "not_found")
        assert "424242" in body["detail"] or "job" in body["detail"]
    assert_problem(client.post("/v1/cuts/424242/thumbnails", json={}, headers=AUTH), 404, "not_found")
    assert_problem(client.post("/v1/shots/424242/thumbnail", json={}, headers=AUTH), 404, "not_found")
    assert_problem(client.post(f"/v1/jobs/{uuid.uuid4()}/cancel", headers=AUTH), 404, "not_found")
    assert_problem(client.get("/v1/no-such-route", headers=AUTH), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "field"),
    [
        ("post", "/v1/cuts/1/thumbnails", {"json": {"frame": "sideways"}}, "frame"),
        ("post", "/v1/cuts/1/thumbnails", {"json": {"frame": -3}}, "frame"),
        ("post", "/v1/cuts/1/thumbnails", {"json": {"width": 5}}, "width"),
        ("post", "/v1/cuts/1/thumbnails", {"json": {"width": "480"}}, "width"),
        ("post", "/v1/cuts/1/thumbnails", {"json": {"widht": 480}}, "widht"),
        ("post", "/v1/shots/1/thumbnail", {"json": {"force": "yes"}}, "force"),
        ("post", "/v1/cuts/1/final-video", {"json": {"preset": "turbo"}}, "preset"),
        ("post", "/v1/cuts/1/final-video", {"json": {"resolution": "1921x1080"}}, "resolution"),
        ("post", "/v1/cuts/1/final-video", {"json": {"resolution": "7682x4320"}}, "resolution"),
        ("post", "/v1/cuts/1/final-video", {"json": {"resolution": 1080}}, "resolution"),
        ("get", "/v1/cuts", {"params": {"limit": 0}}, "limit"),
        ("get", "/v1/cuts", {"params": {"cursor": "bm90LWEtY3Vyc29y"}}, "cursor"),
        ("get", "/v1/cuts", {"params": {"cursor": "%%%"}}, "cursor"),
        ("get", "/v1/jobs", {"params": {"status": "done"}}, "status"),
        ("get", "/v1/jobs", {"params": {"cursor": "e30"}}, "cursor"),
        ("get", "/v1/jobs/not-a-uuid", {}, "job_id"),
        ("get", "/v1/cuts/0", {}, "cut_id"),
        ("get", "/v1/cuts/99999999999999", {}, "cut_id"),
        ("post", "/v1/cuts/1/thumbnails", {"json": {}, "headers": {"Idempotency-Key": "k" * 300}}, "Idempotency-Key"),
        ("post", "/v1/cuts", {"data": {"project": "show"}}, "name"),
    ],
)
def test_invalid_options_are_422_problems_naming_the_field(
    client: TestClient, method: str, path: str, kwargs: dict, field: str
) -> None:
    kwargs = dict(kwargs)  # parametrize shares the dict between the SQLite and Postgres runs
    headers = {**AUTH, **kwargs.pop("headers", {})}
    response = getattr(client, method)(path, headers=headers, **kwargs)
    body = assert_problem(response, 422, "validation_error")
    fields = [error["field"] for error in body["errors"]]
    assert field in fields, body
    assert field in body["detail"]


def test_unreadable_uploads_are_422_with_the_reason_and_store_nothing(
    client: TestClient, api_settings: Settings, tmp_path: Path
) -> None:
    corrupt = tmp_path / "broken.otio"
    corrupt.write_text('{"OTIO_SCHEMA": "Timeline.1", "tracks": ')
    body = assert_problem(upload(client, corrupt), 422, "unreadable_timeline")
    assert body["detail"].startswith("broken.otio could not be read as otio_json")
    assert body["errors"][0]["field"] == "file"

    unknown = tmp_path / "notes.docx"
    unknown.write_bytes(b"PK\x03\x04 not a timeline")
    body = assert_problem(upload(client, unknown), 422, "unreadable_timeline")
    assert "no installed OTIO adapter reads '.docx' files" in body["detail"]

    garbage_edl = tmp_path / "garbage.edl"
    garbage_edl.write_text("001  AX V C 01:00:00:00\n")
    body = assert_problem(upload(client, garbage_edl, rate="25"), 422, "unreadable_timeline")
    assert "garbage.edl" in body["detail"]

    nameless = client.post("/v1/cuts", files={"file": ("", b"x")}, data={"project": "p", "name": "n"}, headers=AUTH)
    assert nameless.status_code == 422

    with db.session_scope(api_settings.database_url) as session:
        assert session.scalar(sa.select(sa.func.count(CutVersion.id))) == 0
        assert session.scalar(sa.select(sa.func.count(Job.id))) == 0
    assert list(api_settings.artifact_root.iterdir()) == []


def _multipart(boundary: str, filename: str, payload: bytes) -> list[bytes]:
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="project"\r\n\r\nshow\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nbig\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return [head, payload, f"\r\n--{boundary}--\r\n".encode()]


def test_oversized_uploads_are_413_before_anything_is_stored(
    client: TestClient, api_settings: Settings, plate: Path, tmp_path: Path
) -> None:
    db.migrate(api_settings.database_url)  # the 413s come before any request touches the database
    limit = api_settings.max_upload_bytes
    big = tmp_path / "big.otio"
    big.write_bytes(b" " * (limit + 1))
    response = upload(client, big)
    body = assert_problem(response, 413, "payload_too_large")
    assert str(limit) in body["detail"]

    # Chunked, no Content-Length: counted while streaming, stopped at the limit.
    boundary = "mpboundary"

    def chunks(payload: bytes) -> Iterator[bytes]:
        for part in _multipart(boundary, "big.otio", payload):
            for start in range(0, len(part), 8192):
                yield part[start : start + 8192]

    headers = {**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    response = client.post("/v1/cuts", content=chunks(b" " * (limit + 10)), headers=headers)
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "payload_too_large")

    with db.session_scope(api_settings.database_url) as session:
        assert session.scalar(sa.select(sa.func.count(CutVersion.id))) == 0
    assert list(api_settings.artifact_root.iterdir()) == []

    # A chunked upload under the limit goes through.
    small = three_shot_cut(tmp_path, plate).read_bytes()
    parts = _multipart(boundary, "reel1.otio", small)
    response = client.post("/v1/cuts", content=iter(parts), headers=headers)
    assert response.status_code == 202, response.text


def test_dagster_unreachable_is_503_and_leaves_nothing_behind(
    api_settings: Settings, instance: dg.DagsterInstance, plate: Path, tmp_path: Path
) -> None:
    down = GraphQLGateway("127.0.0.1", closed_port(), instance=instance)
    with TestClient(create_app(api_settings, gateway=down)) as client:
        body = assert_problem(upload(client, three_shot_cut(tmp_path, plate)), 503, "dagster_unavailable")
        assert "could not be reached" in body["detail"] and "Traceback" not in body["detail"]
        ready = client.get("/readyz")
        body = assert_problem(ready, 503, "not_ready")
        assert body["checks"]["dagster"]["ok"] is False
        assert body["checks"]["database"]["ok"] is True and body["checks"]["artifact_store"]["ok"] is True
    with db.session_scope(api_settings.database_url) as session:
        assert session.scalar(sa.select(sa.func.count(CutVersion.id))) == 0
        assert session.scalar(sa.select(sa.func.count(Job.id))) == 0
    assert list((api_settings.artifact_root / "cuts").iterdir()) == []


def test_every_area_s_launch_with_dagster_unreachable_leaves_no_job_behind(
    api_settings: Settings, instance: dg.DagsterInstance, plate: Path
) -> None:
    down = GraphQLGateway("127.0.0.1", closed_port(), instance=instance)
    extraction = {"items": [{"source": plate.as_uri()}], "frames": {"mode": "frames", "frames": [1]}}
    with TestClient(create_app(api_settings, gateway=down)) as client:
        assert_problem(client.post("/v1/extractions", json=extraction, headers=AUTH), 503, "dagster_unavailable")
        scenes = client.put("/v1/slideshows/trip/scenes", json={"scenes": [{"images": ["a.png"]}]}, headers=AUTH)
        assert scenes.status_code == 200, scenes.text
        assert_problem(client.post("/v1/slideshows/trip/renders", headers=AUTH), 503, "dagster_unavailable")
    with db.session_scope(api_settings.database_url) as session:
        assert session.scalar(sa.select(sa.func.count(Job.id))) == 0
    batches = api_settings.artifact_root / "extractions"
    assert not batches.exists() or not any(batches.rglob("*.json"))  # its request and job files went too


def test_readyz_when_everything_is_up(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {name: {"ok": True, "detail": None} for name in ("database", "artifact_store", "dagster")},
    }


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_unexpected_errors_are_a_generic_500_problem_and_logged(
    api_settings: Settings,
    gateway,
    caplog: pytest.LogCaptureFixture,  # type: ignore[no-untyped-def]
) -> None:
    class Broken:
        def ping(self) -> None:
            raise RuntimeError("secret internals at /srv/db password=hunter2")

    app = create_app(api_settings, gateway=Broken())  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level(logging.ERROR, logger="api"):
        response = client.get("/readyz")
    assert_problem(response, 500, "internal_error")
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    assert "hunter2" in caplog.text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_cors_allows_configured_origins_only(client: TestClient) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    allowed = client.options("/v1/cuts", headers={"Origin": "http://editor.example", **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://editor.example"
    refused = client.options("/v1/cuts", headers={"Origin": "http://evil.example", **preflight})
    assert "access-control-allow-origin" not in refused.headers
    put = {"Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "authorization,x-requested-by"}
    allowed = client.options("/v1/slideshows/trip/scenes", headers={"Origin": "http://editor.example", **put})
    assert allowed.status_code == 200, allowed.text  # slideshows and compositions are written with PUT
    simple = client.get("/v1/cuts", headers={"Origin": "http://editor.example", **AUTH})
    assert simple.headers["access-control-allow-origin"] == "http://editor.example"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_openapi_documents_problem_responses_everywhere(app: FastAPI) -> None:
    schema = app.openapi()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            errors = {status for status in responses if int(status) >= 400}
            assert "500" in errors, (method, path)
            if path.startswith("/v1"):
                assert {"401", "422"} <= errors, (method, path)
                assert operation["security"] == [{"HTTPBearer": []}, {"APIKeyHeader": []}]
            # A slideshow's id is chosen by its client: writing to it creates it, so there is no 404.
            if "{" in path and "{slideshow_id}" not in path:
                assert "404" in errors, (method, path)
            for status in errors:
                assert list(responses[status]["content"]) == [PROBLEM], (method, path, status)
    final = schema["paths"]["/v1/cuts/{cut_id}/final-video"]["post"]
    assert [status for status in final["responses"] if status.startswith("2")] == ["202"]
    assert "cut_not_ingested" in final["responses"]["409"]["description"]
    assert "final_video.mp4" in final["description"]
    assert not [
        status
        for item in schema["paths"].values()
        for op in item.values()
        for status in op["responses"]
        if status == "501"
    ]
    assert "413" in schema["paths"]["/v1/cuts"]["post"]["responses"]
    assert {"206", "416"} <= set(schema["paths"]["/v1/artifacts/{path}"]["get"]["responses"])
