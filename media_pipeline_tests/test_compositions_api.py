"""The composition routes on a real domain database and a real Dagster instance (runs execute in
process): CRUD and validation, the generators list, renders with cache hits and misses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

import media_pipeline.definitions  # noqa: F401  (exports setting defaults once, before any test's env)
from media_pipeline.core.segments import count_frames
from media_pipeline.settings import Settings
from media_pipeline_tests.area_api import *  # noqa: F403  (fixtures: app, client)
from media_pipeline_tests.area_api import area_settings
from media_pipeline_tests.test_api_support import assert_problem

TOKEN = "composition-api-token-3f9a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def settings(domain_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    (tmp_path / "media").mkdir()
    extra = {
        "MEDIA_PIPELINE_MEDIA_ROOTS": str(tmp_path / "media"),
        "MEDIA_PIPELINE_WATCH_DIRS": "",
        "MEDIA_PIPELINE_RUNWAY_API_KEY": "",
        "MEDIA_PIPELINE_STABILITY_API_KEY": "",
    }
    return area_settings(monkeypatch, tmp_path, domain_url, TOKEN, extra)


def local(frames: int | None = None, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"generator": "local", "params": {"source": "gradients"}}
    body.update({"frames": frames} if frames is not None else {})
    body.update(kw)
    return body


def upload(client: TestClient, path: Path) -> dict[str, Any]:
    """`path` added to the media library through its API."""
    response = client.post(f"/v1/media?filename={path.name}", content=path.read_bytes(), headers=AUTH)
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def create(client: TestClient, **kw: Any) -> dict[str, Any]:
    body = {"name": "promo", "rate": "30000/1001", "resolution": "160x90",
            "segments": [local(12, seed=1, transition={"type": "crossfade", "frames": 3}),
                         local(seconds=0.5, seed=2, params={"source": "title"}, prompt="Hello: [it's] 100%"),
                         local(9, params={"source": "color", "color": "#336699"})]}  # fmt: skip
    body.update(kw)
    response = client.post("/v1/compositions", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_crud_seeds_seconds_and_order(client: TestClient) -> None:
    composition = create(client)
    cid = composition["id"]
    first, second, third = composition["segments"]
    assert composition["rate"] == "30000/1001" and (composition["width"], composition["height"]) == (160, 90)
    assert second["frames"] == 15 and second["seconds"] == "0.5"  # floor(0.5 * 29.97 + 1/2)
    assert isinstance(third["seed"], int)  # "random", drawn once and stored
    assert composition["total_frames"] == 12 + 15 + 9 - 3
    assert client.get(f"/v1/compositions/{cid}", headers=AUTH).json()["segments"][2]["seed"] == third["seed"]
    assert first["params"] == {"source": "gradients", "color": None, "text_color": None, "speed": 0.01}

    listed = client.get("/v1/compositions", headers=AUTH).json()
    assert [c["id"] for c in listed["items"]] == [cid]

    updated = client.put(f"/v1/compositions/{cid}", json={"name": "promo 2", "rate": "25", "resolution": "320x180"},
                         headers=AUTH).json()  # fmt: skip
    assert updated["rate"] == "25" and [s["frames"] for s in updated["segments"]] == [12, 15, 9]

    added = client.post(f"/v1/compositions/{cid}/segments", json=local(seconds="1/2"), headers=AUTH)
    assert added.status_code == 201 and added.json()["frames"] == 13 and added.json()["position"] == 3  # 12.5 up

    replaced = client.put(f"/v1/segments/{third['id']}", json=local(9, seed="random"), headers=AUTH).json()
    assert replaced["position"] == 2
    assert replaced["seed"] != third["seed"]  # a new draw (the chance of the same one is 1 in 2**32)

    order = [added.json()["id"], third["id"], first["id"], second["id"]]
    reordered = client.post(f"/v1/compositions/{cid}/segments/reorder", json={"order": order}, headers=AUTH).json()
    assert [s["id"] for s in reordered["segments"]] == order
    bad = client.post(f"/v1/compositions/{cid}/segments/reorder", json={"order": order[:2]}, headers=AUTH)
    assert assert_problem(bad, 422, "validation_error")["errors"][0]["field"] == "order"

    assert client.delete(f"/v1/segments/{first['id']}", headers=AUTH).status_code == 204
    positions = [s["position"] for s in client.get(f"/v1/compositions/{cid}", headers=AUTH).json()["segments"]]
    assert positions == [0, 1, 2]
    assert_problem(client.get(f"/v1/segments/{first['id']}", headers=AUTH), 404, "not_found")
    assert client.delete(f"/v1/compositions/{cid}", headers=AUTH).status_code == 204
    assert_problem(client.get(f"/v1/compositions/{cid}", headers=AUTH), 404, "not_found")
    assert_problem(client.get(f"/v1/segments/{second['id']}", headers=AUTH), 404, "not_found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"segments": [local(5, generator="nope")]}, "segments.0.generator"),
        ({"segments": [local(5, params={"source": "plasma"})]}, "segments.0.params.source"),
        ({"segments": [local(5, params={"color": "red; drawtext"})]}, "segments.0.params.color"),
        ({"segments": [local(5, seconds=1)]}, "segments.0"),
        ({"segments": [local(5, seed=-1)]}, "segments.0.seed"),
        ({"rate": "fast"}, "rate"),
        ({"resolution": "161x90"}, "resolution"),
        ({"soundtrack": "m_1"}, "soundtrack"),
    ],
)
def test_invalid_compositions_are_refused_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/compositions", json={"name": "x", **body}, headers=AUTH)
    problem = assert_problem(response, 422, "validation_error")
    assert problem["errors"][0]["field"] == field, problem


def test_generators_list_their_schema_and_keys(client: TestClient) -> None:
    listed = {g["id"]: g for g in client.get("/v1/generators", headers=AUTH).json()}
    assert {"local", "runway", "stability"} <= set(listed)
    assert listed["local"]["available"] and not listed["local"]["needs_key"]
    assert "source" in listed["local"]["params_schema"]["properties"]
    runway = listed["runway"]
    assert runway["needs_key"] and not runway["key_set"] and not runway["available"]
    assert "MEDIA_PIPELINE_RUNWAY_API_KEY" in runway["unavailable_reason"]
    assert runway["durations"] == ["5", "10"] and runway["pool"] == "runway"


def items_of(client: TestClient, job_id: str) -> dict[str, dict[str, Any]]:
    job = client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()
    assert job["status"] == "succeeded", job
    return {item["id"]: item for item in job["items"]}


def test_renders_generate_only_what_is_not_cached(client: TestClient, settings: Settings) -> None:
    composition = create(client)
    cid, ids = composition["id"], [s["id"] for s in composition["segments"]]
    response = client.post(f"/v1/compositions/{cid}/renders", headers=AUTH)
    assert response.status_code == 202, response.text
    render, job = response.json()["render"], response.json()["job"]
    assert job["kind"] == "composition_render" and job["subject_type"] == "composition"
    assert job["subject_id"] == str(cid)
    items = items_of(client, job["id"])
    assert [items[f"segment_{i}"]["cache"] for i in ids] == ["miss"] * 3
    assert all(items[f"segment_{i}"]["status"] == "succeeded" for i in ids)
    assert all(items[f"segment_{i}"]["task_id"].startswith("local-") for i in ids)
    video = settings.artifact_root / "compositions" / str(cid) / "output" / f"{render['id']}.mp4"
    assert count_frames(video) == composition["total_frames"]
    result = client.get(f"/v1/compositions/{cid}/renders/{render['id']}", headers=AUTH).json()
    assert result["frames"] == composition["total_frames"] and len(result["segments"]) == 3

    again = client.post(f"/v1/compositions/{cid}/renders", headers=AUTH).json()
    items = items_of(client, again["job"]["id"])
    assert [items[f"segment_{i}"]["cache"] for i in ids] == ["hit"] * 3
    assert {items[f"segment_{i}"]["status"] for i in ids} == {"reused"}

    forced = client.post(f"/v1/compositions/{cid}/renders", json={"force_segments": [ids[1]]}, headers=AUTH).json()
    items = items_of(client, forced["job"]["id"])
    assert [items[f"segment_{i}"]["cache"] for i in ids] == ["hit", "miss", "hit"]

    unknown = client.post(f"/v1/compositions/{cid}/renders", json={"force_segments": [999999]}, headers=AUTH)
    assert_problem(unknown, 409, "unknown_segment")
    empty = client.post("/v1/compositions", json={"name": "empty"}, headers=AUTH).json()
    assert_problem(client.post(f"/v1/compositions/{empty['id']}/renders", headers=AUTH), 409, "no_segments")
    assert_problem(client.post("/v1/compositions/999999/renders", headers=AUTH), 404, "not_found")


def test_a_generator_without_its_key_fails_validate_with_a_sentence(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    Image.new("RGB", (64, 36), (200, 80, 40)).save(tmp_path / "media" / "still.png")
    still = upload(client, tmp_path / "media" / "still.png")
    runway = {"generator": "runway", "frames": 24, "inputs": [still["id"]], "prompt": "a slow push in"}
    composition = create(client, segments=[local(6), runway])
    job = client.post(f"/v1/compositions/{composition['id']}/renders", headers=AUTH).json()["job"]
    job = client.get(f"/v1/jobs/{job['id']}", headers=AUTH).json()
    assert job["status"] == "failed"
    assert "needs MEDIA_PIPELINE_RUNWAY_API_KEY, which is not set" in job["error"], job["error"]


def test_the_same_idempotency_key_replays_the_render_it_started(client: TestClient) -> None:
    composition = create(client)
    url, headers = f"/v1/compositions/{composition['id']}/renders", {**AUTH, "Idempotency-Key": "promo-cut-1"}
    first = client.post(url, headers=headers)
    assert first.status_code == 202, first.text
    again = client.post(url, headers=headers)
    assert again.status_code == 202, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["job"]["id"] == first.json()["job"]["id"]
    assert again.json()["render"] == first.json()["render"]
    other = client.post(url, json={"force_segments": [composition["segments"][0]["id"]]}, headers=headers)
    assert_problem(other, 409, "idempotency_conflict")
