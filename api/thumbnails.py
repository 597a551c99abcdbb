"""Launching thumbnail renders for a whole cut or one shot."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import Response
from sqlalchemy.orm import Session

from api.dagster_gateway import DagsterGateway, GatewayError
from api.job_service import add_job, commit_new, job_view, launch, replay, request_hash, unavailable
from api.problems import field_problem
from api.schemas import Job, ThumbnailRequest
from media_pipeline.db.models import CutVersion, Shot
from media_pipeline.db.models import Job as JobRow
from media_pipeline.editorial.thumbnails import FrameChoiceError, frame_offset


def start_thumbnails(
    session: Session,
    gateway: DagsterGateway,
    response: Response,
    cut: CutVersion,
    shot: Shot | None,
    body: ThumbnailRequest,
    idempotency_key: str | None,
) -> Job:
    if shot is not None and isinstance(body.frame, int):
        # For a whole cut an offset past some shots' ends renders a slate on those; for the one
        # shot asked about it is simply a wrong request.
        try:
            frame_offset(body.frame, shot.source_duration)
        except FrameChoiceError as exc:
            raise field_problem("frame", str(exc)) from exc
    kind = "shot_thumbnail" if shot is not None else "thumbnails"
    config: dict[str, Any] = {
        "frame": str(body.frame),
        "width": body.width,
        "force": body.force,
        "shot_ids": [shot.id] if shot is not None else [],
    }
    digest = request_hash(
        {"route": kind, "cut_id": cut.id, "shot_id": shot.id if shot else None, "body": body.model_dump()}
    )
    earlier = replay(session, idempotency_key, digest)
    if earlier is None:
        job = add_job(
            session,
            kind,
            params=config,
            cut_id=cut.id,
            shot_id=shot.id if shot is not None else None,
            idempotency_key=idempotency_key,
            digest=digest,
        )
        earlier = commit_new(session, idempotency_key, digest)
    if earlier is not None:
        response.headers["Idempotent-Replayed"] = "true"
        response.headers["Location"] = f"/v1/jobs/{earlier.id}"
        return job_view(session, gateway, earlier)
    try:
        launch(session, gateway, job, cut.partition_key, {"ops": {"shot_thumbnails": {"config": config}}})
    except GatewayError as exc:
        session.rollback()
        session.execute(sa.delete(JobRow).where(JobRow.id == job.id))
        session.commit()
        raise unavailable(exc) from exc
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return job_view(session, gateway, job)
