"""Single shots: read one, re-render its thumbnail."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Path, Response
from sqlalchemy.orm import Session, selectinload

from api import callbacks
from api.deps import GatewayDep, SessionDep, SettingsDep
from api.params import IdempotencyKey
from api.problems import not_found, problem_responses, reject_problems
from api.schemas import MAX_ID, Job, Shot, ThumbnailBody, without_callback
from api.thumbnails import start_thumbnails
from api.views import shots_out
from media_pipeline.db.models import CutVersion
from media_pipeline.db.models import Shot as ShotRow
from media_pipeline.editorial.requests import ThumbnailOptions

router = APIRouter(prefix="/shots", tags=["shots"])

ShotId = Annotated[int, Path(ge=1, le=MAX_ID, description="A shot's id")]


def get_shot(session: Session, shot_id: int) -> ShotRow:
    shot = session.scalar(
        sa.select(ShotRow)
        .options(selectinload(ShotRow.cut_version).selectinload(CutVersion.project))
        .where(ShotRow.id == shot_id)
    )
    if shot is None:
        raise not_found("shot", shot_id)
    return shot


@router.get("/{shot_id}", response_model=Shot, summary="One shot", responses=problem_responses(404))
def read_shot(shot_id: ShotId, session: SessionDep, settings: SettingsDep) -> Shot:
    shot = get_shot(session, shot_id)
    return shots_out(session, shot.cut_version, [shot], settings.media_roots)[0]


@router.post(
    "/{shot_id}/thumbnail",
    status_code=202,
    response_model=Job,
    summary="Re-render one shot's thumbnail",
    description="Launches `render_shot_thumbnail` for the shot's cut with `shot_ids: [shot_id]`: the thumbnail "
    "only, so an interactive refresh does not wait for the contact sheet (re-render the whole cut's thumbnails "
    "to refresh it). An integer `frame` outside the shot is a 422 naming `frame`.",
    responses=problem_responses(400, 404, 409, 502, 503),
)
def render_thumbnail(
    shot_id: ShotId,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    gateway: GatewayDep,
    body: ThumbnailBody | None = None,
    idempotency_key: IdempotencyKey = None,
) -> Job:
    body = body or ThumbnailBody()
    reject_problems(body)
    callback_url = callbacks.accepted(settings, body.callback_url)
    shot = get_shot(session, shot_id)
    request = without_callback(body, ThumbnailOptions)
    return start_thumbnails(session, gateway, response, shot.cut_version, shot, request, idempotency_key, callback_url)
