"""Fails runs whose run worker process died without reporting a result.

Dagster's DefaultRunLauncher cannot check a run worker's health, so run monitoring never
notices a dead worker. While the code server that started a worker lives, it sees its child
exit and fails the run itself (within half a second). When the code server goes too (the `code`
container restarted or recreated, `media-pipeline up` killed, the host's OOM killer), nobody is
left to notice: the run stays STARTED forever and keeps one of the
MEDIA_PIPELINE_MAX_CONCURRENT_RUNS slots, so the queue stalls once enough runs died that way.

This sensor finds such runs by the pid their worker logged ("Started process for run (pid: N)"),
fails them with a sentence saying what to do, and gives back the pool slots their steps held.

Single host: sensors are evaluated inside the code location server, which is also the process
that starts run workers under the DefaultRunLauncher, so a worker's pid is a pid of this host
(and of this container: one `code` container evaluates the sensors and runs the workers). The
pid event carries no host name, so a run launched elsewhere against the same instance (say a
`dagster dev` on a laptop pointed at the production database) would look dead here; the reaper
therefore does nothing unless this instance's run launcher is the DefaultRunLauncher, and
deployments whose runs execute on other machines must use a launcher that checks worker health
instead. A pid reused by an unrelated process (a new container numbers its pids from 1 again)
is told apart by the process's start time, which must precede the pid event.
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

INTERVAL_SECONDS = 15
# A worker is judged only once its pid event is this old: nothing is decided about a run
# in the middle of starting.
START_GRACE_SECONDS = 5.0
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


def reap(instance: dg.DagsterInstance, *, grace: float = CODE_SERVER_GRACE_SECONDS) -> list[tuple[str, int]]:
    """Fail every STARTED run whose worker is gone; (run id, pid) of each run failed."""
    suspects: list[tuple[str, Worker]] = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        run_id = record.dagster_run.run_id
        worker = run_worker(instance, run_id)
        if worker is None or time.time() - worker.logged_at < START_GRACE_SECONDS or worker_alive(worker):
            continue
        suspects.append((run_id, worker))
    if suspects and grace > 0:
        time.sleep(grace)
    reaped: list[tuple[str, int]] = []
    for run_id, worker in suspects:
        run = instance.get_run_by_id(run_id)
        if run is None or run.status != dg.DagsterRunStatus.STARTED:
            continue  # finished meanwhile, or failed by its code server
        message = dead_worker_message(worker.pid)
        instance.report_run_failed(
            run,
            message,
            JobFailureData(
                error=SerializableErrorInfo(message=message, stack=[], cls_name=None),
                failure_reason=RunFailureReason.UNEXPECTED_TERMINATION,
            ),
        )
        # A dead step never gives back its pool slot (the `ffmpeg` pool allows 2 steps at once):
        # two runs lost like this would block every render for good.
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        reaped.append((run_id, worker.pid))
    return reaped


@dg.sensor(
    name="run_worker_reaper",
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Fails started runs whose worker process no longer exists on this host (killed, out of memory, "
    "or lost with a restarted code server), so they do not stay Started and hold a run slot forever.",
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
