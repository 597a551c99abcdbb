"""`media-pipeline up` on Postgres for real: the domain tables and Dagster's storage in one
throwaway database, concurrent submissions through the HTTP API under a run limit of 2, and a
run worker killed in the middle of an encode."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import httpx
import opentimelineio as otio
import pytest
import sqlalchemy as sa

from media_pipeline import db
from media_pipeline.cli import dagster_postgres_url
from media_pipeline.core.ffmpeg import ffmpeg_exe
from media_pipeline.db.models import CutVersion, Project, Render, Shot
from media_pipeline.platform.run_reaper import PID_EVENT, dead_worker_message
from media_pipeline.samples import make_indexed_movie
from media_pipeline_tests.conftest import throwaway_postgres
from media_pipeline_tests.up_process import free_port, up_command, wait_for_up
from media_pipeline_tests.waiting import service_environment, wait_until

pytestmark = pytest.mark.stack

TOKEN = "stack-postgres-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RATE = 24
PARTITION = "dagster/partition"
MAX_RUNS = 2
T = TypeVar("T")


@dataclass
class Stack:
    home: Path
    ui_port: int
    api_port: int
    database_url: str  # the domain database's SQLAlchemy URL (psycopg 3)
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> None:
        command = up_command(self.home, self.ui_port, self.api_port)
        self.home.mkdir(parents=True, exist_ok=True)
        with (self.home / "up.log").open("ab") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for_up(self.ui_port, self.api_port, self.alive)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.crash()

    def crash(self) -> None:
        """Every process of the stack killed at once, as by a power cut or a recreated container:
        `up`, the services (each in its own session), their code servers, run workers and ffmpeg."""
        assert self.process is not None
        groups = set()
        for pid in [self.process.pid, *descendants(self.process.pid)]:
            with contextlib.suppress(ProcessLookupError):
                groups.add(os.getpgid(pid))
        groups.discard(os.getpgid(0))  # never this test process's own group
        # By process group: a process started between the listing and the kill is in its parent's.
        for group in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        self.process.wait()

    def instance(self) -> dg.DagsterInstance:
        """The stack's Dagster instance: its dagster.yaml reads the Postgres URL from the environment."""
        os.environ["MEDIA_PIPELINE_DAGSTER_POSTGRES_URL"] = dagster_postgres_url(self.database_url)
        return dg.DagsterInstance.from_config(str(self.home / "dagster"))

    def alive(self) -> str | None:
        """For wait_until: a sentence (with the logs) once `up` has exited."""
        if self.process is not None and self.process.poll() is not None:
            return f"media-pipeline up exited with code {self.process.returncode}\n{self.logs()}"
        return None

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in (self.home / "logs").glob("*.log")
        )


def descendants(pid: int) -> list[int]:
    """Every descendant of a process, from Linux's /proc (children first found, grandchildren after)."""
    children: dict[int, list[int]] = defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            children[int(stat.read_text().rsplit(")", 1)[1].split()[1])].append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue  # exited while we looked
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(0), []):
            found.append(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.fixture(scope="module")
def stack_database() -> Iterator[str]:
    """A throwaway Postgres database for one stack, dropped afterwards."""
    with throwaway_postgres("mp_stack") as url:
        yield url


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, stack_database: str) -> Iterator[Stack]:
    if not Path("/proc/self/stat").exists():
        pytest.skip("finds and kills processes through Linux's /proc")
    env = service_environment(
        {
            # Both URLs name the same database, as in docker-compose.yml; `up` gives Dagster's the
            # psycopg2 driver it needs.
            "MEDIA_PIPELINE_DATABASE_URL": stack_database,
            "MEDIA_PIPELINE_DAGSTER_POSTGRES_URL": stack_database,
            "MEDIA_PIPELINE_MAX_CONCURRENT_RUNS": str(MAX_RUNS),
            "MEDIA_PIPELINE_API_TOKEN": TOKEN,
            "MEDIA_PIPELINE_FFMPEG_CONCURRENCY": "2",
            # The plates are generated under pytest's temp folder: media may be read from there.
            "MEDIA_PIPELINE_MEDIA_ROOTS": str(tmp_path_factory.getbasetemp()),
        }
    )
    home = tmp_path_factory.mktemp("stack_pg") / "home"
    stack = Stack(home, free_port(), free_port(), stack_database, env)
    saved = os.environ.get("MEDIA_PIPELINE_DAGSTER_POSTGRES_URL")
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        if saved is None:
            os.environ.pop("MEDIA_PIPELINE_DAGSTER_POSTGRES_URL", None)
        else:
            os.environ["MEDIA_PIPELINE_DAGSTER_POSTGRES_URL"] = saved


@pytest.fixture(scope="module")
def plate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("stack_media")
    return make_indexed_movie(folder / "A001C001.mov", frames=144, rate=Fraction(RATE), start_timecode="01:00:00:00")


def write_cut(path: Path, plate: Path, shots: list[tuple[int, int]]) -> Path:
    """A one-track OTIO timeline: a shot per (start frame in the plate, duration)."""
    timeline = otio.schema.Timeline(name=path.stem)
    timeline.global_start_time = otio.opentime.from_timecode("01:00:00:00", RATE)
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    plate_start = otio.opentime.from_timecode("01:00:00:00", RATE).value
    for index, (start, duration) in enumerate(shots):
        track.append(
            otio.schema.Clip(
                name=f"sh{(index + 1) * 10:03d}",
                media_reference=otio.schema.ExternalReference(target_url=plate.as_uri()),
                source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(plate_start + start, RATE), otio.opentime.RationalTime(duration, RATE)
                ),
            )
        )
    timeline.tracks.append(track)
    otio.adapters.write_to_file(timeline, str(path))
    return path


def post_cut(stack: Stack, path: Path, project: str, name: str) -> dict[str, Any]:
    with httpx.Client(timeout=60) as client:
        response = client.post(
            f"{stack.api}/v1/cuts",
            files={"file": (path.name, path.read_bytes(), "application/octet-stream")},
            data={"project": project, "name": name},
            headers=AUTH,
        )
    assert response.status_code == 202, response.text
    return response.json()


def finished_job(stack: Stack, job_id: str) -> dict[str, Any] | None:
    job = httpx.get(f"{stack.api}/v1/jobs/{job_id}", headers=AUTH, timeout=10).json()
    return job if job["status"] in ("succeeded", "failed", "cancelled") else None


def peak_concurrency(records: list[dg.RunRecord]) -> int:
    """The most runs in progress at any moment, from their start and end times."""
    changes = []
    for record in records:
        assert record.start_time is not None and record.end_time is not None, record.dagster_run.run_id
        changes += [(record.start_time, 1), (record.end_time, -1)]
    peak = running = 0
    # At equal times the end comes first: a run that starts as another ends does not overlap it.
    for _, change in sorted(changes):
        running += change
        peak = max(peak, running)
    return peak


def test_concurrent_cuts_through_the_api_on_postgres(stack: Stack, plate: Path, tmp_path: Path) -> None:
    # Three versions of reel1 and two of reel2 at once: version numbers are allocated under load.
    submissions = [
        ("reel1", [(0, 12), (12, 12), (30, 18), (50, 10), (70, 20), (100, 24)]),
        ("reel1", [(2, 12), (14, 12), (32, 18), (52, 10), (72, 20), (102, 24)]),
        ("reel2", [(4, 10), (20, 10), (40, 10), (60, 10), (80, 10), (120, 10)]),
        ("reel1", [(6, 12), (18, 12), (36, 18), (56, 10), (76, 20), (106, 24)]),
        ("reel2", [(8, 10), (24, 10), (44, 10), (64, 10), (84, 10), (124, 10)]),
    ]
    paths = [write_cut(tmp_path / f"{name}_{i}.otio", plate, shots) for i, (name, shots) in enumerate(submissions)]
    with ThreadPoolExecutor(len(paths)) as pool:
        created = list(pool.map(lambda i: post_cut(stack, paths[i], "stackpg", submissions[i][0]), range(len(paths))))

    started = time.monotonic()
    jobs = {}
    for body in created:
        jobs[body["job"]["id"]] = wait_until(
            lambda job_id=body["job"]["id"]: finished_job(stack, job_id),
            timeout=max(1.0, 600 - (time.monotonic() - started)),
            what=f"job {body['job']['id']}",
            alive=stack.alive,
        )
    assert [job["status"] for job in jobs.values()] == ["succeeded"] * 5, [
        (job["status"], job["error"]) for job in jobs.values()
    ]

    with db.session_scope(stack.database_url) as session:
        cuts = session.scalars(
            sa.select(CutVersion).join(Project).where(Project.name == "stackpg").order_by(CutVersion.id)
        ).all()
        assert len(cuts) == 5 and len({cut.partition_key for cut in cuts}) == 5
        versions: dict[str, list[int]] = defaultdict(list)
        for cut in cuts:
            versions[cut.name].append(cut.version)
            assert (cut.status, cut.shot_count) == ("ingested", 6), cut.partition_key
            shot_ids = set(session.scalars(sa.select(Shot.id).where(Shot.cut_version_id == cut.id)))
            thumbnails = session.scalars(
                sa.select(Render.shot_id).where(Render.cut_version_id == cut.id, Render.kind == "thumbnail")
            ).all()
            assert len(shot_ids) == 6 and sorted(thumbnails) == sorted(shot_ids), cut.partition_key
        assert {name: sorted(numbers) for name, numbers in versions.items()} == {"reel1": [1, 2, 3], "reel2": [1, 2]}

    with stack.instance() as instance:
        run_ids = {job["run_id"] for job in jobs.values()}
        records = [r for r in instance.get_run_records() if r.dagster_run.run_id in run_ids]
        assert len(records) == 5
        assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in records)
        # `up` wrote MEDIA_PIPELINE_MAX_CONCURRENT_RUNS into the instance, and the daemon kept to
        # it. Whether two runs overlapped at all is not asserted: the daemon launches runs one
        # after another, 2-3 s each on two cores, about as long as one of these runs takes.
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == MAX_RUNS
        assert 1 <= peak_concurrency(records) <= MAX_RUNS


# -- run workers killed in the middle of an encode ------------------------------------------------

# veryslow at 1080p takes a few seconds per 48-frame segment on two cores: long enough to kill
# a run mid-encode, short enough to re-run. Each test conforms different frames, so the content-
# addressed segments of one are not reused by the other.
FINAL_CONFIG = {"preset": "veryslow", "audio": False}
SEGMENT_FRAMES = 48


@pytest.fixture(scope="module")
def plate_1080(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("stack_media_1080")
    return make_indexed_movie(
        folder / "B001C001.mov", frames=480, rate=Fraction(RATE), size=(1920, 1080), start_timecode="01:00:00:00"
    )


def ingested_cut(stack: Stack, plate: Path, folder: Path, name: str, first: int) -> tuple[int, str]:
    shots = [(first + 60 * i, SEGMENT_FRAMES) for i in range(4)]
    body = post_cut(stack, write_cut(folder / f"{name}.otio", plate, shots), "stackkill", name)
    job = wait_until(
        lambda: finished_job(stack, body["job"]["id"]), timeout=300, what=f"the ingest of {name}", alive=stack.alive
    )
    assert job["status"] == "succeeded", job
    return body["cut"]["id"], body["cut"]["partition_key"]


def submit_final_video(stack: Stack, cut_id: int) -> tuple[str, str]:
    """(run id, job id) of a final_video render requested through the API."""
    response = httpx.post(
        f"{stack.api}/v1/cuts/{cut_id}/final-video",
        json={"resolution": "1920x1080", **FINAL_CONFIG},
        headers=AUTH,
        timeout=30,
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    run_id = wait_until(
        lambda: httpx.get(f"{stack.api}/v1/jobs/{job_id}", headers=AUTH, timeout=10).json()["run_id"],
        timeout=300,
        what="the final video job's run",
        alive=stack.alive,
    )
    return run_id, job_id


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records:
        match = PID_EVENT.match(record.event_log_entry.dagster_event.message or "")  # type: ignore[union-attr]
        if match:
            return int(match["pid"])
    return None


def encoding_worker(stack: Stack, instance: dg.DagsterInstance, run_id: str) -> tuple[int, list[int]]:
    """The run's worker pid and its processes, once the run is STARTED and ffmpeg is encoding."""

    def encoding() -> tuple[int, list[int]] | None:
        run = instance.get_run_by_id(run_id)
        assert run is not None and not run.is_finished, run and run.status
        pid = worker_pid(instance, run_id) if run.status == dg.DagsterRunStatus.STARTED else None
        if pid is None:
            return None
        children = descendants(pid)
        return (pid, children) if any("libx264" in cmdline(child) for child in children) else None

    return wait_until(encoding, timeout=300, what="a segment of the final video encoding", alive=stack.alive)


def finished_run(stack: Stack, instance: dg.DagsterInstance, run_id: str, timeout: float) -> dg.DagsterRun:
    def finished() -> dg.DagsterRun | None:
        run = instance.get_run_by_id(run_id)
        return run if run is not None and run.is_finished else None

    return wait_until(finished, timeout=timeout, what=f"run {run_id} to finish", alive=stack.alive)


def run_failures(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    return [record.event_log_entry.dagster_event.message or "" for record in records]  # type: ignore[union-attr]


def assert_nothing_half_written(stack: Stack, partition_key: str) -> None:
    """No final_video.mp4, and every visible segment a whole one: an interrupted encode leaves
    at most hidden .partial files."""
    cut_dir = stack.home / "artifacts" / "cuts" / partition_key
    # final_video_parts/ is the join's working folder (slates for short segments), never served.
    leftovers = [p.name for p in cut_dir.iterdir() if "final_video" in p.name and p.name != "final_video_parts"]
    assert all(name.startswith(".") and ".partial" in name for name in leftovers), leftovers
    for segment in (stack.home / "artifacts" / "segments").rglob("*"):
        if segment.is_file() and not segment.name.startswith("."):
            assert decoded_frames(segment) == SEGMENT_FRAMES, segment


def decoded_frames(path: Path) -> int:
    raw = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-vf", "scale=16:9", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return len(raw) // (16 * 9)


def rerun_succeeds(stack: Stack, instance: dg.DagsterInstance, cut_id: int, partition_key: str) -> None:
    run_id, _ = submit_final_video(stack, cut_id)
    run = finished_run(stack, instance, run_id, 600)  # a 1080p render; minutes on a loaded machine
    assert run.status == dg.DagsterRunStatus.SUCCESS, stack.logs()
    output = stack.home / "artifacts" / "cuts" / partition_key / "final_video.mp4"
    assert decoded_frames(output) == 4 * SEGMENT_FRAMES


def test_a_killed_run_worker_fails_its_run_and_a_rerun_succeeds(stack: Stack, plate_1080: Path, tmp_path: Path) -> None:
    cut_id, key = ingested_cut(stack, plate_1080, tmp_path, "conform_a", first=0)
    with stack.instance() as instance:
        run_id, job_id = submit_final_video(stack, cut_id)
        pid, children = encoding_worker(stack, instance, run_id)
        # As the OOM killer would: the worker, then the ffmpeg processes it started.
        os.kill(pid, signal.SIGKILL)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)

        # The code server that started the worker is alive: it notices its child's death and
        # fails the run itself (within a second), before the reaper would; the engine event
        # before the failure names the signal.
        run = finished_run(stack, instance, run_id, 180)
        assert run.status == dg.DagsterRunStatus.FAILURE
        engine = [
            record.event_log_entry.dagster_event.message or ""  # type: ignore[union-attr]
            for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records
        ]
        assert any("was terminated by signal 9 (SIGKILL)" in message for message in engine), engine
        job = httpx.get(f"{stack.api}/v1/jobs/{job_id}", headers=AUTH, timeout=10).json()
        assert job["status"] == "failed" and "killed or ran out of memory" in job["error"], job
        assert_nothing_half_written(stack, key)

        rerun_succeeds(stack, instance, cut_id, key)
        assert len(run_failures(instance, run_id)) == 1  # failed once: the reaper left it alone
        # The pool slot the killed step held is given back by the daemon's run monitoring
        # (free_slots_after_run_end_seconds), or two such kills would block every render.
        wait_until(
            lambda: run_id not in instance.event_log_storage.get_concurrency_run_ids(),
            timeout=300,
            what="the killed run's ffmpeg pool slot to be freed",
            alive=stack.alive,
        )


def test_runs_a_crashed_stack_left_started_are_failed_by_the_reaper(
    stack: Stack, plate_1080: Path, tmp_path: Path
) -> None:
    cut_id, key = ingested_cut(stack, plate_1080, tmp_path, "conform_b", first=240)
    with stack.instance() as instance:
        run_id, job_id = submit_final_video(stack, cut_id)
        pid, _ = encoding_worker(stack, instance, run_id)
        # The code server dies with its worker (a recreated `code` container, `up` killed, the
        # host out of memory): nobody is left to notice, and the run stays STARTED.
        stack.crash()
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED  # type: ignore[union-attr]
        assert_nothing_half_written(stack, key)

        stack.start()
        # Found at the reaper's first evaluation in the new code server (about 15 s here).
        run = finished_run(stack, instance, run_id, 300)
        assert run.status == dg.DagsterRunStatus.FAILURE
        assert run_failures(instance, run_id) == [dead_worker_message(pid)]
        assert run_id not in instance.event_log_storage.get_concurrency_run_ids()  # its pool slot given back
        if job_id is not None:  # what an API client is told
            job = httpx.get(f"{stack.api}/v1/jobs/{job_id}", headers=AUTH, timeout=10).json()
            assert (job["status"], job["error"]) == ("failed", dead_worker_message(pid)), job

        rerun_succeeds(stack, instance, cut_id, key)
