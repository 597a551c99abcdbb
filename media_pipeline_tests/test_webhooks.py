"""Webhooks: a finished job POSTed to a real HTTP server on loopback, signed, retried with
backoff, every attempt recorded and shown; callback URLs that may not be called are refused."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from api.dagster_gateway import InProcessGateway
from api.main import create_app
from media_pipeline.platform import webhooks
from media_pipeline.resources import DatabaseResource
from media_pipeline.settings import Settings, load_settings
from media_pipeline_tests.test_api_support import *  # noqa: F403  (fixtures)
from media_pipeline_tests.test_api_support import AUTH, assert_problem, clip, upload, write_otio

SECRET = "webhook-test-secret-5b1e"


@dataclass
class Receiver:
    """A webhook receiver on loopback that answers each POST with the next status in `answers`
    (the last one repeats) and checks every signature with the shared secret."""

    answers: list[int]
    received: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def handle(self, headers: Any, body: bytes) -> int:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        self.received.append({
            "body": json.loads(body),
            "signature_valid": hmac.compare_digest(headers.get("X-Signature", ""), expected),
            "attempt": headers.get("X-Media-Pipeline-Attempt"),
            "content_type": headers.get("Content-Type"),
        })  # fmt: skip
        return self.answers[min(len(self.received), len(self.answers)) - 1]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(answers=[200])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = state.handle(self.headers, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/job"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def hook_settings(api_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    # In the environment: the sensor (daemon side) reads its settings from there, like the API.
    monkeypatch.setenv("MEDIA_PIPELINE_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("MEDIA_PIPELINE_WEBHOOK_ALLOW_PRIVATE", "true")
    return load_settings()


@pytest.fixture
def hook_client(hook_settings: Settings, instance: dg.DagsterInstance) -> Iterator[TestClient]:
    with TestClient(create_app(hook_settings, gateway=InProcessGateway(instance))) as client:
        yield client


def evaluate_sensor(instance: dg.DagsterInstance, settings: Settings) -> str:
    context = dg.build_sensor_context(
        instance=instance, resources={"database": DatabaseResource(url=settings.database_url)}
    )
    result = webhooks.webhook_deliveries(context)
    return str(result.skip_message if isinstance(result, dg.SkipReason) else result)


def ingest_with_callback(client: TestClient, tmp_path: Path, plate: Path, url: str) -> str:
    timeline = write_otio(tmp_path / "hook.otio", [clip("sh010", plate, 0, 8), clip("sh020", plate, 10, 8)])
    response = upload(client, timeline, callback_url=url)
    assert response.status_code == 202, response.text
    return response.json()["job"]["id"]


def test_finished_job_is_posted_signed_and_the_attempt_is_shown(
    hook_client: TestClient,
    hook_settings: Settings,
    instance: dg.DagsterInstance,
    receiver: Receiver,
    plate: Path,
    tmp_path: Path,
) -> None:
    job_id = ingest_with_callback(hook_client, tmp_path, plate, receiver.url)
    before = hook_client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()
    assert before["callback_url"] == receiver.url and before["deliveries"] == []

    assert evaluate_sensor(instance, hook_settings).startswith("1 attempt(s), 1 delivered")
    (delivery,) = receiver.received
    assert delivery["signature_valid"] and delivery["attempt"] == "1"
    assert delivery["content_type"] == "application/json"
    after = hook_client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()
    # The body is the job as a GET answered it when it was sent (before this attempt was recorded).
    assert delivery["body"] == {**after, "deliveries": [], "updated_at": delivery["body"]["updated_at"]}
    assert delivery["body"]["status"] == "succeeded" and delivery["body"]["items"]
    (attempt,) = after["deliveries"]
    assert (attempt["attempt"], attempt["status_code"], attempt["error"]) == (1, 200, None)
    # Delivered once: later evaluations send nothing.
    assert evaluate_sensor(instance, hook_settings) == "no webhook due"
    assert len(receiver.received) == 1


def test_failed_deliveries_are_retried_with_backoff_and_each_attempt_recorded(
    hook_client: TestClient,
    hook_settings: Settings,
    instance: dg.DagsterInstance,
    receiver: Receiver,
    plate: Path,
    tmp_path: Path,
) -> None:
    receiver.answers = [503, 500, 204]
    job_id = ingest_with_callback(hook_client, tmp_path, plate, receiver.url)
    body = webhooks.api_job_body(instance)

    def deliver(now: dt.datetime) -> list[webhooks.WebhookDelivery]:
        return webhooks.deliver_due(hook_settings.database_url, instance, body, secret=SECRET, allow_private=True,
                                    now=now)  # fmt: skip

    start = dt.datetime.now(dt.UTC)
    assert [a.status_code for a in deliver(start)] == [503]
    # Not before the backoff has passed: 10 s after the first failure, 20 s after the second.
    assert deliver(start + webhooks.FIRST_RETRY - dt.timedelta(seconds=1)) == []
    second = start + webhooks.FIRST_RETRY + dt.timedelta(seconds=1)
    assert [a.status_code for a in deliver(second)] == [500]
    assert deliver(second + 2 * webhooks.FIRST_RETRY - dt.timedelta(seconds=1)) == []
    third = second + 2 * webhooks.FIRST_RETRY + dt.timedelta(seconds=1)
    assert [a.status_code for a in deliver(third)] == [204]
    assert deliver(third + dt.timedelta(days=1)) == []

    assert [r["attempt"] for r in receiver.received] == ["1", "2", "3"]
    assert all(r["signature_valid"] for r in receiver.received)
    deliveries = hook_client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()["deliveries"]
    assert [(d["attempt"], d["status_code"]) for d in deliveries] == [(1, 503), (2, 500), (3, 204)]
    assert deliveries[0]["error"] == "the receiver answered HTTP 503" and deliveries[2]["error"] is None
    # The attempt that failed before is in the body of the next one.
    assert [d["attempt"] for d in receiver.received[2]["body"]["deliveries"]] == [1, 2]


def test_attempts_are_bounded_and_an_unreachable_receiver_is_recorded(
    hook_client: TestClient, hook_settings: Settings, instance: dg.DagsterInstance, plate: Path, tmp_path: Path
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/hook"
    job_id = ingest_with_callback(hook_client, tmp_path, plate, closed)
    body = webhooks.api_job_body(instance)
    now = dt.datetime.now(dt.UTC)
    made = 0
    for _ in range(webhooks.MAX_ATTEMPTS + 2):
        made += len(webhooks.deliver_due(hook_settings.database_url, instance, body, secret=SECRET,
                                         allow_private=True, now=now))  # fmt: skip
        now += dt.timedelta(days=1)
    assert made == webhooks.MAX_ATTEMPTS
    deliveries = hook_client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()["deliveries"]
    assert [d["attempt"] for d in deliveries] == list(range(1, webhooks.MAX_ATTEMPTS + 1))
    assert all(d["status_code"] is None and d["error"].startswith("no answer") for d in deliveries)


def test_unfinished_jobs_are_not_posted(
    hook_client: TestClient, hook_settings: Settings, instance: dg.DagsterInstance, receiver: Receiver
) -> None:
    from media_pipeline_tests.test_api_status import add_job, add_run

    job_id = add_job(hook_settings.database_url, add_run(instance, dg.DagsterRunStatus.STARTED))
    from media_pipeline import db
    from media_pipeline.db.models import Job

    with db.session_scope(hook_settings.database_url) as session:
        session.get(Job, job_id).callback_url = receiver.url  # type: ignore[union-attr]
    assert evaluate_sensor(instance, hook_settings) == "no webhook due"
    assert receiver.received == []


def test_callback_urls_that_may_not_be_called_are_refused(
    client: TestClient, api_settings: Settings, monkeypatch: pytest.MonkeyPatch, plate: Path, tmp_path: Path
) -> None:
    timeline = write_otio(tmp_path / "r.otio", [clip("sh010", plate, 0, 8)])
    # No secret to sign with: refused before anything is stored.
    body = assert_problem(upload(client, timeline, callback_url="https://hooks.example/job"), 422, "validation_error")
    assert body["errors"][0]["field"] == "callback_url" and "MEDIA_PIPELINE_WEBHOOK_SECRET" in body["detail"]
    assert client.get("/v1/cuts", headers=AUTH).json()["items"] == []

    monkeypatch.setenv("MEDIA_PIPELINE_WEBHOOK_SECRET", SECRET)
    with TestClient(create_app(load_settings(), gateway=client.app.state.gateway)) as strict:  # type: ignore[attr-defined]
        for url, words in [
            ("http://127.0.0.1:9/hook", "loopback, private or reserved"),
            ("http://10.1.2.3/hook", "loopback, private or reserved"),
            ("http://[::1]/hook", "loopback, private or reserved"),
            ("http://169.254.169.254/latest", "loopback, private or reserved"),
            ("ftp://hooks.example/job", "http:// or https://"),
            ("file:///etc/passwd", "http:// or https://"),
            ("https://user:pw@hooks.example/job", "user name or password"),
            ("hooks.example/job", "http:// or https://"),
        ]:
            problem = assert_problem(upload(strict, timeline, callback_url=url), 422, "validation_error")
            assert problem["errors"][0]["field"] == "callback_url" and words in problem["detail"], (url, problem)
        cut_id = client.get("/v1/cuts", headers=AUTH).json()["items"]
        assert cut_id == []
        # JSON job requests carry it too.
        refused = strict.post("/v1/cuts/1/thumbnails", json={"callback_url": "gopher://x"}, headers=AUTH)
        assert assert_problem(refused, 422, "validation_error")["errors"][0]["field"] == "callback_url"


def test_a_private_target_is_refused_again_at_delivery(
    hook_client: TestClient,
    hook_settings: Settings,
    instance: dg.DagsterInstance,
    receiver: Receiver,
    plate: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_id = ingest_with_callback(hook_client, tmp_path, plate, receiver.url)
    monkeypatch.setenv("MEDIA_PIPELINE_WEBHOOK_ALLOW_PRIVATE", "false")  # the operator changed their mind
    assert evaluate_sensor(instance, hook_settings).startswith("1 attempt(s), 0 delivered")
    assert receiver.received == []
    (attempt,) = hook_client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()["deliveries"]
    assert attempt["status_code"] is None and "loopback, private or reserved" in attempt["error"]
