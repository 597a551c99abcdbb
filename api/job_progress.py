"""Each run's progress, read from its event records with a cursor and kept between requests.

A GET of a running job reads only the records written since the previous GET (of any job of
this API process) and writes nothing anywhere. The folds are kept per process for the most
recently read runs; a run read again after it was dropped is read once from the start.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import dagster as dg

from api import runs
from api.dagster_gateway import DagsterGateway
from media_pipeline.platform import job_kinds
from media_pipeline.platform.run_progress import Change, RunProgress

PAGE = 1000
KEPT_RUNS = 512


def weights_for(job_name: str, kind: str | None = None) -> Mapping[str, float]:
    """How much of a job each step is worth, from its registered kind (nothing for unknown jobs)."""
    return job_kinds.step_weights(job_name, kind)


@dataclass(frozen=True)
class Snapshot:
    progress: float
    percent: int
    stage: str
    items: list[dict]
    logs: list[dict]
    error: str | None


def snapshot(fold: RunProgress, run_status: dg.DagsterRunStatus | None, run_id: str) -> Snapshot:
    progress = fold.progress(run_status)
    status = runs.job_status(run_status) if run_status is not None else None
    return Snapshot(
        progress=progress,
        percent=percent(progress),
        stage=fold.stage(run_status),
        items=[item.as_dict() for item in fold.items.values()],
        logs=[line.as_dict() for line in fold.logs],
        error=runs.failure_sentence(fold.failure_records, run_id) if status == "failed" else None,
    )


def percent(progress: float) -> int:
    # Floor, so 100 means done (0.999 is 99).
    return min(100, int(progress * 100 + 1e-9))


def records_after(gateway: DagsterGateway, run_id: str, cursor: str | None) -> Iterator[tuple[dg.EventLogRecord, str]]:
    """Every record after `cursor`, each with the cursor that follows it."""
    while True:
        records, next_cursor, has_more = gateway.run_records(run_id, cursor, PAGE)
        for record in records:
            yield record, _cursor_after(record)
        if not records or not has_more:
            return
        cursor = next_cursor


def _cursor_after(record: dg.EventLogRecord) -> str:
    from dagster._core.storage.event_log.base import EventLogCursor

    return EventLogCursor.from_storage_id(record.storage_id).to_string()


def advance(gateway: DagsterGateway, run_id: str, fold: RunProgress) -> Iterator[tuple[int, list[Change]]]:
    """Fold in the records written since `fold.cursor`, yielding (storage id, changes) of each
    once it is folded in (a read that fails half-way keeps what it folded)."""
    for record, cursor in records_after(gateway, run_id, fold.cursor):
        changes = fold.apply(record.event_log_entry)
        fold.cursor = cursor
        yield record.storage_id, changes


class ProgressReader:
    """The folds of recently read runs, each brought up to date under its own lock."""

    def __init__(self, kept_runs: int = KEPT_RUNS) -> None:
        self._kept = kept_runs
        self._folds: OrderedDict[str, tuple[threading.Lock, RunProgress]] = OrderedDict()
        self._lock = threading.Lock()

    def read(
        self,
        gateway: DagsterGateway,
        run_id: str,
        job_name: str,
        run_status: dg.DagsterRunStatus,
        kind: str | None = None,
    ) -> Snapshot:
        with self._lock:
            entry = self._folds.get(run_id)
            if entry is None:
                entry = self._folds[run_id] = (threading.Lock(), RunProgress(weights_for(job_name, kind)))
            self._folds.move_to_end(run_id)
            while len(self._folds) > self._kept:
                self._folds.popitem(last=False)
        lock, fold = entry
        with lock:
            for _ in advance(gateway, run_id, fold):
                pass
            return snapshot(fold, run_status, run_id)


READER = ProgressReader()
