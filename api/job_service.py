"""Creating jobs (idempotently), launching their runs, and reading their state back.

A job is our row in mp_jobs; its run is Dagster's. The row records what was asked and which
run does it; the status is derived from the run on every read and cached in the row once it
is final, so finished jobs can be listed without asking Dagster.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from fastapi import Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api import callbacks, job_progress, runs
from api.dagster_gateway import JOB_ID_TAG, DagsterGateway, GatewayError, RunInfo
from api.problems import ApiProblem
from api.schemas import Job as JobOut
from api.schemas import JobKind, JobOutput, JobSummary
from api.urls import artifact_url
from media_pipeline.db.models import CutVersion, Job, Render, RenderStatus

logger = logging.getLogger("api.jobs")

# Which Dagster job carries out each kind of job.
DAGSTER_JOB: dict[str, str] = {
    "ingest_cut": "ingest_cut",
    "thumbnails": "render_thumbnails",
    # Only the thumbnail: an interactive refresh does not wait for the contact sheet.
    "shot_thumbnail": "render_shot_thumbnail",
    "final_video": "render_final_video",
}
KIND_TAG = "media_pipeline/kind"


def as_utc(value: dt.datetime | None) -> dt.datetime:
    # SQLite hands back naive datetimes; everything is written in UTC.
    if value is None:
        return dt.datetime.now(dt.UTC)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


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
    params: dict[str, Any],
    cut_id: int | None,
    shot_id: int | None = None,
    idempotency_key: str | None,
    digest: str,
    callback_url: str | None = None,
) -> Job:
    job = Job(
        id=str(uuid.uuid4()),
        kind=kind,
        status="queued",
        cut_version_id=cut_id,
        shot_id=shot_id,
        params=params,
        idempotency_key=idempotency_key,
        request_hash=digest,
        outputs=[],
        callback_url=callback_url,
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


def launch(
    session: Session, gateway: DagsterGateway, job: Job, partition_key: str, run_config: Mapping[str, Any]
) -> None:
    """Add the partition and submit the job's run; record the run id.

    Raises GatewayError with nothing recorded; the caller undoes what the request created.
    """
    session.refresh(job)
    if job.status == "cancelled":
        return  # cancelled in the moment between creating the job and launching it
    gateway.add_partition(partition_key)
    run_id = gateway.submit(DAGSTER_JOB[job.kind], partition_key, run_config, {JOB_ID_TAG: job.id, KIND_TAG: job.kind})
    job.run_id = run_id
    session.commit()


def start_job(
    session: Session,
    gateway: DagsterGateway,
    response: Response,
    *,
    kind: JobKind,
    cut: CutVersion,
    shot_id: int | None = None,
    params: dict[str, Any],
    run_config: Mapping[str, Any],
    request: Mapping[str, Any],
    idempotency_key: str | None,
    callback_url: str | None = None,
) -> JobOut:
    """Create a job for a render of an existing cut and launch its run; the job to answer with.

    `request` is what identifies the request for idempotency (route and body): the same key
    with the same request replays the earlier job, with another request it is a 409. A launch
    that fails leaves nothing behind, so the client's retry starts clean.
    """
    digest = request_hash(request)
    earlier = replay(session, idempotency_key, digest)
    if earlier is None:
        job = add_job(
            session, kind, params=params, cut_id=cut.id, shot_id=shot_id, idempotency_key=idempotency_key,
            digest=digest, callback_url=callback_url,
        )  # fmt: skip
        earlier = commit_new(session, idempotency_key, digest)
    if earlier is not None:
        response.headers["Idempotent-Replayed"] = "true"
        response.headers["Location"] = f"/v1/jobs/{earlier.id}"
        return job_view(session, gateway, earlier)
    try:
        launch(session, gateway, job, cut.partition_key, run_config)
    except GatewayError as exc:
        session.rollback()
        session.execute(sa.delete(Job).where(Job.id == job.id))
        session.commit()
        raise unavailable(exc) from exc
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


# -- reading ----------------------------------------------------------------------------------


def outputs_for(session: Session, run_id: str | None) -> list[dict[str, Any]]:
    if run_id is None:
        return []
    renders = session.scalars(
        sa.select(Render)
        .where(Render.run_id == run_id, Render.status == RenderStatus.SUCCEEDED, Render.output_path.is_not(None))
        .order_by(Render.id)
    )
    return [
        {"kind": render.kind, "url": artifact_url(render.output_path or ""), "shot_id": render.shot_id}
        for render in renders
    ]


def _view(
    session: Session,
    gateway: DagsterGateway,
    job: Job,
    run: RunInfo | None,
    *,
    with_logs: bool,
) -> JobOut:
    logs: list[Any] = []
    items: list[Any] = []
    updated_at = as_utc(job.updated_at)
    if job.run_id is None and job.status in runs.TERMINAL:
        # Cancelled before it was launched.
        status, progress, stage, error = job.status, 0.0, job.status, job.error
    elif job.run_id is None:
        status, progress, stage, error = "queued", 0.0, "queued", None
    elif run is None:
        status = job.status if job.status in runs.TERMINAL else "failed"
        stage = status
        progress = 1.0 if status == "succeeded" else 0.0
        error = job.error or (
            f"Dagster has no run {job.run_id} any more (it was deleted); submit the request again"
            if status == "failed"
            else None
        )
    else:
        status = runs.job_status(run.status)
        read = job_progress.READER.read(gateway, job.run_id, run.job_name, run.status)
        progress, stage, error = read.progress, read.stage, read.error
        if with_logs:
            logs, items = read.logs, read.items
        if run.updated_at is not None:
            updated_at = max(updated_at, run.updated_at)
    outputs = outputs_for(session, job.run_id)
    if status in runs.TERMINAL and (job.status != status or job.outputs != outputs or job.error != error):
        job.status, job.error, job.outputs = status, error, outputs
        session.commit()
    elif job.status != status:
        # Not final yet, but recorded so that listing by status finds the job.
        job.status = status
        session.commit()
    summary = JobSummary(
        id=job.id,
        kind=job.kind,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        progress=progress,
        percent=job_progress.percent(progress),
        stage=stage,
        error=error,
        run_id=job.run_id,
        cut_id=job.cut_version_id,
        shot_id=job.shot_id,
        params=job.params or {},
        outputs=[JobOutput(**output) for output in outputs],
        created_at=as_utc(job.created_at),
        updated_at=updated_at,
    )
    return JobOut(
        **summary.model_dump(), logs=logs, items=items, callback_url=job.callback_url,
        deliveries=callbacks.deliveries(session, job) if with_logs else [],
    )  # fmt: skip


def _recover_run_id(session: Session, gateway: DagsterGateway, job: Job) -> RunInfo | None:
    # A crash between submitting and recording leaves a run with our tag and a row without
    # its id; the tag finds it.
    run = gateway.find_run(job.id)
    if run is not None:
        job.run_id = run.run_id
        session.commit()
    return run


def job_view(session: Session, gateway: DagsterGateway, job: Job, *, with_logs: bool = True) -> JobOut:
    try:
        if job.run_id is None and job.status not in runs.TERMINAL:
            run = _recover_run_id(session, gateway, job)
        else:
            run = gateway.run_status(job.run_id) if job.run_id else None
        return _view(session, gateway, job, run, with_logs=with_logs)
    except GatewayError as exc:
        return _cached_view(session, job, exc)


def _cached_view(session: Session, job: Job, exc: GatewayError) -> JobOut:
    # A finished job does not need Dagster to be described; an unfinished one does.
    if job.status not in runs.TERMINAL:
        raise unavailable_for_read(exc) from exc
    return JobOut(
        id=job.id,
        kind=job.kind,  # type: ignore[arg-type]
        status=job.status,  # type: ignore[arg-type]
        progress=1.0 if job.status == "succeeded" else 0.0,
        percent=100 if job.status == "succeeded" else 0,
        stage="done" if job.status == "succeeded" else job.status,
        error=job.error,
        run_id=job.run_id,
        cut_id=job.cut_version_id,
        shot_id=job.shot_id,
        params=job.params or {},
        outputs=[JobOutput(**output) for output in (job.outputs or [])],
        created_at=as_utc(job.created_at),
        updated_at=as_utc(job.updated_at),
        logs=[],
        callback_url=job.callback_url,
        deliveries=callbacks.deliveries(session, job),
    )


def unavailable_for_read(exc: GatewayError) -> ApiProblem:
    return ApiProblem(503, "dagster_unavailable", f"the job's state cannot be read right now: {exc}")


def job_views(session: Session, gateway: DagsterGateway, jobs: Sequence[Job]) -> list[JobSummary]:
    """Summaries (no logs) of many jobs, with one batched run query."""
    try:
        statuses = gateway.run_statuses([job.run_id for job in jobs if job.run_id])
    except GatewayError as exc:
        statuses, unreachable = {}, exc
    else:
        unreachable = None
    views: list[JobSummary] = []
    for job in jobs:
        if unreachable is not None:
            view = _cached_view(session, job, unreachable)
        elif job.run_id is None:
            view = job_view(session, gateway, job, with_logs=False)
        else:
            try:
                view = _view(session, gateway, job, statuses.get(job.run_id), with_logs=False)
            except GatewayError as exc:
                view = _cached_view(session, job, exc)
        views.append(JobSummary(**view.model_dump(exclude={"logs"})))
    return views


def refresh_active(session: Session, gateway: DagsterGateway, query: sa.Select[tuple[Job]]) -> None:
    """Bring the stored status of unfinished jobs up to date, so filtering by status is right."""
    active = list(session.scalars(query.where(Job.status.not_in(runs.TERMINAL), Job.run_id.is_not(None))))
    if not active:
        return
    try:
        statuses = gateway.run_statuses([job.run_id for job in active if job.run_id])
    except GatewayError as exc:
        raise unavailable_for_read(exc) from exc
    for job in active:
        run = statuses.get(job.run_id or "")
        status = runs.job_status(run.status) if run is not None else "failed"
        if status in runs.TERMINAL:
            _view(session, gateway, job, run, with_logs=False)  # caches error and outputs too
        elif status != job.status:
            job.status = status
    session.commit()
