"""From a Dagster run and its event log to what a job reports: status, progress, stage, error, logs."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dagster as dg

from api.schemas import JobLog, JobStatus
from media_pipeline.platform.job_kinds import step_weights

# Status and failure sentences are the platform's: the job tracker sensor writes the same ones.
from media_pipeline.platform.job_state import RUN_STATUS_TO_JOB as RUN_STATUS_TO_JOB
from media_pipeline.platform.job_state import TERMINAL as TERMINAL
from media_pipeline.platform.job_state import RunStatus, clip
from media_pipeline.platform.job_state import failure_sentence as failure_sentence
from media_pipeline.platform.job_state import job_status as job_status

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
    weights = step_weights(job_name)
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
                msg=clip(message.splitlines()[0]),
                step=entry.step_key,
            )
        )
    return lines[-limit:]
