"""Jobs of every registered kind: start one, list, follow and cancel them.

Whoever started a run of a registered job (the API, a sensor, the Dagster UI, a retry), it is
listed here; see `media_pipeline/platform/job_tracker.py`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from api import callbacks, runs
from api.dagster_gateway import GatewayError
from api.deps import GatewayDep, SessionDep, SettingsDep
from api.job_service import as_utc, job_view, job_views, kind_named, start_job, with_status
from api.pagination import CursorQuery, LimitQuery, decode_cursor, encode_cursor
from api.params import IdempotencyKey, TextQuery
from api.problems import ApiProblem, field_problem, not_found, problem_responses, reject_problems
from api.schemas import CALLBACK_DESCRIPTION, MAX_ID, Job, JobStatus, JobSummary, Page
from media_pipeline.db.models import Job as JobRow
from media_pipeline.db.models import Shot as ShotRow
from media_pipeline.platform import job_kinds

router = APIRouter(prefix="/jobs", tags=["jobs"])

JobId = Annotated[uuid.UUID, Path(description="A job's id (a UUID)")]
# Documented as an enum of the kinds registered when the app starts; checked against the registry
# on each request, so a kind registered later is found too.
KindQuery = Annotated[
    str | None,
    Query(description="Only jobs of this kind", json_schema_extra={"enum": sorted(job_kinds.load())}),
]
Source = Literal["api", "sensor", "ui", "retry"]


class JobRequest(BaseModel):
    """Start a job of any registered kind. The cut and shot routes are shorthands for these."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=40, description="A registered job kind, e.g. `thumbnails`")
    subject_id: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$", description="What the job is about (a cut id, ...)"
    )
    params: dict[str, Any] = Field(default={}, description="The kind's options, as its request model documents them")
    callback_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://[^\s]+$",
        description=CALLBACK_DESCRIPTION,
    )


def get_job(session: Session, job_id: uuid.UUID) -> JobRow:
    job = session.get(JobRow, str(job_id))
    if job is None:
        raise not_found("job", job_id)
    return job


@router.post(
    "",
    status_code=202,
    response_model=Job,
    summary="Start a job of any registered kind",
    description="Validates `params` with the kind's request model (the same model that validates the run's "
    "config), checks the subject exists and can be worked on, and launches the run. Answers 202 with the job.",
    responses=problem_responses(400, 404, 409, 502, 503),
)
def create_job(
    body: JobRequest,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    gateway: GatewayDep,
    idempotency_key: IdempotencyKey = None,
) -> Job:
    callback_url = callbacks.accepted(settings, body.callback_url)
    kind = kind_named(body.kind)
    try:
        request = kind.request_model.model_validate(body.params)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", "params", *error["loc"])} for error in exc.errors(include_url=False)]
        ) from None
    reject_problems(request, location=("body", "params"))
    return start_job(
        session,
        gateway,
        response,
        kind=kind.name,
        subject_id=body.subject_id,
        request=request,
        idempotency_key=idempotency_key,
        callback_url=callback_url,
    )


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
    kind: KindQuery = None,
    source: Annotated[Source | None, Query(description="Only jobs started this way")] = None,
    subject_type: Annotated[TextQuery | None, Query(description="Only jobs about this type of subject")] = None,
    subject_id: Annotated[TextQuery | None, Query(description="Only jobs about this subject")] = None,
    cut_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only jobs about this cut or one of its shots")
    ] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[JobSummary]:
    position = decode_cursor(cursor, created_at=str, id=str)
    query = sa.select(JobRow)
    if kind is not None and kind not in job_kinds.load():
        known = ", ".join(sorted(job_kinds.load()))
        raise field_problem("kind", f"there is no job kind {kind!r}; the kinds are: {known}", location="query")
    if kind is not None:
        query = query.where(JobRow.kind == kind)
    if source is not None:
        query = query.where(JobRow.source == source)
    if subject_type is not None:
        query = query.where(JobRow.subject_type == subject_type)
    if subject_id is not None:
        query = query.where(JobRow.subject_id == subject_id)
    if cut_id is not None:
        shots = sa.select(sa.cast(ShotRow.id, sa.String)).where(ShotRow.cut_version_id == cut_id)
        query = query.where(
            sa.or_(
                sa.and_(JobRow.subject_type == "cut", JobRow.subject_id == str(cut_id)),
                sa.and_(JobRow.subject_type == "shot", JobRow.subject_id.in_(shots)),
            )
        )
    if position is not None:
        after = _cursor_time(position["created_at"])
        query = query.where(
            sa.or_(
                JobRow.created_at < after,
                sa.and_(JobRow.created_at == after, JobRow.id < position["id"]),
            )
        )
    query = query.order_by(JobRow.created_at.desc(), JobRow.id.desc())
    if status is None:
        rows = list(session.scalars(query.limit(limit + 1)))
    else:
        # Unfinished jobs' stored statuses may be behind their runs: asked of Dagster, never written.
        rows = []
        for job in with_status(session, gateway, query, status, chunk=limit + 1):
            rows.append(job)
            if len(rows) > limit:
                break
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor({"created_at": as_utc(last.created_at).isoformat(), "id": last.id})
    return Page[JobSummary](items=job_views(session, gateway, rows[:limit]), next_cursor=next_cursor)


def _cursor_time(text: str) -> dt.datetime:
    try:
        return as_utc(dt.datetime.fromisoformat(text))
    except ValueError:
        raise field_problem(
            "cursor", "not a cursor this list handed out; start again without one", location="query"
        ) from None


@router.get(
    "/{job_id}",
    response_model=Job,
    summary="A job's state, progress, error, logs and outputs",
    responses=problem_responses(404, 503),
)
def read_job(job_id: JobId, session: SessionDep, gateway: GatewayDep) -> Job:
    return job_view(session, gateway, get_job(session, job_id))


@router.post(
    "/{job_id}/cancel",
    status_code=202,
    response_model=Job,
    summary="Cancel a queued or running job",
    description="Asks Dagster to terminate the run. The job reports stage `cancelling` (status `running`, or "
    "`queued` for a run still starting) until the run has stopped, then `cancelled`. A run still starting (which "
    "Dagster cannot terminate yet) is terminated as soon as it has started. Cancelling a cancelled job is a no-op; "
    "a finished one is a 409.",
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
