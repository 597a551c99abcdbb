"""A job's live events, for Server-Sent Events and WebSockets alike.

Every event comes from one of the run's event records, folded by the same code as
`GET /v1/jobs/{id}` (media_pipeline/platform/run_progress.py), so the stream and a poll never
disagree. An event's id is `<storage id of its record>.<n>` (the n-th event that record gave),
so a client that resumes after an id gets exactly the events that followed it: the stream is
rebuilt from the run's first record and everything up to that id is left out. The last event is
always `end`, with the whole job as `GET /v1/jobs/{id}` answers it, also for a client that
connects (or resumes) after the job has finished.

Kinds: `progress` (`status`, `progress`, `percent`, `stage`, whenever one of them changes),
`item` (one of the job's `items[]`), `log` (one of its `logs[]`), `end`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool

from api import job_progress, runs
from api.dagster_gateway import DagsterGateway, GatewayError
from api.job_service import job_view
from api.problems import field_problem
from api.schemas import JobItem, JobLog
from media_pipeline import db
from media_pipeline.db.models import Job
from media_pipeline.platform.run_progress import Change, RunProgress
from media_pipeline.settings import Settings

POLL_SECONDS = 0.25
END_ID = "end"
_EVENT_ID = re.compile(r"^(\d{1,19})\.(\d{1,6})$")


@dataclass(frozen=True)
class StreamEvent:
    id: str
    event: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Position:
    """Where a client resumes: after event `n` of record `storage_id` (None: from the start)."""

    storage_id: int = -1
    n: int = -1
    ended: bool = False

    def before(self, storage_id: int, n: int) -> bool:
        """Whether the event (storage_id, n) was already sent."""
        return self.ended or (storage_id, n) <= (self.storage_id, self.n)


def parse_position(last_event_id: str | None, *, location: str = "header", field: str = "Last-Event-ID") -> Position:
    if not last_event_id:
        return Position()
    if last_event_id == END_ID:
        return Position(ended=True)
    match = _EVENT_ID.match(last_event_id.strip())
    if match is None:
        raise field_problem(
            field,
            f"must be the id of an event this stream sent (like `1234.0`, or `{END_ID}`), not {last_event_id[:40]!r}; "
            "reconnect without it to start from the beginning",
            location=location,
        )
    return Position(int(match[1]), int(match[2]))


class JobStream:
    """The events of one job for one client, read as the run writes them."""

    def __init__(self, settings: Settings, gateway: DagsterGateway, job_id: str, after: Position) -> None:
        self.settings, self.gateway, self.job_id, self.after = settings, gateway, job_id, after
        self._fold: RunProgress | None = None
        self._last: dict[str, Any] | None = None  # the last progress figures, sent or not

    async def events(self) -> AsyncIterator[StreamEvent]:
        while True:
            batch, end = await run_in_threadpool(self._poll)
            for event in batch:
                yield event
            if end is not None:
                yield end
                return
            await anyio.sleep(POLL_SECONDS)

    def _poll(self) -> tuple[list[StreamEvent], StreamEvent | None]:
        session = db.session_factory(self.settings.database_url)()
        try:
            job = session.get(Job, self.job_id)
            if job is None:  # deleted while followed
                return [], StreamEvent(END_ID, "end", {"id": self.job_id, "status": "failed", "error": "job deleted"})
            try:
                events, finished = self._read(session, job)
            except GatewayError:
                return [], None  # Dagster is away for a moment: keep the client, try again
            try:
                return events, self._end(session, job) if finished else None
            except GatewayError:
                return events, None
        finally:
            session.close()

    def _read(self, session: Any, job: Job) -> tuple[list[StreamEvent], bool]:
        """The events of the records written since the last poll, and whether the job is over."""
        run_id = job.run_id
        if run_id is None:
            if job.status in runs.TERMINAL:
                return [], True
            # Not launched yet, or a crash between submitting and recording: the run's tag finds
            # it (reading writes nothing; the job tracker records the id).
            found = self.gateway.find_run(job.id)
            if found is None:
                return [], False
            run_id = found.run_id
        run = self.gateway.run_status(run_id)
        if run is None:
            return [], True
        if self._fold is None:
            self._fold = RunProgress(job_progress.weights_for(run.job_name, job.kind))
        events: list[StreamEvent] = []
        try:
            for storage_id, changes in job_progress.advance(self.gateway, run_id, self._fold):
                events += self._events_of(storage_id, changes)
        except GatewayError:
            return events, False
        # The run record decides, as for GET: Dagster writes a run's last record before it
        # marks the run finished. It was read before the records, so they include that last one.
        return events, runs.job_status(run.status) in runs.TERMINAL

    def _events_of(self, storage_id: int, changes: list[Change]) -> list[StreamEvent]:
        assert self._fold is not None
        out: list[tuple[str, dict[str, Any]]] = []
        for kind, value in changes:
            # Through the job's own schemas, so an item or a log line reads exactly as in the job.
            if kind == "item":
                out.append((kind, JobItem.model_validate(value.as_dict()).model_dump(mode="json")))
            elif kind == "log":
                out.append((kind, JobLog.model_validate(value.as_dict()).model_dump(mode="json")))
        figures = self._figures()
        if figures != self._last:
            self._last = figures
            out.append(("progress", figures))
        return [
            StreamEvent(f"{storage_id}.{n}", kind, data)
            for n, (kind, data) in enumerate(out)
            if not self.after.before(storage_id, n)
        ]

    def _figures(self) -> dict[str, Any]:
        assert self._fold is not None
        status = self._fold.run_status
        progress = self._fold.progress(status)
        return {
            "status": runs.job_status(status) if status is not None else "queued",
            "progress": progress,
            "percent": job_progress.percent(progress),
            "stage": self._fold.stage(status),
        }

    def _end(self, session: Any, job: Job) -> StreamEvent:
        return StreamEvent(END_ID, "end", job_view(session, self.gateway, job).model_dump(mode="json"))
