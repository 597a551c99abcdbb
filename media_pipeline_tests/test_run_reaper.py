"""The run worker reaper on a real Dagster instance, with real processes started and killed here."""

from __future__ import annotations

import inspect
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import DagsterEvent, EngineEventData
from dagster._core.test_utils import create_run_for_test

from media_pipeline.platform import run_reaper
from media_pipeline.platform.executors import HOST_TAG
from media_pipeline.platform.run_reaper import dead_worker_message, reap, run_worker, run_worker_reaper
from media_pipeline_tests.waiting import wait_until

STARTED = dg.DagsterRunStatus.STARTED
LINUX_PROC = Path("/proc/self/stat").exists()


def started_run(
    instance: dg.DagsterInstance, pid: int | None, logged_at: float | None = None, host: str | None = None
) -> str:
    """A run in STARTED status, as a code server's run worker leaves it: the worker's pid event
    (the message and metadata Dagster writes), then RUN_START; `host`: the host tag its executor
    wrote."""
    run = create_run_for_test(
        instance,
        job_name="render_final_video",
        status=dg.DagsterRunStatus.STARTING,
        tags={HOST_TAG: host} if host else None,
    )
    if pid is not None:
        instance.report_dagster_event(
            DagsterEvent(
                dg.DagsterEventType.ENGINE_EVENT.value,
                job_name=run.job_name,
                message=f"Started process for run (pid: {pid}).",
                event_specific_data=EngineEventData.in_process(pid),
            ),
            run.run_id,
            timestamp=logged_at,
        )
    instance.report_dagster_event(DagsterEvent(dg.DagsterEventType.RUN_START.value, job_name=run.job_name), run.run_id)
    assert instance.get_run_by_id(run.run_id).status == STARTED  # type: ignore[union-attr]
    return run.run_id


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    process.kill()
    process.wait()  # collected: the pid no longer exists
    return process.pid


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def failures(instance: dg.DagsterInstance, run_id: str) -> list[dg.EventLogEntry]:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    return [record.event_log_entry for record in records]


def test_the_pid_event_is_the_one_dagster_writes() -> None:
    # Guards a Dagster upgrade: the reaper reads this exact message of the code server's worker.
    from dagster._grpc import impl

    source = inspect.getsource(impl._run_in_subprocess)
    assert 'f"Started process for run (pid: {pid}).",' in source
    assert "EngineEventData.in_process(pid)" in source


def test_a_run_whose_worker_is_gone_is_failed_with_a_sentence(instance: dg.DagsterInstance) -> None:
    pid = dead_pid()
    logged_at = time.time() - 60
    run_id = started_run(instance, pid, logged_at=logged_at)
    # The timestamp given is the one stored: compared with itself, not with a second clock
    # reading that a loaded machine takes seconds later.
    assert run_worker(instance, run_id) == run_reaper.Worker(pid, pytest.approx(logged_at, abs=0.01))
    # Its step held a slot of the ffmpeg pool when it died.
    storage = instance.event_log_storage
    storage.set_concurrency_slots("ffmpeg", 2)
    assert storage.claim_concurrency_slot("ffmpeg", run_id, "final_video").is_claimed
    assert storage.get_concurrency_run_ids() == {run_id}

    assert reap(instance, grace=0) == [(run_id, pid)]
    assert storage.get_concurrency_run_ids() == set()  # the slot is given back

    run = instance.get_run_by_id(run_id)
    assert run is not None and run.status == dg.DagsterRunStatus.FAILURE
    (failure,) = failures(instance, run_id)
    sentence = dead_worker_message(pid)
    assert failure.dagster_event is not None and failure.dagster_event.message == sentence
    assert f"(pid {pid})" in sentence and "re-run it from the Dagster UI" in sentence
    # As the error of the failure: what the job API and the UI show as the reason.
    data = failure.dagster_event.event_specific_data
    assert data.error.message == sentence
    assert data.failure_reason.value == "UNEXPECTED_TERMINATION"
    assert reap(instance, grace=0) == []  # not failed twice


def test_only_the_host_that_orchestrates_a_run_judges_its_worker(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDIA_PIPELINE_HOST_ID", "render-01")
    long_ago = time.time() - 600
    # The same dead pid everywhere: on render-02 it may well be a healthy worker.
    pid = dead_pid()
    elsewhere = started_run(instance, pid, logged_at=long_ago, host="render-02")
    here = started_run(instance, pid, logged_at=long_ago, host="render-01")
    untagged = started_run(instance, pid, logged_at=long_ago)
    # Untagged and young: its executor (which writes the tag) may still be loading elsewhere.
    loading = started_run(instance, pid, logged_at=time.time() - run_reaper.UNTAGGED_GRACE_SECONDS / 2)
    assert sorted(reap(instance, grace=0)) == sorted([(here, pid), (untagged, pid)])
    for run_id in (elsewhere, loading):
        assert instance.get_run_by_id(run_id).status == STARTED  # type: ignore[union-attr]
    # render-02's reaper (the simulated second host) judges its own run, and only that one.
    assert reap(instance, grace=0, host_id="render-02") == [(elsewhere, pid)]
    assert instance.get_run_by_id(loading).status == STARTED  # type: ignore[union-attr]


def test_a_run_that_just_started_is_left_alone(instance: dg.DagsterInstance) -> None:
    run_id = started_run(instance, dead_pid(), logged_at=time.time())
    assert reap(instance, grace=0) == []
    assert instance.get_run_by_id(run_id).status == STARTED  # type: ignore[union-attr]


def test_a_live_worker_and_a_run_without_worker_are_left_alone(
    instance: dg.DagsterInstance, sleeper: subprocess.Popen[bytes]
) -> None:
    alive = started_run(instance, sleeper.pid, logged_at=time.time() - 0.5)
    time.sleep(0.1)
    # Executed in some other process (execute_in_process, dg.materialize): no pid event.
    in_process = started_run(instance, None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run_reaper, "START_GRACE_SECONDS", 0.0)
        assert reap(instance, grace=0) == []
    for run_id in (alive, in_process):
        assert instance.get_run_by_id(run_id).status == STARTED  # type: ignore[union-attr]


@pytest.mark.skipif(not LINUX_PROC, reason="process start times and states come from Linux's /proc")
def test_a_reused_pid_or_a_zombie_is_not_the_worker(
    instance: dg.DagsterInstance, sleeper: subprocess.Popen[bytes]
) -> None:
    # The pid was logged an hour before the process now holding it started: a new container
    # numbering its pids from 1 again, or pids wrapping around.
    reused = started_run(instance, sleeper.pid, logged_at=time.time() - 3600)
    # Killed but not collected by its parent (this test): a zombie still answers kill(pid, 0).
    zombie = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        zombie.kill()
        wait_until(
            lambda: Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z",
            what="the killed child to become a zombie",
            interval=0.05,
        )
        unreaped = started_run(instance, zombie.pid, logged_at=time.time() - 60)
        assert sorted(reap(instance, grace=0)) == sorted([(reused, sleeper.pid), (unreaped, zombie.pid)])
    finally:
        zombie.wait()


def test_the_code_server_failing_the_run_first_wins(instance: dg.DagsterInstance) -> None:
    run_id = started_run(instance, dead_pid(), logged_at=time.time() - 60)

    def code_server() -> None:  # what Dagster's code server does when it sees its child exit
        time.sleep(0.2)
        instance.report_run_failed(instance.get_run_by_id(run_id))  # type: ignore[arg-type]

    thread = threading.Thread(target=code_server)
    thread.start()
    assert reap(instance, grace=1.0) == []
    thread.join()
    assert len(failures(instance, run_id)) == 1


def test_the_sensor_fails_dead_runs_and_reports_them(instance: dg.DagsterInstance) -> None:
    context = dg.build_sensor_context(instance=instance)
    assert run_worker_reaper.default_status == dg.DefaultSensorStatus.RUNNING
    assert run_worker_reaper.minimum_interval_seconds == 15
    result = run_worker_reaper(context)
    assert isinstance(result, dg.SkipReason) and "alive" in (result.skip_message or "")

    pid = dead_pid()
    run_id = started_run(instance, pid, logged_at=time.time() - 30)
    result = run_worker_reaper(dg.build_sensor_context(instance=instance))
    assert isinstance(result, dg.SkipReason) and run_id in (result.skip_message or "")
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE  # type: ignore[union-attr]


def test_the_definitions_run_the_reaper() -> None:
    from media_pipeline.definitions import defs

    names = [sensor.name for sensor in defs.get_repository_def().sensor_defs]
    assert "run_worker_reaper" in names
