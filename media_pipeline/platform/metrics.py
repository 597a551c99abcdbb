"""What `GET /metrics` reports, in Prometheus' terms.

Job figures are read from the job table at scrape time (`JobTableCollector`), never counted in
the process: they agree with the database whatever restarted, and whichever of several API
processes is scraped. Every registered job kind is reported, with zeros for what it has none of.

- `media_pipeline_jobs{kind,status}` (gauge): jobs in each status, all five always present.
- `media_pipeline_job_queue_wait_seconds{kind}` (histogram): created -> run started, for every
  job whose run has started.
- `media_pipeline_job_processing_seconds{kind,status}` (histogram): run started -> run ended,
  for every finished job whose run started (status succeeded, failed or cancelled). Its `_count`
  only grows (jobs are never deleted), so `rate()` of it is the finish rate.
- `media_pipeline_job_table_up` (gauge): 1 when the table was read, 0 when it could not be (the
  other job figures are then missing from that scrape, not zero).

The job tracker writes `started_at` and `finished_at` from the run's record; a job's `status`
in the table follows its run within one tracker interval.

The library's figures are events of one process, so they are process counters: the library
calls `record_upload(...)` and `observe_inline_edit(...)` (or times with `inline_edit_timer()`),
and each API process reports its own (scrape each process, or sum them in PromQL). While no
library area exists nothing calls them and they stay at zero.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from media_pipeline.db.models import Job
from media_pipeline.platform import job_kinds

logger = logging.getLogger(__name__)

STATUSES: tuple[str, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED: tuple[str, ...] = ("succeeded", "failed", "cancelled")
# A run waits for the run queue (MEDIA_PIPELINE_MAX_CONCURRENT_RUNS) and ~2 s of launch.
QUEUE_WAIT_BUCKETS: tuple[float, ...] = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
# From a one-shot thumbnail (seconds) to a long conform or extraction batch (hours).
PROCESSING_BUCKETS: tuple[float, ...] = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)
# Inline image edits answer within one request.
INLINE_EDIT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

JOBS = "media_pipeline_jobs"
QUEUE_WAIT = "media_pipeline_job_queue_wait_seconds"
PROCESSING = "media_pipeline_job_processing_seconds"
TABLE_UP = "media_pipeline_job_table_up"


Column = sa.ColumnElement[object]


def seconds_between(dialect: str, start: Column, end: Column) -> sa.ColumnElement[float]:
    """`end - start` in seconds, in SQL (never negative: the API's and the run's clocks may differ)."""
    if dialect == "sqlite":
        seconds: sa.ColumnElement[float] = (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0
    elif dialect == "postgresql":
        seconds = sa.extract("epoch", end - start)
    else:
        raise NotImplementedError(f"no duration expression for the {dialect} database")
    return sa.case((seconds < 0, 0.0), else_=seconds)


def _bucket_columns(seconds: sa.ColumnElement[float], bounds: Sequence[float]) -> list[sa.ColumnElement[object]]:
    # Cumulative, as Prometheus wants them: each bucket counts everything at or below its bound.
    return [sa.func.sum(sa.case((seconds <= bound, 1), else_=0)) for bound in bounds]


def _histogram(
    session: Session,
    family: HistogramMetricFamily,
    start: Column,
    end: Column,
    bounds: Sequence[float],
    labels: Sequence[sa.ColumnElement[str]],
    every: Iterable[tuple[str, ...]],
    where: Sequence[sa.ColumnElement[bool]] = (),
) -> None:
    seconds = seconds_between(session.get_bind().dialect.name, start, end)
    query = (
        sa.select(*labels, sa.func.count(), sa.func.coalesce(sa.func.sum(seconds), 0.0))
        .add_columns(*_bucket_columns(seconds, bounds))
        .where(start.is_not(None), end.is_not(None), *where)
        .group_by(*labels)
    )
    found = {tuple(row[: len(labels)]): row[len(labels) :] for row in session.execute(query)}
    for key in dict.fromkeys([*every, *found]):
        count, total, *cumulative = found.get(key, (0, 0.0, *[0] * len(bounds)))
        buckets = [(_bound(b), int(n or 0)) for b, n in zip(bounds, cumulative, strict=True)]
        family.add_metric(list(key), [*buckets, ("+Inf", int(count))], float(total))


def _bound(value: float) -> str:
    return repr(float(value))


class JobTableCollector(Collector):
    """The job figures, read from the job table each time Prometheus scrapes."""

    def __init__(self, session: Callable[[], contextlib.AbstractContextManager[Session]]) -> None:
        self.session = session

    def collect(self) -> Iterator[Metric]:
        kinds = sorted(job_kinds.load())
        try:
            with self.session() as session:
                families = list(self._read(session, kinds))
        except Exception as exc:
            # A scrape still answers (process figures, and `up` 0) so the alert says what failed.
            logger.warning("/metrics could not read the job table: %s", exc)
            families = []
        up = GaugeMetricFamily(TABLE_UP, "1 when this scrape read the job table, 0 when it could not")
        up.add_metric([], 1.0 if families else 0.0)
        yield from families
        yield up

    def _read(self, session: Session, kinds: list[str]) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(JOBS, "Jobs in the job table, by kind and status", labels=["kind", "status"])
        counted = {
            (kind, status): count
            for kind, status, count in session.execute(
                sa.select(Job.kind, Job.status, sa.func.count()).group_by(Job.kind, Job.status)
            )
        }
        every = [(kind, status) for kind in kinds for status in STATUSES]
        for key in dict.fromkeys([*every, *counted]):
            jobs.add_metric(list(key), float(counted.get(key, 0)))
        yield jobs

        wait = HistogramMetricFamily(QUEUE_WAIT, "Seconds from a job's creation to its run's start", labels=["kind"])
        _histogram(session, wait, Job.created_at, Job.started_at, QUEUE_WAIT_BUCKETS, [Job.kind], [(k,) for k in kinds])
        yield wait

        processing = HistogramMetricFamily(
            PROCESSING, "Seconds from a job's run start to its end, by final status", labels=["kind", "status"]
        )
        _histogram(
            session,
            processing,
            Job.started_at,
            Job.finished_at,
            PROCESSING_BUCKETS,
            [Job.kind, Job.status],
            [(kind, status) for kind in kinds for status in FINISHED],
            where=[Job.status.in_(FINISHED)],
        )
        yield processing


# -- the library's process counters (the hooks it calls) ------------------------------------------

PROCESS_REGISTRY = CollectorRegistry(auto_describe=True)
UPLOADS = Counter(
    "media_pipeline_uploads",
    "Uploads to the media library by result: stored (new content) or duplicate (a dedupe hit)",
    ["result"],
    registry=PROCESS_REGISTRY,
)
UPLOAD_BYTES = Counter(
    "media_pipeline_upload_bytes",
    "Bytes received by media library uploads, by result: stored or duplicate (not stored again)",
    ["result"],
    registry=PROCESS_REGISTRY,
)
INLINE_EDIT_SECONDS = Histogram(
    "media_pipeline_inline_edit_seconds",
    "Seconds an inline (answered in the request) media library edit took",
    buckets=INLINE_EDIT_BUCKETS,
    registry=PROCESS_REGISTRY,
)
for _result in ("stored", "duplicate"):
    # Present at zero from the start, so dashboards and rate() see the series before the first upload.
    UPLOADS.labels(_result)
    UPLOAD_BYTES.labels(_result)


def record_upload(size_bytes: int, *, duplicate: bool) -> None:
    """The library calls this once per upload it answered: its size, and whether the content
    was already in the library (a dedupe hit, nothing stored twice)."""
    result = "duplicate" if duplicate else "stored"
    UPLOADS.labels(result).inc()
    UPLOAD_BYTES.labels(result).inc(size_bytes)


def observe_inline_edit(seconds: float) -> None:
    """The library calls this with the time one inline edit took."""
    INLINE_EDIT_SECONDS.observe(seconds)


@contextlib.contextmanager
def inline_edit_timer() -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        observe_inline_edit(time.perf_counter() - started)


class Scrape(Collector):
    """Everything one scrape reports: the job table, the library's counters, this process."""

    def __init__(self, session: Callable[[], contextlib.AbstractContextManager[Session]]) -> None:
        self.collectors: list[Collector] = [
            JobTableCollector(session),
            PROCESS_REGISTRY,
            ProcessCollector(registry=None),
        ]

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()
