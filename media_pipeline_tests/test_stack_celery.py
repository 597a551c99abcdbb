"""Celery mode for real: RabbitMQ (127.0.0.1:5672) as the broker, Postgres for both databases,
a shared folder as the artifact store, two `media-pipeline worker` processes, and the final video
of a 30-shot cut rendered by Dagster's own CLI as the orchestrator. Its chunk steps run on both
workers; a worker killed in the middle of a chunk (with its ffmpeg, as a machine that dies) costs
only that chunk, which the other worker executes again: the run succeeds with every frame exact."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import dagster as dg
import opentimelineio as otio
import psutil
import pytest
import yaml

from media_pipeline import cli
from media_pipeline.platform.executors import HOST_TAG
from media_pipeline.samples import make_indexed_movie, read_index
from media_pipeline_tests.conftest import decode_frames, publish

pytestmark = pytest.mark.stack

RATE = 24
SHOTS = 30
SHOT_FRAMES = 6
CHUNK = 3  # segments per chunk: ten chunk steps
BIN = Path(sys.executable).parent
T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 240) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class Worker:
    name: str
    host_id: str
    process: subprocess.Popen[bytes]
    log: Path

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def kill_machine(self) -> None:
        """SIGKILL the worker, its pool processes and their ffmpegs (each in a group of its own)."""
        victims = [psutil.Process(self.process.pid), *self.descendants()]
        for victim in victims:
            with contextlib.suppress(psutil.NoSuchProcess):
                victim.kill()
        self.process.wait(timeout=30)


@pytest.fixture
def celery_env(postgres_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    prefix = f"mp_test_{uuid.uuid4().hex[:8]}_"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIA_PIPELINE_")}
    env.update(
        MEDIA_PIPELINE_HOME=str(tmp_path / "home"),
        MEDIA_PIPELINE_EXECUTOR="celery",
        MEDIA_PIPELINE_CELERY_BROKER="pyamqp://guest:guest@127.0.0.1:5672//",
        MEDIA_PIPELINE_CELERY_QUEUE_PREFIX=prefix,  # this test's queues only, on a shared broker
        MEDIA_PIPELINE_DATABASE_URL=postgres_url,
        MEDIA_PIPELINE_DAGSTER_POSTGRES_URL=postgres_url,
        MEDIA_PIPELINE_ARTIFACT_ROOT=str(tmp_path / "shared" / "artifacts"),
        MEDIA_PIPELINE_ARTIFACTS_SHARED="true",
        MEDIA_PIPELINE_MEDIA_ROOTS=str(tmp_path / "media"),
        MEDIA_PIPELINE_WATCH_DIRS="",
        MEDIA_PIPELINE_CHUNK_SEGMENTS=str(CHUNK),
        MEDIA_PIPELINE_FFMPEG_CONCURRENCY="1",
        MEDIA_PIPELINE_HOST_ID="orchestrator",
    )
    cli.prepare(env)  # instance config on Postgres, both schemas created
    yield env
    from kombu import Connection

    with Connection(env["MEDIA_PIPELINE_CELERY_BROKER"]) as connection:
        channel = connection.channel()
        for queue in ("dagster", "ffmpeg", "generators"):
            try:
                channel.queue_delete(prefix + queue)
            except Exception:  # never declared (nothing was routed there)
                channel = connection.channel()


@pytest.fixture
def workers(celery_env: dict[str, str], tmp_path: Path) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    for letter in "ab":
        name = f"w{letter}-{uuid.uuid4().hex[:6]}@test"
        log = tmp_path / f"worker_{letter}.log"
        env = {**celery_env, "MEDIA_PIPELINE_HOST_ID": f"worker-{letter}"}
        command = [str(BIN / "media-pipeline"), "worker", "--concurrency", "1", "--name", name]
        process = subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        started.append(Worker(name, f"worker-{letter}", process, log))
    for worker in started:
        wait_for(f"{worker.name} to be ready", lambda w=worker: "ready." in w.log.read_text(errors="replace"))
    yield started
    for worker in started:
        if worker.process.poll() is None:
            worker.process.terminate()
    for worker in started:
        try:
            worker.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill_machine()


def thirty_shot_cut(tmp_path: Path) -> tuple[Path, list[int]]:
    """A cut of 30 shots from one movie whose every frame shows its own index; the expected
    source frame of every output frame."""
    movie = make_indexed_movie(tmp_path / "media" / "plate.mov", frames=400, rate=Fraction(RATE), size=(320, 180))
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    expected: list[int] = []
    for number in range(SHOTS):
        first = (number * 37) % (400 - SHOT_FRAMES)  # out of order, as a cut is
        track.append(
            otio.schema.Clip(
                name=f"sh{number:03d}",
                media_reference=otio.schema.ExternalReference(target_url=movie.as_uri()),
                source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(first, RATE), otio.opentime.RationalTime(SHOT_FRAMES, RATE)
                ),
            )
        )
        expected += range(first, first + SHOT_FRAMES)
    timeline = otio.schema.Timeline(name="thirty")
    timeline.tracks.append(track)
    path = tmp_path / "thirty.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path, expected


def launch(
    env: dict[str, str], key: str, tmp_path: Path, crf: int | None = None, job: str = "render_final_video"
) -> subprocess.Popen[bytes]:
    """`dagster job execute`: the orchestrator, sending each step to the workers."""
    config = tmp_path / f"config_{crf}.yaml"
    encode = {"resolution": "320x180", "crf": crf, "preset": "ultrafast", "audio": False}
    config.write_text(yaml.safe_dump({"ops": {"final_video": {"config": encode}}} if crf else {}))
    command = [str(BIN / "dagster"), "job", "execute", "-m", "media_pipeline.definitions", "-j", job,
               "-c", str(config), "--tags", json.dumps({"dagster/partition": key})]  # fmt: skip
    log = (tmp_path / f"orchestrator_{crf}.log").open("wb")
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def chunk_workers(instance: dg.DagsterInstance, run_id: str) -> dict[str, list[str]]:
    """Per chunk step, the Celery workers that executed it, from the task's engine events."""
    seen: dict[str, list[str]] = {}
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        if event is None or "in celery worker" not in (event.message or ""):
            continue
        step = event.step_key or ""
        if step.startswith("final_video.final_video_chunk["):
            seen.setdefault(step, []).append(event.event_specific_data.metadata["Celery worker"].value)
    return seen


def chunk_hosts(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """Per chunk step, the host id and pid its output records ("worker-a (pid 123)")."""
    hosts = {}
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_OUTPUT):
        event = entry.dagster_event
        if event is not None and (event.step_key or "").startswith("final_video.final_video_chunk["):
            hosts[event.step_key] = event.event_specific_data.metadata["host"].value
    return hosts


def assert_frames_exact(path: Path, expected: list[int]) -> None:
    frames = decode_frames(path)
    assert len(frames) == len(expected) == SHOTS * SHOT_FRAMES
    wrong = [(n, read_index(image), want) for n, (image, want) in enumerate(zip(frames, expected, strict=True))
             if read_index(image) != want]  # fmt: skip
    assert not wrong, f"frames that are not the named source frame (output, shown, expected): {wrong[:10]}"


def test_chunks_spread_over_two_workers_and_survive_a_killed_one(
    celery_env: dict[str, str], workers: list[Worker], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in celery_env.items():
        monkeypatch.setenv(name, value)
    source, expected = thirty_shot_cut(tmp_path)
    artifacts = Path(celery_env["MEDIA_PIPELINE_ARTIFACT_ROOT"])
    key = publish(
        celery_env["MEDIA_PIPELINE_DATABASE_URL"], artifacts, source, project="celery", media_roots=[tmp_path / "media"]
    )
    a, b = workers
    with dg.DagsterInstance.from_config(celery_env["DAGSTER_HOME"]) as instance:
        instance.add_dynamic_partitions("cut_versions", [key])

        # The cut's shots (ingest_cut, on the workers as well).
        ingest = launch(celery_env, key, tmp_path, job="ingest_cut")
        assert ingest.wait(timeout=600) == 0, (tmp_path / "orchestrator_None.log").read_text()[-3000:]

        # 1. Both workers alive: the ten chunk steps are shared between them.
        first = launch(celery_env, key, tmp_path, 30)
        assert first.wait(timeout=600) == 0, (tmp_path / "orchestrator_30.log").read_text()[-3000:]
        run = instance.get_runs(limit=1)[0]
        assert run.status == dg.DagsterRunStatus.SUCCESS and run.tags[HOST_TAG] == "orchestrator"
        ran_on = chunk_workers(instance, run.run_id)
        assert len(ran_on) == SHOTS // CHUNK
        assert {name for names in ran_on.values() for name in names} == {a.name, b.name}
        hosts = chunk_hosts(instance, run.run_id)
        assert {host.split(" ")[0] for host in hosts.values()} == {"worker-a", "worker-b"}
        output = artifacts / "cuts" / key / "final_video.mp4"
        assert_frames_exact(output, expected)

        # 2. Another encode (every segment new), and worker a dies in the middle of a chunk.
        second = launch(celery_env, key, tmp_path, 31)

        first_run = run.run_id

        def a_encoding() -> str | None:
            run = instance.get_runs(limit=1)[0]
            if run.run_id == first_run:
                return None
            busy = [step for step, names in chunk_workers(instance, run.run_id).items() if a.name in names]
            ffmpegs = [p for p in a.descendants() if "ffmpeg" in p.name()]
            return run.run_id if busy and ffmpegs else None

        run_id = wait_for("worker a to be encoding a chunk", a_encoding)
        killed = [step for step, names in chunk_workers(instance, run_id).items() if a.name in names][-1]
        a.kill_machine()
        assert second.wait(timeout=600) == 0, (tmp_path / "orchestrator_31.log").read_text()[-3000:]
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        # The chunk a was executing was executed again, by b: the task went back to the queue.
        assert chunk_workers(instance, run_id)[killed][-1] == b.name
        assert chunk_hosts(instance, run_id)[killed].startswith("worker-b")
        assert_frames_exact(output, expected)
        # What the dead ffmpeg left is hidden (a `.name.partial-...` file), never a segment.
        segments = [p for p in (artifacts / "segments").rglob("*") if p.is_file()]
        assert all(p.name.startswith(".") or p.suffix == ".mp4" for p in segments)
