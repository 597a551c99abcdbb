"""A run's event records folded, one at a time and in storage order, into what a job shows.

The fold is incremental: whoever holds a `RunProgress` feeds it the records after its cursor
(`DagsterInstance.get_records_for_run(run_id, cursor=...)`) and never reads a record twice.
The same fold feeds `GET /v1/jobs/{id}` and the job's event stream, so both say the same.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import dagster as dg

from media_pipeline.platform.job_kinds import CANCEL_TAG
from media_pipeline.platform.progress import ProgressEvent, decode

RunStatus = dg.DagsterRunStatus
LOG_LIMIT = 50
MAX_MESSAGE_CHARS = 600

# Dagster events a user reads as the job's log (every other framework event is noise to them).
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
# The run's own lifecycle, as its records tell it (the run record says the same, later or sooner).
_RUN_STATUS_OF_EVENT = {
    dg.DagsterEventType.RUN_ENQUEUED: RunStatus.QUEUED,
    dg.DagsterEventType.RUN_STARTING: RunStatus.STARTING,
    dg.DagsterEventType.RUN_START: RunStatus.STARTED,
    dg.DagsterEventType.RUN_CANCELING: RunStatus.CANCELING,
    dg.DagsterEventType.RUN_SUCCESS: RunStatus.SUCCESS,
    dg.DagsterEventType.RUN_FAILURE: RunStatus.FAILURE,
    dg.DagsterEventType.RUN_CANCELED: RunStatus.CANCELED,
}
# Records that explain a failure (failure_sentence reads only these; keeping them is cheap).
_FAILURE_EVENTS = {dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.ENGINE_EVENT}
_WORKER_EXIT = re.compile(r"unexpectedly|terminated by signal|exited with", re.IGNORECASE)


@dataclass
class Item:
    id: str
    name: str
    step: str
    status: str = "queued"
    progress: float = 0.0
    error: str | None = None
    cache: str | None = None
    task_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {"id": self.id, "name": self.name, "step": self.step, "status": self.status,
               "progress": self.progress, "error": self.error}  # fmt: skip
        # Only items that have them (cached or provider-made ones) carry these.
        out.update({k: v for k, v in (("cache", self.cache), ("task_id", self.task_id)) if v is not None})
        return out


@dataclass
class LogLine:
    ts: dt.datetime
    level: str
    msg: str
    step: str | None
    item: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"ts": self.ts.isoformat(), "level": self.level, "msg": self.msg, "step": self.step, "item": self.item}


Change = tuple[Literal["log", "item", "step"], Any]


@dataclass
class RunProgress:
    """What the records read so far say; `cursor` is where the next read starts."""

    weights: Mapping[str, float]
    cursor: str | None = None
    run_status: dg.DagsterRunStatus | None = None
    started: list[str] = field(default_factory=list)  # steps, in start order
    succeeded: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    done: dict[str, int] = field(default_factory=dict)  # per reporting step: units finished
    total: dict[str, int] = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)  # a step's own stage name, if it set one
    items: dict[str, Item] = field(default_factory=dict)
    logs: deque[LogLine] = field(default_factory=lambda: deque(maxlen=LOG_LIMIT))
    failure_records: list[dg.EventLogEntry] = field(default_factory=list)
    best: float = 0.0  # the highest progress reported: progress never goes back
    cancel_pending: bool = False  # a cancel was asked for while the run was starting

    def apply(self, entry: dg.EventLogEntry) -> list[Change]:
        """Fold one record in; what it changed, for a live stream."""
        event = entry.dagster_event
        if event is None:
            structured = decode(entry.user_message)
            if structured:
                return [change for item in structured for change in self._apply_progress(item)]
            if entry.level == logging.DEBUG:
                # Dagster's own chatter ("Loading file from: <server path>", from the IO manager
                # that hands outputs from step to step): neither for users nor for their eyes.
                return []
            return self._log(entry, entry.user_message)
        changes: list[Change] = []
        kind = event.event_type
        if kind in _RUN_STATUS_OF_EVENT:
            self.run_status = _RUN_STATUS_OF_EVENT[kind]
        step = event.step_key
        if step is not None:
            if kind == dg.DagsterEventType.STEP_START:
                # A step of a graph-backed asset ("final_video.encode_chunk[3]") starts its
                # asset's work too, which is what weights and progress plans name.
                for started in dict.fromkeys((step.split(".", 1)[0], step)):
                    if started not in self.started:
                        self.started.append(started)
            elif kind == dg.DagsterEventType.STEP_SUCCESS:
                self.succeeded.add(step)
            elif kind == dg.DagsterEventType.STEP_FAILURE:
                self.failed.add(step)
            if kind in (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS,
                        dg.DagsterEventType.STEP_FAILURE):  # fmt: skip
                changes.append(("step", step))
        if kind == dg.DagsterEventType.ENGINE_EVENT and CANCEL_TAG in (
            getattr(event.event_specific_data, "metadata", None) or {}
        ):
            self.cancel_pending = True
            changes += self._log(entry, event.message or "")
        worker_exit = kind == dg.DagsterEventType.ENGINE_EVENT and _WORKER_EXIT.search(event.message or "")
        if kind in _FAILURE_EVENTS and (kind != dg.DagsterEventType.ENGINE_EVENT or worker_exit):
            self.failure_records.append(entry)
        if kind in _LOGGED_EVENTS:
            changes += self._log(entry, entry.user_message or event.message or "")
        return changes

    def _apply_progress(self, event: ProgressEvent) -> list[Change]:
        changes: list[Change] = []
        if event.total is not None:
            self.total[event.step] = event.total
        if event.done is not None:
            # Never back: a count is only ever a newer, larger one.
            self.done[event.step] = max(self.done.get(event.step, 0), event.done)
        if event.type == "plan":
            for item_id, name in zip(event.items or [], event.names or event.items or [], strict=False):
                if item_id not in self.items:
                    self.items[item_id] = Item(id=item_id, name=name, step=event.step)
                    changes.append(("item", self.items[item_id]))
            changes.append(("step", event.step))
        elif event.type == "advance":
            changes.append(("step", event.step))
        elif event.type == "stage" and event.stage:
            self.stages[event.step] = event.stage
            changes.append(("step", event.step))
        elif event.type == "item" and event.item is not None:
            item = self.items.setdefault(event.item, Item(id=event.item, name=event.item, step=event.step))
            item.status = event.status or item.status
            if event.progress is not None:
                item.progress = max(item.progress, min(1.0, event.progress))
            item.error = event.error if event.error is not None else item.error
            item.cache = event.cache or item.cache
            item.task_id = event.task_id or item.task_id
            changes.append(("item", item))
            if event.done is not None:
                changes.append(("step", event.step))
        elif event.type == "log" and event.msg:
            line = LogLine(_utc(event.ts), (event.level or "info").upper(), _clip(event.msg), event.step, event.item)
            self.logs.append(line)
            changes.append(("log", line))
        return changes

    def _log(self, entry: dg.EventLogEntry, message: str) -> list[Change]:
        if not message:
            return []
        level = logging.getLevelName(entry.level) if isinstance(entry.level, int) else str(entry.level)
        # Log lines are for reading, not for stack traces.
        line = LogLine(_utc(entry.timestamp), level, _clip(message.splitlines()[0]), entry.step_key, None)
        self.logs.append(line)
        return [("log", line)]

    # -- what a job shows ---------------------------------------------------------------------

    def progress(self, run_status: dg.DagsterRunStatus | None = None) -> float:
        """0..1 from finished steps plus the finished share of running steps that count units.

        Only Dagster says a job is complete: below 1 until the run succeeded, and never lower
        than an earlier answer.
        """
        if (run_status or self.run_status) == RunStatus.SUCCESS:
            return 1.0
        total_weight = sum(self.weights.values())
        if not total_weight:
            return self.best
        done = sum(self.weights.get(step, 0.0) for step in self.succeeded)
        for step, total in self.total.items():
            if step in self.started and step not in self.succeeded and total:
                done += self.weights.get(step, 0.0) * min(self.done_of(step), total) / total
        self.best = max(self.best, round(min(done / total_weight, 0.99), 3))
        return self.best

    def done_of(self, step: str) -> int:
        """Units finished of `step`'s plan: its own count, plus those of its chunks (`step[k]`),
        each of which counts only its own units."""
        return self.done.get(step, 0) + sum(n for name, n in self.done.items() if name.startswith(step + "["))

    def stage(self, run_status: dg.DagsterRunStatus | None = None) -> str:
        status = run_status or self.run_status
        if self.cancel_pending and status not in (RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.CANCELED):
            return "cancelling"
        if status is None or status in (RunStatus.QUEUED, RunStatus.NOT_STARTED, RunStatus.MANAGED):
            return "queued"
        if status == RunStatus.STARTING:
            return "starting"
        if status == RunStatus.SUCCESS:
            return "done"
        if status == RunStatus.CANCELING:
            return "cancelling"
        # A step of a graph-backed asset is shown as its asset: "final_video", not its chunks.
        failed = [step for step in self.started if step in self.failed]
        if failed:
            return failed[0].split(".", 1)[0]
        running = [step for step in self.started if step not in self.succeeded]
        if running:
            return self.stages.get(running[-1], running[-1].split(".", 1)[0])
        if self.started:
            return self.started[-1].split(".", 1)[0]
        if status == RunStatus.FAILURE:
            return "failed"
        if status == RunStatus.CANCELED:
            return "cancelled"
        return "starting"


def _utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"
