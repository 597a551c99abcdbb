"""Launching thumbnail renders for a whole cut or one shot."""

from __future__ import annotations

from fastapi import Response
from sqlalchemy.orm import Session

from api.dagster_gateway import DagsterGateway
from api.job_service import start_job
from api.problems import field_problem
from api.schemas import Job
from media_pipeline.db.models import CutVersion, Shot
from media_pipeline.editorial import job_kinds
from media_pipeline.editorial.requests import ThumbnailConfig, ThumbnailOptions
from media_pipeline.editorial.thumbnails import FrameChoiceError, frame_offset, parse_frame_choice


def start_thumbnails(
    session: Session,
    gateway: DagsterGateway,
    response: Response,
    cut: CutVersion,
    shot: Shot | None,
    body: ThumbnailOptions,
    idempotency_key: str | None,
    callback_url: str | None = None,
) -> Job:
    choice = parse_frame_choice(body.frame)  # checked by the route (reject_problems)
    if shot is not None and isinstance(choice, int):
        # For a whole cut an offset past some shots' ends renders a slate on those; for the one
        # shot asked about it is simply a wrong request.
        try:
            frame_offset(choice, shot.source_duration)
        except FrameChoiceError as exc:
            raise field_problem("frame", str(exc)) from exc
    request = body if isinstance(body, ThumbnailConfig) else ThumbnailConfig(**body.model_dump())
    kind = job_kinds.shot_thumbnail if shot is not None else job_kinds.thumbnails
    return start_job(
        session,
        gateway,
        response,
        kind=kind.name,
        subject_id=shot.id if shot is not None else cut.id,
        request=request,
        idempotency_key=idempotency_key,
        callback_url=callback_url,
    )
