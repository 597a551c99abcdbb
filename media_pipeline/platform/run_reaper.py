"""Fails runs whose run worker process died without reporting a result.

Dagster's DefaultRunLauncher cannot check a run worker's health, so run monitoring never
notices a dead worker. While the code server that started a worker lives, it sees its child
exit and fails the run itself (within half a second). When the code server goes too (the `code`
container restarted or recreated, `media-pipeline up` killed, the host's OOM killer), nobody is
left to notice: the run stays STARTED forever and keeps one of the
MEDIA_PIPELINE_MAX_CONCURRENT_RUNS slots, so the queue stalls once enough runs died that way.

This sensor finds such runs by the pid their worker logged ("Started process for run (pid: N)"),
fails them with a sentence saying what to do, and gives back the pool slots their steps held.

Hosts: a run worker is a process of the machine whose code server started it (sensors are
evaluated in that code server too), and its pid means something only there. Every run's
executor tags it with the host id of the process orchestrating it (`media_pipeline/host`, from
MEDIA_PIPELINE_HOST_ID; media_pipeline/platform/executors.py) as soon as it starts, and the reaper
judges only runs tagged with its own host id: a second machine (another code server pointed at
the same instance, a `dagster dev` on a laptop) never fails a healthy run. A run without the tag
(started before tags were written, or whose worker died while loading the code, before its
executor started) is judged as this host's once its pid event is UNTAGGED_GRACE_SECONDS old,
which is longer than any worker takes to start its executor. Steps executed by Celery workers are
not judged here: their tasks are acknowledged late, so a worker that dies gives its step back
to the queue for another worker. The reaper does nothing unless this instance's run launcher is
the DefaultRunLauncher; launchers that run workers elsewhere bring their own health checks. A pid
reused by an unrelated process (a new container numbers its pids from 1 again) is told apart by
the process's start time, which must precede the pid event.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

# Not exported at dagster's top level in 1.13. With them the run's failure carries our sentence
# as its error, which is what the Dagster UI and the job API show as the reason.
from dagster._core.events import JobFailureData, RunFailureReason
from dagster._utils.error import SerializableErrorInfo

from media_pipeline.platform.executors import HOST_TAG
from media_pipeline.settings import load_settings

INTERVAL_SECONDS = 15
# A worker is judged only once its pid event is this old: nothing is decided about a run
# in the middle of starting.
START_GRACE_SECONDS = 5.0
# A run carries its host tag once its executor starts, seconds after the pid event; one still
# without it this long after is this host's (see the module's docstring).
UNTAGGED_GRACE_SECONDS = 30.0
# The code server that started a worker checks its children every 0.5 s and fails a run whose
# worker died, naming the exit signal. Wait this long before acting, so it goes first whenever
# it is still alive, and a run is never failed twice.
CODE_SERVER_GRACE_SECONDS = 2.0
# /proc's boot time has whole-second resolution.
CLOCK_TOLERANCE_SECONDS = 2.0
# Written by dagster/_grpc/impl.py (code server workers) and dagster/_cli/api.py (execute_run).
PID_EVENT = re.compile(r"^Started process for run \(pid: (?P<pid>\d+)\)")


def dead_worker_message(pid: int) -> str:
    return (
        f"the run's worker process (pid {pid}) exited without reporting a result, probably killed or out of "
        "memory; re-run it from the Dagster UI or submit the job again"
    )


@dataclass(frozen=True)
class Worker:
    pid: int
    logged_at: float  # Unix time of the pid event; the process started before it


def run_worker(instance: dg.DagsterInstance, run_id: str) -> Worker | None:
    """The run's latest worker, from its pid event; None for runs executed in some other process
    (`execute_in_process`, `dg.materialize`), which log none and are left alone."""
    cursor = None
    while True:
        page = instance.get_records_for_run(
            run_id, cursor=cursor, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=100, ascending=False
        )
        for record in page.records:
            entry = record.event_log_entry
            match = PID_EVENT.match(entry.dagster_event.message or "") if entry.dagster_event else None
            if match:
                return Worker(int(match["pid"]), entry.timestamp)
        if not page.has_more:
            return None
        cursor = page.cursor


def _proc_stat(pid: int) -> tuple[str, float] | None:
    """(state, start time as Unix time) of a process, from Linux's /proc; None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(line for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime "))
    except (OSError, StopIteration):
        return None
    # The command name in parentheses may itself contain spaces and parentheses.
    fields = stat[stat.rindex(")") + 2 :].split()
    started = int(boot.split()[1]) + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return fields[0], started


def worker_alive(worker: Worker) -> bool:
    try:
        os.kill(worker.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # a process of another user holds the pid: the start time decides
    stat = _proc_stat(worker.pid)
    if stat is None:
        return True  # no /proc (macOS): an existing pid is trusted to be the worker
    state, started = stat
    if state in ("Z", "X"):
        return False  # exited; its parent has not collected it
    return started <= worker.logged_at + CLOCK_TOLERANCE_SECONDS


def reap(
    instance: dg.DagsterInstance, *, grace: float = CODE_SERVER_GRACE_SECONDS, host_id: str | None = None
) -> list[tuple[str, int]]:
    """Fail every STARTED run of this host (`host_id`, default MEDIA_PIPELINE_HOST_ID) whose worker
    is gone; (run id, pid) of each run failed."""
    host_id = host_id or load_settings().host_id
    suspects: list[tuple[str, Worker]] = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        run_id = record.dagster_run.run_id
        owner = record.dagster_run.tags.get(HOST_TAG)
        if owner is not None and owner != host_id:
            continue  # its pid is a pid of another machine: that machine's reaper judges it
        worker = run_worker(instance, run_id)
        if worker is None:
            continue
        age = time.time() - worker.logged_at
        if age < (START_GRACE_SECONDS if owner else UNTAGGED_GRACE_SECONDS) or worker_alive(worker):
            continue
        suspects.append((run_id, worker))
    if suspects and grace > 0:
        time.sleep(grace)
    reaped: list[tuple[str, int]] = []
    for run_id, worker in suspects:
        run = instance.get_run_by_id(run_id)
        if run is None or run.status != dg.DagsterRunStatus.STARTED:
            continue  # finished meanwhile, or failed by its code server
        # A dead step never gives back its pool slot (the `ffmpeg` pool allows 2 steps at once):
        # two runs lost like this would block every render for good. Before the failure is
        # reported, so that a run seen failed holds no slot.
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        message = dead_worker_message(worker.pid)
        instance.report_run_failed(
            run,
            message,
            JobFailureData(
                error=SerializableErrorInfo(message=message, stack=[], cls_name=None),
                failure_reason=RunFailureReason.UNEXPECTED_TERMINATION,
            ),
        )
        reaped.append((run_id, worker.pid))
    return reaped


@dg.sensor(
    name="run_worker_reaper",
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Fails started runs of this host (tag media_pipeline/host = MEDIA_PIPELINE_HOST_ID) whose worker "
    "process no longer exists (killed, out of memory, or lost with a restarted code server), so they do not stay "
    "Started and hold a run slot forever. Runs orchestrated on other hosts are left to those hosts.",
)
def run_worker_reaper(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    if not isinstance(context.instance.run_launcher, dg.DefaultRunLauncher):
        return dg.SkipReason("runs are not launched by the DefaultRunLauncher on this host; nothing to check")
    reaped = reap(context.instance)
    for run_id, pid in reaped:
        context.log.warning(f"run {run_id} failed: {dead_worker_message(pid)}")
    if not reaped:
        return dg.SkipReason("every started run's worker process is alive")
    runs = ", ".join(run_id for run_id, _ in reaped)
    return dg.SkipReason(f"failed {len(reaped)} run(s) whose worker process had died: {runs}")
