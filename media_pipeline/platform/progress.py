"""Structured progress from inside a step: `done` of `total` `unit`s, optionally per item.

Steps never log progress as English sentences for someone to parse back: they call a
ProgressReporter, which records events the job API reads with a cursor.

    with ProgressReporter.for_context(context, unit="shots") as progress:
        progress.plan(total=len(shots), items={str(shot.id): shot.name for shot in shots})
        progress.item_started("12")
        progress.item_done("12")                      # or item_failed("12", "why")
        progress.log("info", "3 thumbnails reused")

Transport: a Dagster log record whose message is `EVENT_PREFIX` and a JSON list of events.
Dagster's event log is already the one store every process of a run writes to and the API
reads (run worker, code server, webserver and API see the same storage, SQLite or Postgres),
and it hands out storage ids to read from (`get_records_for_run(cursor=...)`), so no second
table or transport is needed. Events are batched (at most one record every `FLUSH_SECONDS`
unless something a reader waits for happens) because every record is a storage write: one
per shot of a 200-shot cut would cost more than the renders it reports.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any, Literal

import dagster as dg

EVENT_PREFIX = "media_pipeline.progress "
FLUSH_SECONDS = 0.5
ItemStatus = Literal["queued", "running", "succeeded", "failed", "skipped", "reused"]
Level = Literal["debug", "info", "warning", "error"]
EventType = Literal["plan", "advance", "item", "log", "stage"]


@dataclass
class ProgressEvent:
    type: EventType
    step: str
    ts: float = field(default_factory=time.time)
    unit: str | None = None
    done: int | None = None  # the step's units finished so far (also on the item event that finished one)
    total: int | None = None
    item: str | None = None
    status: ItemStatus | None = None
    progress: float | None = None  # an item's own progress, 0..1
    error: str | None = None
    level: Level | None = None
    msg: str | None = None
    stage: str | None = None
    items: list[str] | None = None  # plan: every item's id, in order
    names: list[str] | None = None  # plan: their display names, same order
    cache: Literal["hit", "miss"] | None = None  # an item made before (hit) or made now (miss)
    task_id: str | None = None  # an item's task at an external provider

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def encode(events: Iterable[ProgressEvent]) -> str:
    return EVENT_PREFIX + json.dumps([event.as_dict() for event in events], sort_keys=True)


def decode(message: str | None) -> list[ProgressEvent]:
    """The events of one record; [] for any other log message (or one that does not parse)."""
    if not message or not message.startswith(EVENT_PREFIX):
        return []
    try:
        raw = json.loads(message[len(EVENT_PREFIX) :])
        return [ProgressEvent(**entry) for entry in (raw if isinstance(raw, list) else [raw])]
    except (ValueError, TypeError):
        return []


class ProgressReporter:
    """Thread-safe: steps report from their ffmpeg worker threads."""

    def __init__(
        self,
        emit: Callable[[str], None],
        step: str,
        unit: str,
        *,
        flush_seconds: float = FLUSH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._emit = emit
        self._step = step
        self._unit = unit
        self._lock = threading.Lock()
        self._done = 0
        self._total: int | None = None
        self._pending: list[ProgressEvent] = []
        self._flush_seconds = flush_seconds
        self._clock = clock
        self._last_flush = clock()

    @classmethod
    def for_context(
        cls, context: dg.AssetExecutionContext | dg.OpExecutionContext, unit: str, *, step: str | None = None
    ) -> ProgressReporter:
        """`step`: the name progress is reported under, by default the op's. Work fanned out
        over mapped steps reports as one: the planning step plans `name`, each chunk advances
        `name[chunk]` (see RunProgress.done_of)."""
        if step is None:
            step = context.op_handle.name if hasattr(context, "op_handle") else context.op.name
        return cls(context.log.info, step, unit)

    def __enter__(self) -> ProgressReporter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.flush()

    # -- what steps call ----------------------------------------------------------------------

    def stage(self, name: str) -> None:
        self._send(ProgressEvent(type="stage", step=self._step, stage=name), urgent=True)

    def plan(self, total: int, items: Mapping[str, str] | Iterable[str] | None = None) -> None:
        """`items`: ids, or ids mapped to display names (shot ids to shot names)."""
        named = dict(items) if isinstance(items, Mapping) else {item: item for item in items or []}
        with self._lock:
            self._total = total
            event = ProgressEvent(
                type="plan", step=self._step, unit=self._unit, total=total, done=self._done,
                items=list(named) or None, names=list(named.values()) or None,
            )  # fmt: skip
            self._queue(event, urgent=True)

    def advance(self, by: int = 1, *, item: str | None = None) -> None:
        """`item`: the item the units belong to, if one (the count is the step's all the same)."""
        with self._lock:
            self._done += by
            self._queue(ProgressEvent(type="advance", step=self._step, unit=self._unit, done=self._done,
                                      total=self._total, item=item))  # fmt: skip

    def item(
        self,
        item: str,
        status: ItemStatus,
        *,
        progress: float | None = None,
        error: str | None = None,
        cache: Literal["hit", "miss"] | None = None,
        task_id: str | None = None,
    ) -> None:
        event = ProgressEvent(
            type="item", step=self._step, item=item, status=status, progress=progress, error=error,
            cache=cache, task_id=task_id,
        )  # fmt: skip
        self._send(event)

    def item_started(self, item: str) -> None:
        self.item(item, "running", progress=0.0)

    def item_done(self, item: str, *, reused: bool = False, advance: int = 1, **details: str | None) -> None:
        """`details`: `cache` ("hit" | "miss"), `task_id`."""
        self._finish_item(item, "reused" if reused else "succeeded", None, advance, **details)

    def item_failed(self, item: str, error: str, *, advance: int = 1, **details: str | None) -> None:
        self._finish_item(item, "failed", error, advance, **details)

    def log(self, level: Level, msg: str, *, item: str | None = None) -> None:
        self._send(ProgressEvent(type="log", step=self._step, level=level, msg=msg, item=item), urgent=True)

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    # -- batching -----------------------------------------------------------------------------

    def _finish_item(
        self, item: str, status: ItemStatus, error: str | None, advance: int, **details: str | None
    ) -> None:
        # One event both finishes the item and moves the step's count, so a reader never sees
        # an item done whose unit is not counted yet.
        with self._lock:
            self._done += advance
            self._queue(ProgressEvent(
                type="item", step=self._step, item=item, status=status, error=error,
                progress=None if status == "failed" else 1.0, unit=self._unit, done=self._done, total=self._total,
                cache=details.get("cache"), task_id=details.get("task_id"),  # type: ignore[arg-type]
            ))  # fmt: skip

    def _send(self, event: ProgressEvent, *, urgent: bool = False) -> None:
        with self._lock:
            self._queue(event, urgent=urgent)

    def _queue(self, event: ProgressEvent, *, urgent: bool = False) -> None:
        self._pending = [old for old in self._pending if not _supersedes(event, old)]
        self._pending.append(event)
        if urgent or self._clock() - self._last_flush >= self._flush_seconds:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if self._pending:
            self._emit(encode(self._pending))
            self._pending = []
        self._last_flush = self._clock()


def _supersedes(new: ProgressEvent, old: ProgressEvent) -> bool:
    """A newer count, or a newer update of a running item, replaces one still waiting to be sent
    (counts are totals so far, not increments: the latest says everything the earlier ones did)."""
    if new.type == old.type == "advance":
        return True
    return new.type == old.type == "item" and new.item == old.item and new.status == old.status == "running"
