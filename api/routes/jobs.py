"""Jobs: follow and cancel the Dagster runs the API launched."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query
from sqlalchemy.orm import Session

from api import runs
from api.dagster_gateway import GatewayError
from api.deps import GatewayDep, SessionDep
from api.job_service import as_utc, job_view, job_views, refresh_active
from api.pagination import CursorQuery, LimitQuery, decode_cursor, encode_cursor
from api.problems import ApiProblem, field_problem, not_found, problem_responses
from api.schemas import MAX_ID, Job, JobKind, JobStatus, JobSummary, Page
from media_pipeline.db.models import Job as JobRow

router = APIRouter(prefix="/jobs", tags=["jobs"])

JobId = Annotated[uuid.UUID, Path(description="A job's id (a UUID)")]


def get_job(session: Session, job_id: uuid.UUID) -> JobRow:
    job = session.get(JobRow, str(job_id))
    if job is None:
        raise not_found("job", job_id)
    return job


@router.get(
    "",
    response_model=Page[JobSummary],
    summary="List jobs, newest first (without logs)",
    responses=problem_responses(503),
)
def list_jobs(
    session: SessionDep,
    gateway: GatewayDep,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this state")] = None,
    kind: Annotated[JobKind | None, Query(description="Only jobs of this kind")] = None,
    cut_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only jobs for this cut")] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[JobSummary]:
    position = decode_cursor(cursor, created_at=str, id=str)
    query = sa.select(JobRow)
    if kind is not None:
        query = query.where(JobRow.kind == kind)
    if cut_id is not None:
        query = query.where(JobRow.cut_version_id == cut_id)
    if status is not None:
        # Stored statuses of unfinished jobs may be stale; bring them up to date first.
        refresh_active(session, gateway, query)
        query = query.where(JobRow.status == status)
    if position is not None:
        after = _cursor_time(position["created_at"])
        query = query.where(
            sa.or_(
                JobRow.created_at < after,
                sa.and_(JobRow.created_at == after, JobRow.id < position["id"]),
            )
        )
    rows = list(session.scalars(query.order_by(JobRow.created_at.desc(), JobRow.id.desc()).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor({"created_at": as_utc(last.created_at).isoformat(), "id": last.id})
    return Page[JobSummary](items=job_views(session, gateway, rows[:limit]), next_cursor=next_cursor)


def _cursor_time(text: str) -> dt.datetime:
    try:
        return as_utc(dt.datetime.fromisoformat(text))
    except ValueError:
        raise field_problem("cursor", "not a cursor this list handed out; start again without one",
                            location="query") from None


@router.get("/{job_id}", response_model=Job, summary="A job's state, progress, error, logs and outputs",
            responses=problem_responses(404, 503))
def read_job(job_id: JobId, session: SessionDep, gateway: GatewayDep) -> Job:
    return job_view(session, gateway, get_job(session, job_id))


@router.post(
    "/{job_id}/cancel",
    status_code=202,
    response_model=Job,
    summary="Cancel a queued or running job",
    description="Asks Dagster to terminate the run. The job reports `running` (stage `cancelling`) until the run "
    "has stopped, then `cancelled`. Cancelling a cancelled job is a no-op; a finished one is a 409.",
    responses=problem_responses(400, 404, 409, 502, 503),
)
def cancel_job(job_id: JobId, session: SessionDep, gateway: GatewayDep) -> Job:
    job = get_job(session, job_id)
    current = job_view(session, gateway, job, with_logs=False)
    if current.status == "cancelled":
        return job_view(session, gateway, job)
    if current.status in runs.TERMINAL:
        raise ApiProblem(409, "job_finished", f"job {job.id} has already {current.status}; there is nothing to cancel")
    if job.run_id is None:
        job.status = "cancelled"
        session.commit()
        return job_view(session, gateway, job)
    try:
        gateway.cancel(job.run_id)
    except GatewayError as exc:
        status, code = (503, "dagster_unavailable") if exc.unreachable else (502, "dagster_rejected")
        raise ApiProblem(status, code, f"{exc}; the job was not cancelled, try again") from exc
    return job_view(session, gateway, job)
