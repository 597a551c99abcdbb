"""Structured progress from inside a step: `done` of `total` `unit`s, optionally per item.

Steps never log progress as English sentences for someone to parse back: they call a
ProgressReporter, which records events the job API reads with a cursor.

    progress = ProgressReporter.for_context(context, unit="shots")
    progress.plan(total=len(shots), items=[shot.name for shot in shots])
    progress.item_started("sh010")
    progress.advance(item="sh010", done=1)          # or item_done(...) / item_failed(...)
    progress.log("info", "3 thumbnails reused", item=None)

Transport: each event is a Dagster log line carrying the event as JSON in the `extra` of a
structured record (see `EVENT_PREFIX`); the platform's reader turns them into the job's
`progress`, `items[]` and `logs[]`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import dagster as dg

EVENT_PREFIX = "media_pipeline.progress "
ItemStatus = Literal["queued", "running", "succeeded", "failed", "skipped", "reused"]
Level = Literal["debug", "info", "warning", "error"]


@dataclass
class ProgressEvent:
    type: Literal["plan", "advance", "item", "log", "stage"]
    step: str
    ts: float = field(default_factory=time.time)
    unit: str | None = None
    done: int | None = None
    total: int | None = None
    item: str | None = None
    status: ItemStatus | None = None
    progress: float | None = None  # an item's own progress, 0..1
    error: str | None = None
    level: Level | None = None
    msg: str | None = None
    stage: str | None = None
    items: list[str] | None = None

    def encode(self) -> str:
        return EVENT_PREFIX + json.dumps({k: v for k, v in asdict(self).items() if v is not None}, sort_keys=True)

    @classmethod
    def decode(cls, message: str) -> ProgressEvent | None:
        if not message.startswith(EVENT_PREFIX):
            return None
        try:
            return cls(**json.loads(message[len(EVENT_PREFIX) :]))
        except (ValueError, TypeError):
            return None


class ProgressReporter:
    """Thread-safe: steps report from their ffmpeg worker threads."""

    def __init__(self, emit: Any, step: str, unit: str):
        self._emit = emit
        self._step = step
        self._unit = unit
        self._lock = threading.Lock()
        self._done = 0
        self._total: int | None = None

    @classmethod
    def for_context(cls, context: dg.AssetExecutionContext | dg.OpExecutionContext, unit: str) -> ProgressReporter:
        step = context.op_handle.name if hasattr(context, "op_handle") else context.op.name
        return cls(lambda event: context.log.info(event.encode()), step, unit)

    def _send(self, **fields: Any) -> None:
        self._emit(ProgressEvent(step=self._step, **fields))

    def stage(self, name: str) -> None:
        self._send(type="stage", stage=name)

    def plan(self, total: int, items: Iterable[str] | None = None) -> None:
        with self._lock:
            self._total = total
            self._send(type="plan", unit=self._unit, total=total, done=self._done, items=list(items or []) or None)

    def advance(self, by: int = 1, *, item: str | None = None) -> None:
        with self._lock:
            self._done += by
            self._send(type="advance", unit=self._unit, done=self._done, total=self._total, item=item)

    def item(self, item: str, status: ItemStatus, *, progress: float | None = None, error: str | None = None) -> None:
        self._send(type="item", item=item, status=status, progress=progress, error=error)

    def item_started(self, item: str) -> None:
        self.item(item, "running", progress=0.0)

    def item_done(self, item: str, *, reused: bool = False, advance: int = 1) -> None:
        self.item(item, "reused" if reused else "succeeded", progress=1.0)
        self.advance(advance, item=item)

    def item_failed(self, item: str, error: str, *, advance: int = 1) -> None:
        self.item(item, "failed", error=error)
        self.advance(advance, item=item)

    def log(self, level: Level, msg: str, *, item: str | None = None) -> None:
        self._send(type="log", level=level, msg=msg, item=item)
