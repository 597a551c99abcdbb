"""From a Dagster run and its event log to what a job reports: status, progress, stage, error, logs."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dagster as dg

from api.schemas import JobLog, JobStatus

RunStatus = dg.DagsterRunStatus

# Every member is listed (a test enforces it), so a Dagster upgrade that adds one fails loudly
# instead of reporting a job in a state clients cannot parse.
RUN_STATUS_TO_JOB: dict[dg.DagsterRunStatus, JobStatus] = {
    RunStatus.QUEUED: "queued",
    RunStatus.NOT_STARTED: "queued",
    RunStatus.STARTING: "queued",
    RunStatus.MANAGED: "queued",
    RunStatus.STARTED: "running",
    # Waiting on external work with no worker, on purpose: not finished, so still running.
    RunStatus.SUSPENDED: "running",
    RunStatus.SUCCESS: "succeeded",
    RunStatus.FAILURE: "failed",
    # A cancel was requested but the run is still stopping (steps are being interrupted);
    # it is `cancelled` only once Dagster reports CANCELED.
    RunStatus.CANCELING: "running",
    RunStatus.CANCELED: "cancelled",
}
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})

# How much of a job each step is worth. Thumbnails and the conform dominate: they are where the
# time goes, and the steps that report their own progress (PROGRESS_LINES).
# Steps missing here count for nothing (progress then waits on the others, it never goes back).
STEP_WEIGHTS: dict[str, dict[str, float]] = {
    "ingest_cut": {
        "cut_timeline": 0.1,
        "cut_shots": 0.15,
        "cut_diff": 0.05,
        "shot_thumbnails": 0.6,
        "contact_sheet": 0.1,
    },
    "render_thumbnails": {"shot_thumbnails": 0.85, "contact_sheet": 0.15},
    "render_shot_thumbnail": {"shot_thumbnails": 1.0},
    "render_final_video": {"final_video": 1.0},
}

# Lines shot_thumbnails logs (see media_pipeline/editorial/assets/cuts.py).
_SHOT_DONE = re.compile(r"^thumbnail (\d+)/(\d+)\b")
_SHOTS_PLANNED = re.compile(r"^(\d+) shot\(s\): (\d+) reused")
# The line final_video logs about once a second while encoding (media_pipeline/editorial/assets/final_video.py).
_FRAMES_ENCODED = re.compile(r"^conform (\d+)/(\d+) frames encoded\b")

_LOGGED_EVENTS = {
    dg.DagsterEventType.RUN_ENQUEUED,
    dg.DagsterEventType.RUN_STARTING,
    dg.DagsterEventType.RUN_START,
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.RUN_CANCELING,
    dg.DagsterEventType.RUN_CANCELED,
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.ASSET_MATERIALIZATION,
}
MAX_ERROR_CHARS = 600


def job_status(status: dg.DagsterRunStatus) -> JobStatus:
    return RUN_STATUS_TO_JOB[status]


@dataclass
class StepState:
    started: list[str] = field(default_factory=list)  # in start order
    succeeded: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    # For the steps in PROGRESS_LINES: units (shots, frames) finished, and how many there are.
    done: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)

    def count(self, step: str, done: int, total: int | None = None) -> None:
        # Lines can arrive out of order (several threads log them): never go back.
        self.done[step] = max(self.done.get(step, 0), done)
        if total is not None:
            self.total[step] = total


def _count_shots(message: str, state: StepState) -> None:
    if match := _SHOT_DONE.match(message):
        state.count("shot_thumbnails", int(match[1]), int(match[2]))
    elif match := _SHOTS_PLANNED.match(message):
        # Reused thumbnails are done the moment they are planned; they log no line of their own.
        state.count("shot_thumbnails", int(match[2]), int(match[1]))


def _count_frames(message: str, state: StepState) -> None:
    if match := _FRAMES_ENCODED.match(message):
        state.count("final_video", int(match[1]), int(match[2]))


# Steps that report their own progress in log lines, and how to read those lines.
PROGRESS_LINES: dict[str, Callable[[str, StepState], None]] = {
    "shot_thumbnails": _count_shots,
    "final_video": _count_frames,
}
# mp_renders rows back up the lines of this step: each finished shot writes one.
RENDERS_STEP = "shot_thumbnails"


def step_state(events: Sequence[dg.EventLogEntry]) -> StepState:
    state = StepState()
    for entry in events:
        event = entry.dagster_event
        if event is None:
            reader = PROGRESS_LINES.get(entry.step_key or "")
            if reader is not None:
                reader(entry.user_message, state)
            continue
        step = event.step_key
        if step is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START and step not in state.started:
            state.started.append(step)
        elif event.event_type == dg.DagsterEventType.STEP_SUCCESS:
            state.succeeded.add(step)
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            state.failed.add(step)
    return state


def progress(job_name: str, status: JobStatus, state: StepState, renders_done: int = 0) -> float:
    """0..1 from finished steps plus the finished share of the running steps that report one.

    `renders_done` (thumbnail rows in mp_renders the run wrote) backs up the thumbnail lines:
    each finished shot writes one row, so progress cannot fall behind even if a line is late.
    """
    if status == "succeeded":
        return 1.0
    weights = STEP_WEIGHTS.get(job_name, {})
    if not weights:
        return 0.0
    total_weight = sum(weights.values())
    done = sum(weights.get(step, 0.0) for step in state.succeeded)
    for step in PROGRESS_LINES:
        total = state.total.get(step)
        if step not in state.started or step in state.succeeded or not total:
            continue
        units = state.done.get(step, 0)
        if step == RENDERS_STEP:
            units = max(units, renders_done)
        done += weights.get(step, 0.0) * min(units, total) / total
    # Never claim completion before Dagster does.
    return round(min(done / total_weight, 0.99), 3)


def stage(run_status: dg.DagsterRunStatus | None, state: StepState) -> str:
    if run_status is None or run_status in (RunStatus.QUEUED, RunStatus.NOT_STARTED, RunStatus.MANAGED):
        return "queued"
    if run_status == RunStatus.STARTING:
        return "starting"
    if run_status == RunStatus.SUCCESS:
        return "done"
    if run_status == RunStatus.CANCELING:
        return "cancelling"
    failed = [step for step in state.started if step in state.failed]
    if failed:
        return failed[0]
    running = [step for step in state.started if step not in state.succeeded]
    if running:
        return running[-1]
    if state.started:
        return state.started[-1]
    if run_status == RunStatus.FAILURE:
        return "failed"
    if run_status == RunStatus.CANCELED:
        return "cancelled"
    return "starting"


_WORKER_EXIT = re.compile(r"unexpectedly|terminated by signal|exited with", re.IGNORECASE)


def failure_sentence(events: Sequence[dg.EventLogEntry], run_id: str) -> str:
    """What went wrong, for a user: the dg.Failure description a step raised, else the first
    line of the error; never a stack trace."""
    fallback: str | None = None
    worker_exit: str | None = None
    for entry in events:
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.ENGINE_EVENT and _WORKER_EXIT.search(event.message or ""):
            # The code server's own report that the run's process died (killed, out of memory).
            worker_exit = event.message
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            data = event.step_failure_data
            user = getattr(data, "user_failure_data", None)
            if user is not None and user.description:
                return _clip(user.description)
            if data.error is not None:
                return _clip(f"step {event.step_key} failed: {_error_line(data.error)}")
        elif event.event_type == dg.DagsterEventType.RUN_FAILURE and fallback is None:
            error = getattr(event.event_specific_data, "error", None)
            if error is not None:
                fallback = _clip(_error_line(error))
    if fallback is None and worker_exit:
        fallback = _clip(
            f"{worker_exit.strip().rstrip('.')}: the run's process was killed or ran out of memory; "
            "submit the job again (finished work is reused)"
        )
    return fallback or f"the run failed before any step reported why; open run {run_id} in the Dagster UI"


def _error_line(error: object) -> str:
    # The innermost cause is the user's exception; the outer ones are Dagster's wrappers.
    while getattr(error, "cause", None) is not None:
        error = error.cause  # type: ignore[attr-defined]
    message = str(getattr(error, "message", "") or "").strip()
    first = message.splitlines()[0] if message else type(error).__name__
    # "dagster._core.errors.SomeError: reason" -> "SomeError: reason"
    head, sep, rest = first.partition(": ")
    if sep and "." in head and " " not in head:
        first = f"{head.rsplit('.', 1)[-1]}: {rest}"
    return first


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def recent_logs(events: Sequence[dg.EventLogEntry], limit: int = 50) -> list[JobLog]:
    lines: list[JobLog] = []
    for entry in events:
        event = entry.dagster_event
        if event is not None and event.event_type not in _LOGGED_EVENTS:
            continue
        message = entry.user_message or (event.message if event is not None else "") or ""
        if not message:
            continue
        lines.append(
            JobLog(
                ts=dt.datetime.fromtimestamp(entry.timestamp, dt.UTC),
                level=logging.getLevelName(entry.level) if isinstance(entry.level, int) else str(entry.level),
                # Log lines are for reading, not for stack traces.
                msg=_clip(message.splitlines()[0]),
                step=entry.step_key,
            )
        )
    return lines[-limit:]
