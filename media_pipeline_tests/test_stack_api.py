"""The HTTP API of a real `media-pipeline up`: timelines uploaded over HTTP, runs launched through
the webserver's GraphQL API and executed by the daemon's run queue, jobs followed until they
finish, thumbnails and a final video downloaded and checked frame by frame."""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from media_pipeline.core.ffmpeg import probe
from media_pipeline.samples import make_indexed_movie, read_index
from media_pipeline_tests.conftest import CORPUS
from media_pipeline_tests.test_api_support import clip, write_otio
from media_pipeline_tests.up_process import free_port, stop_up, up_command, wait_for_up
from media_pipeline_tests.waiting import running, service_environment, wait_until

pytestmark = pytest.mark.stack

TOKEN = "stack-api-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TERMINAL = ("succeeded", "failed", "cancelled")


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    home: Path
    api: httpx.Client
    media: Path  # the stack's media root

    def logs(self) -> str:
        """The end of each service's log, for assertion messages."""
        tails = []
        for log in sorted((self.home / "logs").glob("*.log")):
            tails.append(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(tails)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack for the file (starting one takes half a minute); each test has its own cuts and
    its own folder of plates under the media root (`media`)."""
    base = tmp_path_factory.mktemp("stack_api")
    home, media = base / "home", base / "media"
    media.mkdir()
    ui_port, api_port = free_port(), free_port()
    env = service_environment({"MEDIA_PIPELINE_API_TOKEN": TOKEN, "MEDIA_PIPELINE_MEDIA_ROOTS": str(media)})
    process = subprocess.Popen(
        up_command(home, ui_port, api_port),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_up(ui_port, api_port, running(process, "media-pipeline up"))
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", headers=AUTH, timeout=30) as api:
            yield Stack(process, home, api, media)
    finally:
        stop_up(process)


@pytest.fixture
def media(stack: Stack, request: pytest.FixtureRequest) -> Path:
    """This test's plates: a folder of its own under the stack's media root."""
    folder = stack.media / request.node.name
    folder.mkdir()
    return folder


def follow(stack: Stack, job_id: str, timeout: float = 300) -> tuple[dict[str, Any], list[float]]:
    """Poll the job until it finishes; the last answer and every progress value seen."""
    seen: list[float] = []

    def finished() -> dict[str, Any] | None:
        response = stack.api.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job = response.json()
        seen.append(job["progress"])
        return job if job["status"] in TERMINAL else None

    alive = running(stack.process, "media-pipeline up", stack.logs)
    return wait_until(finished, timeout=timeout, what=f"job {job_id} to finish", interval=0.2, alive=alive), seen


def assert_progress(seen: list[float]) -> None:
    assert all(0 <= value <= 1 for value in seen), seen
    assert seen == sorted(seen), f"progress went back: {seen}"


def upload(stack: Stack, path: Path, **fields: str) -> dict[str, Any]:
    response = stack.api.post(
        "/v1/cuts",
        files={"file": (path.name, path.read_bytes(), "application/octet-stream")},
        data={"project": "stack", "name": path.stem, **fields},
    )
    assert response.status_code == 202, response.text
    return response.json()


def test_api_over_http_ingests_renders_and_serves_the_results(stack: Stack, media: Path, tmp_path: Path) -> None:
    plate = make_indexed_movie(
        media / "A001C001.mov", frames=96, rate=Fraction(24), size=(160, 90), start_timecode="01:00:00:00"
    )
    timeline = write_otio(
        tmp_path / "reel1.otio",
        [clip("sh010", plate, 0, 12), clip("sh020", plate, 20, 24), clip("sh030", plate, 60, 30)],
    )
    # An EDL of audio only (one event on two tracks): readable, so published, but with no shots.
    sound_only = tmp_path / "multi_audio.edl"
    shutil.copyfile(CORPUS / "multi_audio.edl", sound_only)

    created = upload(stack, timeline)
    failing = upload(stack, sound_only, rate="25")
    cut = created["cut"]
    assert cut["status"] == "published" and created["job"]["kind"] == "ingest_cut"

    ingest, seen = follow(stack, created["job"]["id"])
    assert ingest["status"] == "succeeded", f"{ingest}\n{stack.logs()}"
    assert_progress(seen)
    assert ingest["progress"] == 1.0 and ingest["stage"] == "done"

    shots = stack.api.get(f"/v1/cuts/{cut['id']}/shots").json()["items"]
    assert [(s["name"], s["media_status"]) for s in shots] == [
        ("sh010", "linked"),
        ("sh020", "linked"),
        ("sh030", "linked"),
    ]
    # The default thumbnail is the exact middle frame: first + duration // 2 of each shot.
    for shot, middle in zip(shots, (0 + 6, 20 + 12, 60 + 15), strict=True):
        image = stack.api.get(shot["thumbnail_url"])
        assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
        assert read_index(Image.open(io.BytesIO(image.content))) == middle, shot["name"]

    response = stack.api.post(
        f"/v1/cuts/{cut['id']}/final-video",
        json={"resolution": "160x90", "crf": 30, "preset": "ultrafast", "audio": False},
    )
    assert response.status_code == 202, response.text
    assert response.json()["kind"] == "final_video"
    final, seen = follow(stack, response.json()["id"])
    assert final["status"] == "succeeded", f"{final}\n{stack.logs()}"
    assert_progress(seen)
    [output] = final["outputs"]
    assert output["kind"] == "final_video"
    assert output["url"] == f"/v1/artifacts/cuts/{cut['partition_key']}/final_video.mp4"
    video = stack.api.get(output["url"])
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    path = tmp_path / "final_video.mp4"
    path.write_bytes(video.content)
    info = probe(path)
    assert (info.width, info.height, info.frame_count) == (160, 90, 12 + 24 + 30)

    failed, seen = follow(stack, failing["job"]["id"])
    assert failed["status"] == "failed", failed
    assert_progress(seen)
    assert failed["error"] == (
        "the timeline has no video track (it holds 2 audio track(s) only); there are no shots to extract"
    )
    assert failed["stage"] == "cut_shots"
    assert stack.api.get(f"/v1/cuts/{failing['cut']['id']}").json()["status"] == "failed"


def test_cancel_over_http_stops_every_ffmpeg_of_the_run_within_3_s(stack: Stack, media: Path, tmp_path: Path) -> None:
    """Dagster's own termination path (webserver -> run launcher -> code server -> run worker)."""
    import psutil

    from media_pipeline_tests.test_cancel import CEILING, ffmpegs_touching, partials, seconds_until

    plate = make_indexed_movie(
        media / "A001C001.mov", frames=96, rate=Fraction(24), size=(1920, 1080),
        start_timecode="01:00:00:00",
    )  # fmt: skip
    timeline = write_otio(tmp_path / "reel9.otio", [clip(f"sh{n:03d}", plate, 0, 96) for n in range(6)])
    body = upload(stack, timeline)
    job, _ = follow(stack, body["job"]["id"])
    assert job["status"] == "succeeded", f"{job}\n{stack.logs()}"
    artifacts = stack.home / "artifacts"
    options = {"resolution": "1920x1080", "preset": "veryslow", "crf": 10, "audio": False}
    response = stack.api.post(f"/v1/cuts/{body['cut']['id']}/final-video", json=options)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]

    def encoding() -> bool:
        current = stack.api.get(f"/v1/jobs/{job_id}").json()
        assert current["status"] not in TERMINAL, f"{current}\n{stack.logs()}"
        return len(ffmpegs_touching(artifacts)) >= 1

    wait_until(encoding, timeout=300, what="the final video to encode", interval=0.2)
    running = {proc.pid for proc in ffmpegs_touching(artifacts)}

    assert stack.api.post(f"/v1/jobs/{job_id}/cancel").status_code == 202
    assert seconds_until(lambda: not ffmpegs_touching(artifacts), CEILING, "every ffmpeg gone") < CEILING, stack.logs()
    assert all(not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE for pid in running)
    job, _ = follow(stack, job_id)
    assert job["status"] == "cancelled", f"{job}\n{stack.logs()}"
    assert not ffmpegs_touching(artifacts)  # no queued segment started afterwards
    assert not (artifacts / "cuts" / body["cut"]["partition_key"] / "final_video.mp4").exists()
    assert partials(artifacts) == []


def test_cancel_while_the_run_is_starting_stops_it_once_started(stack: Stack, media: Path, tmp_path: Path) -> None:
    """Dagster refuses to terminate a STARTING run; the cancel is kept and carried out once it starts."""
    from media_pipeline_tests.test_cancel import ffmpegs_touching

    plate = make_indexed_movie(
        media / "A001C001.mov", frames=96, rate=Fraction(24), size=(640, 360),
        start_timecode="01:00:00:00",
    )  # fmt: skip
    timeline = write_otio(tmp_path / "reel7.otio", [clip(f"sh{n:03d}", plate, n, 90) for n in range(4)])
    body = upload(stack, timeline)
    job, _ = follow(stack, body["job"]["id"], timeout=180)
    assert job["status"] == "succeeded", f"{job}\n{stack.logs()}"
    options = {"resolution": "1920x1080", "preset": "veryslow", "crf": 10, "audio": False}
    response = stack.api.post(f"/v1/cuts/{body['cut']['id']}/final-video", json=options)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]

    # The run is STARTING from its launch until its worker process is up: seconds, even idle.
    def starting() -> bool:
        current = stack.api.get(f"/v1/jobs/{job_id}").json()
        assert current["stage"] in ("queued", "starting"), f"never seen starting: {current}"
        return current["stage"] == "starting"

    wait_until(starting, timeout=180, what="the final video's run to be starting", interval=0.02)
    cancelled = stack.api.post(f"/v1/jobs/{job_id}/cancel")
    assert cancelled.status_code == 202, cancelled.text  # not 502 "could not be terminated ... STARTING"
    assert cancelled.json()["stage"] == "cancelling", cancelled.json()  # not `starting`: the cancel is on its way
    job, _ = follow(stack, job_id, timeout=180)
    assert job["status"] == "cancelled", f"{job}\n{stack.logs()}"
    assert not ffmpegs_touching(stack.home / "artifacts")
    assert not (stack.home / "artifacts" / "cuts" / body["cut"]["partition_key"] / "final_video.mp4").exists()
