"""Launching thumbnail renders for a whole cut or one shot."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from sqlalchemy.orm import Session

from api.dagster_gateway import DagsterGateway
from api.job_service import start_job
from api.problems import field_problem
from api.schemas import Job, JobKind, ThumbnailRequest
from media_pipeline.db.models import CutVersion, Shot
from media_pipeline.editorial.thumbnails import FrameChoiceError, frame_offset


def start_thumbnails(
    session: Session,
    gateway: DagsterGateway,
    response: Response,
    cut: CutVersion,
    shot: Shot | None,
    body: ThumbnailRequest,
    idempotency_key: str | None,
    callback_url: str | None = None,
) -> Job:
    if shot is not None and isinstance(body.frame, int):
        # For a whole cut an offset past some shots' ends renders a slate on those; for the one
        # shot asked about it is simply a wrong request.
        try:
            frame_offset(body.frame, shot.source_duration)
        except FrameChoiceError as exc:
            raise field_problem("frame", str(exc)) from exc
    kind: JobKind = "shot_thumbnail" if shot is not None else "thumbnails"
    config: dict[str, Any] = {
        "frame": str(body.frame),
        "width": body.width,
        "force": body.force,
        "shot_ids": [shot.id] if shot is not None else [],
    }
    return start_job(
        session,
        gateway,
        response,
        kind=kind,
        cut=cut,
        shot_id=shot.id if shot is not None else None,
        params=config,
        run_config={"ops": {"shot_thumbnails": {"config": config}}},
        request={"route": kind, "cut_id": cut.id, "shot_id": shot.id if shot else None, "body": body.model_dump()},
        idempotency_key=idempotency_key,
        callback_url=callback_url,
    )
