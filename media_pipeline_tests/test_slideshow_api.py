"""The slideshow routes on a real domain database, a real Dagster instance and real ffmpeg, and the
original Render API's session run with the real curl against a real uvicorn server."""

from __future__ import annotations

import io
import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

import media_pipeline.definitions  # noqa: F401  (exports setting defaults once, before any test's env)
from api.dagster_gateway import InProcessGateway
from api.main import create_app
from media_pipeline.settings import Settings
from media_pipeline_tests.area_api import *  # noqa: F403  (fixtures: app, client)
from media_pipeline_tests.area_api import area_settings
from media_pipeline_tests.slideshow_media import COLOURS, make_image, make_tone, video_frames
from media_pipeline_tests.test_api_support import assert_problem
from media_pipeline_tests.up_process import free_port
from media_pipeline_tests.waiting import wait_until

TOKEN = "slideshow-api-token-7d1e"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SMALL = {"fps": 25, "minShot": 1.0, "maxShot": 2.0, "xfade": 0.2, "resolution": "320x180", "preset": "veryfast"}


@pytest.fixture
def settings(domain_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    extra = {
        "MEDIA_PIPELINE_MAX_UPLOAD_BYTES": str(2 * 1024 * 1024),
        "MEDIA_PIPELINE_SLIDESHOW_MAX_PIXELS": "1000000",
        "MEDIA_PIPELINE_MEDIA_ROOTS": "",
    }
    return area_settings(monkeypatch, tmp_path, domain_url, TOKEN, extra)


def png(colour: tuple[int, int, int], size: tuple[int, int] = (320, 180)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_ids_and_scenes_are_validated_with_field_paths(client: TestClient, settings: Settings) -> None:
    scenes = {"scenes": [{"images": ["a.png"]}]}
    for bad in ("has.dot", "x" * 65, "sp ace"):
        response = client.put(f"/v1/slideshows/{bad}/scenes", json=scenes, headers=AUTH)
        assert_problem(response, 422, "validation_error")
    response = client.put(
        "/v1/slideshows/trip/scenes",
        json={"scenes": [{"images": ["a.png"]}, {"images": [], "duration": -1}, {"images": ["a.png"], "bogus": 1}]},
        headers=AUTH,
    )
    body = assert_problem(response, 422, "validation_error")
    fields = {tuple(e["loc"][1:]) for e in body["errors"]}
    assert {("scenes", 1, "images"), ("scenes", 1, "duration"), ("scenes", 2, "bogus")} <= fields
    assert not (settings.artifact_root / "slideshows" / "trip").exists()
    assert_problem(client.get("/v1/slideshows/trip/scenes", headers=AUTH), 404, "not_found")
    response = client.put("/v1/projects/trip/scenes", json=scenes, headers=AUTH)
    assert response.status_code == 200 and response.json()["scenes"] == 1
    stored = json.loads((settings.artifact_root / "slideshows" / "trip" / "scenes.json").read_text())
    assert stored == {"scenes": [{"images": ["a.png"], "fit": "cover", "motion": "pan"}]}
    # Read back in the shape it was put, for an editor to change and put again.
    read = client.get("/v1/slideshows/trip/scenes", headers=AUTH)
    assert read.status_code == 200 and read.json()["scenes"][0]["images"] == ["a.png"]
    assert client.put("/v1/slideshows/trip/scenes", json=read.json(), headers=AUTH).status_code == 200


def test_assets_are_hashed_deduplicated_and_refused_with_sentences(client: TestClient, settings: Settings) -> None:
    folder = settings.artifact_root / "slideshows" / "trip"
    red = png(COLOURS[0])
    response = client.post(
        "/v1/slideshows/trip/assets",
        files=[("files", ("a.png", red, "image/png")), ("files", ("b.png", png(COLOURS[1]), "image/png"))],
        data={"subdir": "images"},
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    files = response.json()["files"]
    assert [(f["name"], f["stored"]) for f in files] == [("a.png", "new"), ("b.png", "new")]
    import hashlib

    assert files[0]["sha256"] == hashlib.sha256(red).hexdigest()
    again = client.post(
        "/v1/projects/trip/assets",
        files=[("files", ("a.png", red, "image/png")), ("files", ("copy.png", red, "image/png"))],
        data={"subdir": "images"},
        headers=AUTH,
    ).json()["files"]
    assert [f["stored"] for f in again] == ["unchanged", "linked"]
    assert (folder / "images" / "copy.png").stat().st_ino == (folder / "images" / "a.png").stat().st_ino
    listed = client.get("/v1/slideshows/trip/assets", headers=AUTH).json()["files"]
    assert [(f["subdir"], f["name"], f["sha256"]) for f in listed] == [
        ("images", "a.png", files[0]["sha256"]),
        ("images", "b.png", files[1]["sha256"]),
        ("images", "copy.png", files[0]["sha256"]),
    ]
    assert client.get(listed[0]["url"], headers=AUTH).content == red
    assert client.get("/v1/slideshows/elsewhere/assets", headers=AUTH).json()["files"] == []

    refusals = [
        ([("files", ("ok.png", red, "image/png")), ("files", ("bad.jpg", b"\xff\xd8 nope", "image/jpeg"))], "images",
         "bad.jpg is not a readable image"),
        ([("files", ("big.png", png((0, 0, 0), (1200, 1000)), "image/png"))], "images",
         "big.png is 1200x1000, over the limit of 1000000 pixels"),
        ([("files", ("v.wav", b"RIFF....WAVEjunk", "audio/wav"))], "voiceovers", "v.wav is not readable audio"),
    ]  # fmt: skip
    for upload, subdir, sentence in refusals:
        response = client.post("/v1/slideshows/trip/assets", files=upload, data={"subdir": subdir}, headers=AUTH)
        body = assert_problem(response, 422, "unreadable_asset")
        assert sentence in body["detail"] and "nothing from this request was stored" in body["detail"]
        assert str(settings.artifact_root) not in body["detail"]
    assert not (folder / "images" / "ok.png").exists()
    response = client.post(
        "/v1/slideshows/trip/assets", files=[("files", ("a.png", red, "image/png"))], data={"subdir": "videos"},
        headers=AUTH,
    )  # fmt: skip
    assert_problem(response, 422, "validation_error")
    response = client.post(
        "/v1/slideshows/trip/assets", files=[("files", ("huge.png", b"\0" * (3 * 1024 * 1024), "image/png"))],
        data={"subdir": "images"}, headers=AUTH,
    )  # fmt: skip
    assert_problem(response, 413, "payload_too_large")


def test_render_with_bad_inputs_fails_its_job_with_a_sentence(client: TestClient, settings: Settings) -> None:
    response = client.post("/v1/slideshows/empty/renders", json={}, headers=AUTH)
    assert_problem(response, 409, "no_scenes")
    client.put("/v1/slideshows/trip/scenes", json={"scenes": [{"images": ["missing.png"]}]}, headers=AUTH)
    response = client.post("/v1/slideshows/trip/renders", json={"outputName": "../x.mp4"}, headers=AUTH)
    assert_problem(response, 422, "validation_error")
    response = client.post(
        "/v1/slideshows/trip/renders", json={"renderOptions": {**SMALL, "music": "song.wav"}}, headers=AUTH
    )
    assert response.status_code == 202, response.text
    job = client.get(f"/v1/jobs/{response.json()['job']['id']}", headers=AUTH).json()
    assert job["status"] == "failed" and job["kind"] == "slideshow_render"
    assert "missing.png was not uploaded (POST it with subdir=images)" in job["error"]
    assert "music song.wav was not uploaded" in job["error"]
    assert not (settings.artifact_root / "slideshows" / "trip" / "output").exists()


def test_render_is_idempotent_and_returns_render_and_job(client: TestClient, settings: Settings) -> None:
    client.put("/v1/slideshows/trip/scenes", json={"scenes": [{"images": ["a.png"], "duration": 1.0}]}, headers=AUTH)
    client.post(
        "/v1/slideshows/trip/assets", files=[("files", ("a.png", png(COLOURS[2]), "image/png"))],
        data={"subdir": "images"}, headers=AUTH,
    )  # fmt: skip
    headers = {**AUTH, "Idempotency-Key": "trip-1"}
    body = {"outputName": "trip.mp4", "render_options": SMALL}
    first = client.post("/v1/slideshows/trip/renders", json=body, headers=headers)
    assert first.status_code == 202, first.text
    created = first.json()
    assert created["render"]["slideshow_id"] == "trip"
    assert created["render"]["partition_key"] == f"trip.{created['render']['id']}"
    assert created["render"]["output_url"] == "/v1/artifacts/slideshows/trip/output/trip.mp4"
    assert created["job"]["status"] == "succeeded", created["job"]
    again = client.post("/v1/slideshows/trip/renders", json=body, headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true" and again.json()["job"]["id"] == created["job"]["id"]
    other = client.post("/v1/slideshows/trip/renders", json={**body, "outputName": "b.mp4"}, headers=headers)
    assert_problem(other, 409, "idempotency_conflict")
    video = client.get(created["render"]["output_url"], headers=AUTH)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    summary = client.get(f"/v1/slideshows/trip/renders/{created['render']['id']}", headers=AUTH).json()
    assert summary["frames"] == summary["planned_frames"] == 25 and summary["reused_scenes"] == []
    assert all(check["passed"] for check in summary["checks"].values())
    assert_problem(client.get("/v1/slideshows/trip/renders/0123456789ab", headers=AUTH), 404, "not_found")


class Server:
    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        wait_until(lambda: self.server.started, what="uvicorn to start", interval=0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["curl", "-sS", "-H", f"Authorization: Bearer {TOKEN}", *args], capture_output=True, timeout=120
    )


def curl_json(*args: str) -> Any:
    proc = curl(*args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_original_render_api_session_with_curl(
    settings: Settings, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    media = tmp_path / "client"
    make_image(media / "one.png", COLOURS[0])
    make_image(media / "two.jpg", COLOURS[1], (400, 300))
    make_tone(media / "s1.wav", frequency=1000, seconds=1.2)
    make_tone(media / "bed.wav", frequency=200, seconds=1.0)
    scenes = {"scenes": [{"images": ["one.png", "two.jpg"], "voiceover": "s1.wav", "caption": "Day 1: 'Hi'"},
                         {"images": ["two.jpg"], "duration": 1.5}]}  # fmt: skip
    (media / "scenes.json").write_text(json.dumps(scenes))
    app = create_app(settings, gateway=InProcessGateway(instance, background=True))
    with Server(app) as api:
        put = curl_json("-X", "PUT", f"{api}/v1/projects/trip/scenes", "-H", "Content-Type: application/json",
                        "-d", f"@{media / 'scenes.json'}")  # fmt: skip
        assert put["scenes"] == 2
        for subdir, names in (("images", ["one.png", "two.jpg"]), ("voiceovers", ["s1.wav"]), ("music", ["bed.wav"])):
            form = [arg for name in names for arg in ("-F", f"files=@{media / name}")]
            stored = curl_json("-X", "POST", f"{api}/v1/projects/trip/assets", *form, "-F", f"subdir={subdir}")
            assert [f["name"] for f in stored["files"]] == names
        request = {"outputName": "video.mp4", "renderOptions": {**SMALL, "music": "bed.wav", "ducking": True}}
        started = curl_json("-X", "POST", f"{api}/v1/projects/trip/render", "-H", "Content-Type: application/json",
                            "-d", json.dumps(request))  # fmt: skip
        job_id = started["jobId"]

        def finished() -> dict[str, Any] | None:
            job = curl_json(f"{api}/v1/jobs/{job_id}")
            return job if job["status"] in ("succeeded", "failed", "cancelled") else None

        job = wait_until(finished, what=f"render job {job_id} to finish", interval=0.5)
        assert job["status"] == "succeeded", job
        assert 0 <= job["progress"] <= 1 and isinstance(job["logs"], list)
        outputs = curl_json(f"{api}/v1/projects/trip/outputs")
        assert sorted(f["name"] for f in outputs["files"]) == ["scene_01.mp4", "scene_02.mp4", "video.mp4"]
        video = tmp_path / "video.mp4"
        assert curl("-o", str(video), f"{api}/v1/projects/trip/outputs/video").returncode == 0
        head = curl("-i", "-H", "Range: bytes=0-99", f"{api}/v1/projects/trip/outputs/video").stdout
        assert head.startswith(b"HTTP/1.1 206") and b"content-range: bytes 0-99/" in head.lower()
    # 1.2 s voice -> 30 frames, 1.5 s -> 38 frames, xfade 5.
    assert video_frames(video) == 30 + 38 - 5


def test_uploads_at_once_to_one_slideshow_all_land_in_its_manifest(tmp_path: Path) -> None:
    """Each batch rewrites assets.json from what it read: without one writer at a time, a batch
    that read before another wrote would drop the other's entries."""
    import json
    import threading

    from media_pipeline.slideshows.assets_store import MANIFEST, store

    folder, incoming = tmp_path / "trip", tmp_path / "incoming"
    incoming.mkdir()
    batches = 16
    start = threading.Barrier(batches)

    def upload(number: int) -> None:
        path = incoming / f"{number}.png"
        Image.new("RGB", (8, 8), (number * 10, 0, 0)).save(path)
        start.wait()
        store(folder, "images", [(f"image_{number:02d}.png", path)])

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(batches)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    manifest = json.loads((folder / MANIFEST).read_text())
    assert sorted(manifest) == [f"images/image_{n:02d}.png" for n in range(batches)]
