"""Starting jobs of any registered kind (idempotently) and reading their state back.

A job is our row in mp_jobs; its run is Dagster's. The row records what was asked, about which
subject, who asked, and which run does it. While the run is unfinished its state is read from
Dagster on every read, never written back: the job tracker sensor
(`media_pipeline/platform/job_tracker.py`) writes the final state once the run has ended, so
finished jobs are listed without asking Dagster.

Nothing here knows an area: kinds, their Dagster jobs, partitions and subjects come from the
registry (`media_pipeline/platform/job_kinds.py`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from fastapi import Response
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api import callbacks, job_progress, requester, runs
from api.dagster_gateway import DagsterGateway, GatewayError, RunInfo
from api.problems import ApiProblem
from api.schemas import Job as JobOut
from api.schemas import JobItem, JobLog, JobOutput, JobSummary, WebhookDelivery
from media_pipeline.db.models import Job, JobSource
from media_pipeline.platform import job_kinds
from media_pipeline.platform.job_kinds import JOB_ID_TAG, KIND_TAG, JobKind, SubjectError
from media_pipeline.platform.job_state import deleted_run_sentence, outputs_for

logger = logging.getLogger("api.jobs")


def as_utc(value: dt.datetime | None) -> dt.datetime:
    # SQLite hands back naive datetimes; everything is written in UTC.
    if value is None:
        return dt.datetime.now(dt.UTC)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def kind_named(name: str) -> JobKind:
    try:
        return job_kinds.get(name)
    except job_kinds.UnknownJobKind:
        known = ", ".join(sorted(job_kinds.load()))
        raise ApiProblem(422, "unknown_job_kind", f"there is no job kind {name!r}; the kinds are: {known}") from None


def subject_problem(exc: SubjectError) -> ApiProblem:
    return ApiProblem(404 if exc.missing else 409, exc.code, str(exc))


# -- idempotency ------------------------------------------------------------------------------


def request_hash(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def replay(session: Session, key: str | None, digest: str) -> Job | None:
    """The job an earlier request with this Idempotency-Key created, if its body was the same."""
    if key is None:
        return None
    job = session.scalar(sa.select(Job).where(Job.idempotency_key == key))
    if job is None:
        return None
    if job.request_hash != digest:
        raise ApiProblem(
            409,
            "idempotency_conflict",
            "this Idempotency-Key was already used for a different request; "
            "send a new key for a new request, or repeat the original request exactly",
        )
    return job


def add_job(
    session: Session,
    kind: JobKind,
    *,
    subject_id: str | None,
    params: dict[str, Any],
    idempotency_key: str | None,
    digest: str,
    callback_url: str | None = None,
) -> Job:
    job = Job(
        id=str(uuid.uuid4()),
        kind=kind.name,
        status="queued",
        subject_type=kind.subject_type if subject_id is not None else None,
        subject_id=subject_id,
        source=JobSource.API,
        callback_url=callback_url,
        params=params,
        idempotency_key=idempotency_key,
        request_hash=digest,
        outputs=[],
    )
    session.add(job)
    return job


def commit_new(session: Session, key: str | None, digest: str) -> Job | None:
    """Commit a new job; if a concurrent request with the same key won, roll back and return its job."""
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        earlier = replay(session, key, digest)
        if earlier is None:
            raise
        return earlier
    return None


# -- launching --------------------------------------------------------------------------------


def run_tags(job: Job, kind: str) -> dict[str, str]:
    """The tags of a job's run: its job and kind, and who and what asked for it."""
    return {**requester.run_tags(), JOB_ID_TAG: job.id, KIND_TAG: kind}


def launch(
    session: Session,
    gateway: DagsterGateway,
    job: Job,
    partition_key: str | None,
    run_config: Mapping[str, Any],
) -> None:
    """Add the partition and submit the job's run; record the run id.

    Raises GatewayError with nothing recorded; the caller undoes what the request created.
    """
    session.refresh(job)
    if job.status == "cancelled":
        return  # cancelled in the moment between creating the job and launching it
    kind = job_kinds.get(job.kind)
    if kind.partitions is not None and partition_key is not None:
        gateway.add_partition(kind.partitions.name, partition_key)
    job.run_id = gateway.submit(kind.dagster_job, partition_key, run_config, run_tags(job, kind.name))
    session.commit()


def launch_or_undo(
    session: Session,
    gateway: DagsterGateway,
    job: Job,
    partition_key: str | None,
    run_config: Mapping[str, Any],
    undo: Callable[[], None] | None = None,
) -> None:
    """`launch`; if Dagster cannot take the run, remove the job (and whatever `undo` removes:
    what the request created besides it) and raise the 503 or 502 saying so, so that the client's
    retry starts from a clean slate."""
    try:
        launch(session, gateway, job, partition_key, run_config)
    except GatewayError as exc:
        session.rollback()
        session.execute(sa.delete(Job).where(Job.id == job.id))
        session.commit()
        if undo is not None:
            undo()
        raise unavailable(exc) from exc


def start_job(
    session: Session,
    gateway: DagsterGateway,
    response: Response,
    *,
    kind: str,
    subject_id: str | int,
    request: BaseModel,
    idempotency_key: str | None,
    callback_url: str | None = None,
) -> JobOut:
    """Create a job of a registered kind about a subject and launch its run; the job to answer with.

    The kind's `prepare` checks the subject (404, 409) and picks the partition. The same
    Idempotency-Key with the same kind, subject and request replays the earlier job, with another
    request it is a 409. A launch that fails leaves nothing behind, so the client's retry starts clean.
    """
    job_kind = kind_named(kind)
    try:
        prepared = job_kind.prepared(session, str(subject_id), request)
    except SubjectError as exc:
        raise subject_problem(exc) from exc
    # What the client asked, not the prepared request: that may hold what is new each time
    # (a new render partition's key), and a replay must match its first request.
    digest = request_hash(
        {
            "kind": job_kind.name,
            "subject": [job_kind.subject_type, str(subject_id)],
            "body": request.model_dump(mode="json"),
            "callback_url": callback_url,
        }
    )
    earlier = replay(session, idempotency_key, digest)
    if earlier is None:
        job = add_job(
            session,
            job_kind,
            subject_id=str(subject_id),
            params=job_kind.params_for(prepared.request),
            idempotency_key=idempotency_key,
            digest=digest,
            callback_url=callback_url,
        )
        earlier = commit_new(session, idempotency_key, digest)
    if earlier is not None:
        response.headers["Idempotent-Replayed"] = "true"
        response.headers["Location"] = f"/v1/jobs/{earlier.id}"
        return job_view(session, gateway, earlier)
    launch_or_undo(session, gateway, job, prepared.partition_key, job_kind.config_for(prepared.request))
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return job_view(session, gateway, job)


def unavailable(exc: GatewayError) -> ApiProblem:
    """The problem for a launch that failed; nothing the request created was kept."""
    if exc.unreachable:
        return ApiProblem(
            503,
            "dagster_unavailable",
            f"{exc}. Nothing was created; retry once Dagster is up (the same Idempotency-Key is safe to reuse)",
        )
    return ApiProblem(
        502,
        "dagster_rejected",
        f"{exc}. Nothing was created; this is a deployment problem (the server log has the details)",
    )


# -- reading (never writes) -------------------------------------------------------------------


@dataclass
class LiveState:
    """What a job reports right now; from the row once final, else from its run."""

    status: str
    progress: float
    stage: str | None
    error: str | None
    outputs: list[dict[str, Any]]
    logs: list[JobLog]
    updated_at: dt.datetime
    items: list[JobItem] = field(default_factory=list)


def _live_state(
    session: Session, gateway: DagsterGateway, job: Job, run: RunInfo | None, *, with_logs: bool
) -> LiveState:
    updated_at = as_utc(job.updated_at)
    if job.run_id is None and run is None:
        if job.status in runs.TERMINAL:  # cancelled before it was launched
            return LiveState(job.status, 0.0, job.status, job.error, [], [], updated_at)
        return LiveState("queued", 0.0, "queued", None, [], [], updated_at)
    if run is None:
        status = job.status if job.status in runs.TERMINAL else "failed"
        error = job.error or (deleted_run_sentence(job.run_id or "") if status == "failed" else None)
        progress = 1.0 if status == "succeeded" else 0.0
        return LiveState(status, progress, status, error, job.outputs or [], [], updated_at)
    # Only the records written since this process last read the run (job_progress keeps the fold).
    read = job_progress.READER.read(gateway, run.run_id, run.job_name, run.status, job.kind)
    status = runs.job_status(run.status)
    if job.status in runs.TERMINAL:
        # Written by the job tracker from this same run when it ended.
        error, outputs = job.error, job.outputs or []
    else:
        error = read.error
        try:
            kind: JobKind | None = job_kinds.get(job.kind)
        except job_kinds.UnknownJobKind:
            kind = None
        outputs = outputs_for(session, run.run_id, kind)
    if run.updated_at is not None:
        updated_at = max(updated_at, run.updated_at)
    logs = [JobLog(**line) for line in read.logs] if with_logs else []
    items = [JobItem(**item) for item in read.items] if with_logs else []
    return LiveState(status, read.progress, read.stage, error, outputs, logs, updated_at, items)


def job_body(job: Job, state: LiveState, deliveries: list[WebhookDelivery] | None = None) -> JobOut:
    """The one place a job's body is put together (GETs, lists, POSTs, webhooks)."""
    return JobOut(
        id=job.id,
        kind=job.kind,
        status=state.status,  # type: ignore[arg-type]
        progress=state.progress,
        percent=job_progress.percent(state.progress),
        stage=state.stage,
        error=state.error,
        run_id=job.run_id,
        subject_type=job.subject_type,
        subject_id=job.subject_id,
        source=job.source,  # type: ignore[arg-type]
        callback_url=job.callback_url,
        params=job.params or {},
        outputs=[JobOutput(**output) for output in state.outputs],
        created_at=as_utc(job.created_at),
        updated_at=state.updated_at,
        logs=state.logs,
        items=state.items,
        deliveries=deliveries or [],
    )


def _stored_state(job: Job) -> LiveState:
    return LiveState(
        job.status,
        1.0 if job.status == "succeeded" else 0.0,
        "done" if job.status == "succeeded" else job.status,
        job.error,
        job.outputs or [],
        [],
        as_utc(job.updated_at),
    )


def _run_of(gateway: DagsterGateway, job: Job) -> RunInfo | None:
    if job.run_id is not None:
        return gateway.run_status(job.run_id)
    if job.status in runs.TERMINAL:
        return None
    # A crash between submitting and recording leaves a run with our tag and a row without its
    # id: the tag finds it (the job tracker records the id).
    return gateway.find_run(job.id)


def job_view(session: Session, gateway: DagsterGateway, job: Job, *, with_logs: bool = True) -> JobOut:
    try:
        state = _live_state(session, gateway, job, _run_of(gateway, job), with_logs=with_logs)
    except GatewayError as exc:
        return _cached_view(job, exc, session if with_logs else None)
    return job_body(job, state, callbacks.deliveries(session, job) if with_logs else None)


def _cached_view(job: Job, exc: GatewayError, session: Session | None = None) -> JobOut:
    # A finished job does not need Dagster to be described; an unfinished one does.
    if job.status not in runs.TERMINAL:
        raise unavailable_for_read(exc) from exc
    return job_body(job, _stored_state(job), callbacks.deliveries(session, job) if session is not None else None)


def unavailable_for_read(exc: GatewayError) -> ApiProblem:
    return ApiProblem(503, "dagster_unavailable", f"the job's state cannot be read right now: {exc}")


def _summary(view: JobOut) -> JobSummary:
    return JobSummary(**view.model_dump(exclude={"logs", "items", "deliveries"}))


def job_views(session: Session, gateway: DagsterGateway, jobs: Sequence[Job]) -> list[JobSummary]:
    """Summaries (no logs) of many jobs, with one batched run query."""
    try:
        statuses = gateway.run_statuses([job.run_id for job in jobs if job.run_id])
    except GatewayError as exc:
        return [_summary(_cached_view(job, exc)) for job in jobs]
    views: list[JobSummary] = []
    for job in jobs:
        if job.run_id is None:
            views.append(_summary(job_view(session, gateway, job, with_logs=False)))
            continue
        try:
            state = _live_state(session, gateway, job, statuses.get(job.run_id), with_logs=False)
        except GatewayError as exc:
            views.append(_summary(_cached_view(job, exc)))
        else:
            views.append(_summary(job_body(job, state)))
    return views


def live_statuses(gateway: DagsterGateway, jobs: Sequence[Job]) -> dict[str, str]:
    """The current status of each unfinished job, from its run (for filtering by status)."""
    active = [job for job in jobs if job.status not in runs.TERMINAL and job.run_id]
    try:
        found = gateway.run_statuses([job.run_id for job in active if job.run_id])
    except GatewayError as exc:
        raise unavailable_for_read(exc) from exc
    result = {}
    for job in active:
        run = found.get(job.run_id or "")
        result[job.id] = runs.job_status(run.status) if run is not None else "failed"
    return result


def with_status(
    session: Session, gateway: DagsterGateway, query: sa.Select[tuple[Job]], status: str, chunk: int
) -> Iterator[Job]:
    """The jobs of `query` (ordered) whose status is `status` now, without writing any.

    A finished job's stored status is its final one; an unfinished job's stored status may be
    behind its run, so those are asked of Dagster, a chunk at a time.
    """
    candidates = query.where(sa.or_(Job.status == status, Job.status.not_in(runs.TERMINAL)))
    offset = 0
    while True:
        rows = list(session.scalars(candidates.limit(chunk).offset(offset)))
        if not rows:
            return
        live = live_statuses(gateway, rows)
        for job in rows:
            if live.get(job.id, job.status) == status:
                yield job
        offset += chunk
