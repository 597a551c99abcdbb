"""The Runway and Stability adapters against fake providers: real HTTP servers on loopback that
speak each provider's task protocol, with throttling, Retry-After, 5xx answers, failed tasks,
a cancelled render and a slow download."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.dagster_gateway import InProcessGateway
from api.main import create_app
from media_pipeline.compositions import render
from media_pipeline.compositions.generators.base import GenerationRequest, Generator, GeneratorError, InputMedia
from media_pipeline.compositions.generators.local import LocalGenerator
from media_pipeline.compositions.generators.providers import RunwayGenerator, StabilityGenerator, retry_after
from media_pipeline.compositions.render import CompositionSpec, RenderError, SegmentSpec
from media_pipeline.core.segments import count_frames
from media_pipeline.resources import ArtifactStore
from media_pipeline.settings import load_settings
from media_pipeline_tests.composition_media import library, stored


class Provider(ThreadingHTTPServer):
    """One fake provider: every request is recorded (method, path, headers, when)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[dict[str, Any]] = []
        self.tasks: dict[str, list[Any]] = {}  # task id -> what each poll answers, the last repeated
        self.throttle_submits = 0  # answer this many submits with 429 first
        self.slow_download = 0.0  # seconds between the download's chunks
        self.clip = b""
        self.cancelled: list[str] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Provider

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        entry = {"method": self.command, "path": self.path, "headers": dict(self.headers), "at": time.monotonic(),
                 "body": body}  # fmt: skip
        with self.server.lock:
            self.server.requests.append(entry)
        return entry

    def do_POST(self) -> None:
        entry = self._record()
        if entry["headers"].get("Authorization") != "Bearer sk-test":
            return self._answer(401, {"error": "bad key"})
        with self.server.lock:
            if self.server.throttle_submits:
                self.server.throttle_submits -= 1
                return self._answer(429, {"error": "slow down"}, {"Retry-After": "1"})
        task = f"task-{len(self.server.tasks) + 1}"
        script: list[Any] = ["PENDING", "THROTTLED", 503, "RUNNING", "SUCCEEDED"]
        if b"please fail" in entry["body"]:
            script = ["RUNNING", "FAILED"]
        if b"forever" in entry["body"]:
            script = ["RUNNING"]
        self.server.tasks[task] = script
        self._answer(200, {"id": task})

    def do_DELETE(self) -> None:
        entry = self._record()
        task = entry["path"].rsplit("/", 1)[-1]
        self.server.cancelled.append(task)
        self.server.tasks[task] = ["CANCELLED"]
        self._answer(204)

    def do_GET(self) -> None:
        entry = self._record()
        path = entry["path"]
        if path.startswith("/files/"):
            return self._download()
        task = path.rsplit("/", 1)[-1]
        script = self.server.tasks.get(task)
        if script is None:
            return self._answer(404, {"error": "no such task"})
        step = script.pop(0) if len(script) > 1 else script[0]
        if path.startswith("/v2beta/"):
            return self._stability(step)
        if isinstance(step, int):
            return self._answer(step, {"error": "upstream"}, {"Retry-After": "0"})
        body: dict[str, Any] = {"id": task, "status": step}
        if step == "RUNNING":
            body["progress"] = 0.4
        if step == "SUCCEEDED":
            body["output"] = [f"{self.server.url}/files/{task}.mp4"]
        if step == "FAILED":
            body.update(failure="the prompt was refused by moderation", failureCode="SAFETY.INPUT.TEXT")
        self._answer(200, body)

    def _stability(self, step: Any) -> None:
        if step in ("PENDING", "RUNNING", "THROTTLED"):
            return self._answer(202, {"id": "x", "status": "in-progress"})
        if isinstance(step, int):
            return self._answer(step, {"name": "server_error", "errors": ["try again"]}, {"Retry-After": "0"})
        if step == "FAILED":
            return self._answer(400, {"name": "content_moderation", "errors": ["the image was flagged"]})
        self._download()

    def _download(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(self.server.clip)))
        self.end_headers()
        chunk = max(1, len(self.server.clip) // 4)
        for start in range(0, len(self.server.clip), chunk):
            self.wfile.write(self.server.clip[start : start + chunk])
            self.wfile.flush()
            time.sleep(self.server.slow_download)


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Provider]:
    server = Provider()
    # The provider's clip: 2 s at 24 fps, 128x72 (not the composition's rate, size or length).
    local = LocalGenerator()
    request = GenerationRequest(
        prompt="", negative_prompt="", params={"source": "testsrc2"}, seed=1, frames=48, rate=Fraction(24),
        width=128, height=72, seconds=Fraction(2), workdir=tmp_path,
    )  # fmt: skip
    task = local.submit(request)
    local.fetch(task, tmp_path / "provider.mp4")
    server.clip = (tmp_path / "provider.mp4").read_bytes()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class Hooks:
    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def stage(self, name: str) -> None:
        pass

    def item(self, item: str, status: str, **details: Any) -> None:
        self.items.setdefault(item, {}).update({k: v for k, v in details.items() if v is not None}, status=status)

    def log(self, level: str, message: str) -> None:
        pass


def generators(provider: Provider, monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Generator]:
    monkeypatch.setenv("MEDIA_PIPELINE_RUNWAY_API_KEY", "sk-test")
    monkeypatch.setenv("MEDIA_PIPELINE_RUNWAY_URL", provider.url)
    monkeypatch.setenv("MEDIA_PIPELINE_STABILITY_API_KEY", "sk-test")
    monkeypatch.setenv("MEDIA_PIPELINE_STABILITY_URL", provider.url)
    monkeypatch.setenv("MEDIA_PIPELINE_GENERATOR_REQUEST_TIMEOUT", "30")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    made: list[Generator] = [RunwayGenerator(settings), StabilityGenerator(settings)]
    for generator in made:
        generator.poll_seconds = 0.01  # type: ignore[misc]
        generator.client.backoff = 0.05
    return {g.id: g for g in made}


STILL_ID = 1


def still(root: Path) -> dict[int, InputMedia]:
    Image.new("RGB", (128, 72), (200, 80, 40)).save(root / "still.png")
    return {STILL_ID: stored(root, root / "still.png", STILL_ID)}


def spec(root: Path, generator: str, prompt: str = "a slow push in", frames: int = 30) -> CompositionSpec:
    segment = SegmentSpec(1, generator, prompt, "", {}, 7, frames, inputs=(STILL_ID,))
    return CompositionSpec(1, Fraction(30000, 1001), 160, 90, (segment,), preset="ultrafast")


def run(root: Path, spec_: CompositionSpec, gens: dict[str, Generator], hooks: Hooks) -> render.Plan:
    cache = render.cache_for(ArtifactStore(root=str(root)))
    plan = render.plan(spec_, gens, cache, still(root))
    for pool in {s.pool for s in plan.segments}:
        render.generate(plan, pool, gens, cache, root / "work", hooks, library(root).local_path,
                        sleep=lambda s: time.sleep(0.01))  # fmt: skip
    return plan


def test_runway_through_throttling_retry_after_and_5xx_then_a_slow_download(
    provider: Provider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider.throttle_submits, provider.slow_download = 1, 0.3
    gens = generators(provider, monkeypatch)
    hooks = Hooks()
    plan = run(tmp_path, spec(tmp_path, "runway"), gens, hooks)
    submits = [r for r in provider.requests if r["method"] == "POST"]
    assert len(submits) == 2 and submits[1]["at"] - submits[0]["at"] >= 1.0  # Retry-After: 1 was honoured
    body = json.loads(submits[1]["body"])
    assert submits[1]["headers"]["X-Runway-Version"] == "2024-11-06"
    assert body["ratio"] == "1280:720" and body["duration"] == 5 and body["seed"] == 7
    assert body["promptImage"].startswith("data:image/png;base64,")
    polls = [r for r in provider.requests if r["method"] == "GET" and r["path"].startswith("/v1/tasks/")]
    assert len(polls) == 5  # PENDING, THROTTLED, 503 (retried), RUNNING, SUCCEEDED
    item = hooks.items["segment_1"]
    assert item["task_id"] == "task-1" and item["cache"] == "miss"
    download = next(r for r in provider.requests if r["path"].startswith("/files/"))
    assert "Authorization" in download["headers"]  # same host as the API: the key goes along
    clip = render.cache_for(ArtifactStore(root=str(tmp_path))).clip(plan.segments[0].key)
    assert clip.read_bytes() == provider.clip  # copied into our storage at once

    composed = render.compose(
        plan, render.cache_for(ArtifactStore(root=str(tmp_path))), tmp_path / "staging", tmp_path / "out.mp4", hooks
    )
    assert count_frames(composed.video) == 30  # 2 s at 24 fps conformed to 30 frames at 29.97
    again = run(tmp_path, spec(tmp_path, "runway"), gens, Hooks())
    assert again.segments[0].decision == "cached"
    assert len([r for r in provider.requests if r["method"] == "POST"]) == 2  # nothing asked of Runway again


def test_a_failed_runway_task_names_the_providers_error(
    provider: Provider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks = Hooks()
    with pytest.raises(RenderError, match="moderation"):
        run(tmp_path, spec(tmp_path, "runway", prompt="please fail"), generators(provider, monkeypatch), hooks)
    item = hooks.items["segment_1"]
    assert item["status"] == "failed"
    assert item["error"] == "runway: Runway: the prompt was refused by moderation (SAFETY.INPUT.TEXT)"


def test_a_cancelled_render_cancels_the_providers_task(
    provider: Provider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gens = generators(provider, monkeypatch)
    cache = render.cache_for(ArtifactStore(root=str(tmp_path)))
    plan = render.plan(spec(tmp_path, "runway", prompt="forever"), gens, cache, still(tmp_path))

    class Interrupted(BaseException):
        """What Dagster raises into a step when its run is terminated."""

    polls = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        render.generate(plan, "runway", gens, cache, tmp_path / "work", Hooks(), library(tmp_path).local_path,
                        sleep=sleep)  # fmt: skip
    assert provider.cancelled == ["task-1"]
    assert not cache.has(plan.segments[0].key)


def test_a_download_from_another_host_is_refused(
    provider: Provider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gens = generators(provider, monkeypatch)
    runway = gens["runway"]
    assert isinstance(runway, RunwayGenerator)
    runway.client.download_hosts = frozenset({"api.example"})
    with pytest.raises(GeneratorError, match="not an allowed host"):
        runway.client.download(f"{provider.url}/files/x.mp4", tmp_path / "x.mp4")
    with pytest.raises(GeneratorError, match="not an allowed host"):
        runway.client.download("file:///etc/passwd", tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()

    # A CDN host the operator listed: allowed, and the key does not go there.
    runway.client.download_hosts = frozenset({"localhost"})
    port = provider.server_address[1]
    runway.client.download(f"http://localhost:{port}/files/x.mp4", tmp_path / "x.mp4")
    assert (tmp_path / "x.mp4").read_bytes() == provider.clip
    assert "Authorization" not in provider.requests[-1]["headers"]


def test_stability_polls_202_through_a_5xx_and_writes_the_clip_as_it_arrives(
    provider: Provider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider.slow_download = 0.2
    hooks = Hooks()
    gens = generators(provider, monkeypatch)
    plan = run(tmp_path, spec(tmp_path, "stability", frames=60), gens, hooks)
    submit = next(r for r in provider.requests if r["method"] == "POST")
    assert submit["path"] == "/v2beta/image-to-video" and b'name="image"' in submit["body"]
    assert plan.segments[0].ask_size == [1024, 576]
    assert render.cache_for(ArtifactStore(root=str(tmp_path))).clip(plan.segments[0].key).read_bytes() == provider.clip
    assert hooks.items["segment_1"]["task_id"] == "task-1"


def test_stability_failure_and_a_missing_key(
    provider: Provider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gens = generators(provider, monkeypatch)
    provider.tasks.clear()
    original = Handler.do_POST

    def failing(self: Handler) -> None:
        original(self)
        for task in self.server.tasks:
            self.server.tasks[task] = ["RUNNING", "FAILED"]

    monkeypatch.setattr(Handler, "do_POST", failing)
    hooks = Hooks()
    with pytest.raises(RenderError, match="the image was flagged"):
        run(tmp_path, spec(tmp_path, "stability"), gens, hooks)
    without = generators(provider, monkeypatch, MEDIA_PIPELINE_STABILITY_API_KEY="")
    with pytest.raises(RenderError, match="needs MEDIA_PIPELINE_STABILITY_API_KEY"):
        render.plan(
            spec(tmp_path, "stability"), without, render.cache_for(ArtifactStore(root=str(tmp_path))), still(tmp_path)
        )


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after("3") == 3.0
    assert retry_after(None) is None and retry_after("soon") is None
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= (retry_after(later) or 0) <= 31


def test_giving_up_after_the_attempts_says_so(
    provider: Provider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gens = generators(provider, monkeypatch)
    provider.throttle_submits = 99
    runway = gens["runway"]
    assert isinstance(runway, RunwayGenerator)
    runway.client.attempts = 3
    request = dataclasses.replace(
        GenerationRequest("p", "", {"model": "gen4_turbo"}, 1, 30, Fraction(30), 1280, 720, Fraction(5)),
        inputs=(library(tmp_path).local_path(still(tmp_path)[STILL_ID].storage_key),),
    )
    with pytest.raises(GeneratorError, match="answered 429 to POST /v1/image_to_video, 3 times; giving up"):
        runway.submit(request)


def test_cancelling_a_render_job_cancels_its_runway_task(
    provider: Provider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, domain_url: str, instance: dg.DagsterInstance
) -> None:
    """Through the API and a real Dagster run in its own process, terminated as Dagster does it."""
    media = tmp_path / "media"
    media.mkdir()
    Image.new("RGB", (128, 72), (20, 80, 200)).save(media / "still.png")
    env = {
        "MEDIA_PIPELINE_HOME": str(tmp_path / "home"), "MEDIA_PIPELINE_DATABASE_URL": domain_url,
        "MEDIA_PIPELINE_ARTIFACT_ROOT": str(tmp_path / "artifacts"), "MEDIA_PIPELINE_API_TOKEN": "t0ken",
        "MEDIA_PIPELINE_MEDIA_ROOTS": str(media), "MEDIA_PIPELINE_WATCH_DIRS": "",
        "MEDIA_PIPELINE_RUNWAY_API_KEY": "sk-test", "MEDIA_PIPELINE_RUNWAY_URL": provider.url,
    }  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    auth = {"Authorization": "Bearer t0ken"}
    gateway = InProcessGateway(instance, background=True)
    with TestClient(create_app(load_settings(), gateway=gateway)) as client:
        upload = client.post("/v1/media?filename=still.png", content=(media / "still.png").read_bytes(), headers=auth)
        assert upload.status_code == 201, upload.text
        body = {"name": "c", "rate": "24", "resolution": "128x72", "segments": [
            {"generator": "runway", "prompt": "forever", "frames": 24, "inputs": [upload.json()["id"]]}]}  # fmt: skip
        composition = client.post("/v1/compositions", json=body, headers=auth).json()
        job = client.post(f"/v1/compositions/{composition['id']}/renders", headers=auth).json()["job"]
        running = wait_for_job(client, job["id"], lambda j: any(i.get("task_id") for i in j["items"]), auth)
        assert running["items"][0]["task_id"] == "task-1" and running["items"][0]["status"] == "running"
        assert client.post(f"/v1/jobs/{job['id']}/cancel", headers=auth).status_code == 202
        wait_for_job(client, job["id"], lambda j: j["status"] == "cancelled", auth)
        deadline = time.monotonic() + 60
        while not provider.cancelled and time.monotonic() < deadline:
            time.sleep(0.1)
        assert provider.cancelled == ["task-1"]
    gateway.join()


def wait_for_job(client: TestClient, job_id: str, predicate: Any, auth: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 300  # generous: the machine is shared and a run process takes seconds to start
    while True:
        job = client.get(f"/v1/jobs/{job_id}", headers=auth).json()
        if predicate(job):
            return dict(job)
        assert time.monotonic() < deadline, f"job never matched; last seen {job}"
        assert job["status"] not in ("succeeded", "failed") or predicate(job), job
        time.sleep(0.2)
