"""Frame extractions: `POST /v1/extractions`, `GET /v1/extractions/{id}`, and the original batch
API (`POST /process`, `GET /status/{jobId}`) kept unchanged for its clients."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from pydantic import ValidationError

from api.deps import ArtifactsDep, GatewayDep, SessionDep, require_token
from api.extraction_schemas import (
    Extraction,
    ExtractionAccepted,
    ProcessAccepted,
    ProcessRequest,
    StatusItem,
    StatusLog,
    StatusOut,
)
from api.extractions import KIND, extraction_view, job_of_batch, start_extraction
from api.params import IdempotencyKey
from api.problems import field_problem, not_found, problem_responses
from media_pipeline.db.models import Job as JobRow
from media_pipeline.extraction.request import ExtractionRequest

router = APIRouter(prefix="/extractions", tags=["extractions"])

ExtractionId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^ex_[0-9a-f]{16}$")]

FRAME_RULE = (
    "Positions come from each decoded frame's own pts and the stream's time base (variable frame rates are "
    "right). A timestamp names the frame displayed at that instant: the last frame whose position is <= t. "
    "Indices count decoded frames from 0."
)


@router.post(
    "",
    status_code=202,
    response_model=ExtractionAccepted,
    summary="Extract exact frames (and crops) from a batch of videos",
    description=(
        "Starts one `frame_extraction` job for the batch; items are fetched and extracted in parallel inside "
        "its run, and an item that cannot be fetched or decoded fails alone, with a sentence. Modes: `frames` "
        "(indices), `interval` (`every_seconds` or `every_frames`), `timestamps` (seconds or `HH:MM:SS:FF`), "
        "`scenes` (the first frame of each hard cut), `best` (`count` sharp, well exposed, distinct frames). "
        f"{FRAME_RULE} Follow it at `GET /v1/extractions/{{id}}`. With an `Idempotency-Key`, repeating the same "
        "request returns the same extraction."
    ),
    responses=problem_responses(
        400,
        409,
        413,
        502,
        503,
        descriptions={
            422: "Invalid request; `errors[].field` names each field. More videos than "
            "`MEDIA_PIPELINE_MAX_VIDEOS_PER_REQUEST` is a 422 on `items`.",
        },
    ),
)
def create_extraction(
    body: ExtractionRequest,
    response: Response,
    session: SessionDep,
    gateway: GatewayDep,
    artifacts: ArtifactsDep,
    idempotency_key: IdempotencyKey = None,
) -> ExtractionAccepted:
    batch, job = start_extraction(session, gateway, response, artifacts, body, idempotency_key, "POST /v1/extractions")
    view = extraction_view(session, gateway, artifacts, job)
    response.headers["Location"] = f"/v1/extractions/{batch}"
    return ExtractionAccepted(extraction=view, job=view.job)


@router.get(
    "/{extraction_id}",
    response_model=Extraction,
    summary="An extraction: its items, their frames, progress and logs",
    responses=problem_responses(404, 503),
)
def get_extraction(
    extraction_id: ExtractionId, session: SessionDep, gateway: GatewayDep, artifacts: ArtifactsDep
) -> Extraction:
    job = job_of_batch(session, artifacts, extraction_id)
    return extraction_view(session, gateway, artifacts, job)


# -- the original API -------------------------------------------------------------------------

original_router = APIRouter(
    tags=["extractions"], dependencies=[Depends(require_token)], responses=problem_responses(401, 422, 500)
)

_ORIGINAL_STATUS = {
    "queued": "pending",
    "running": "running",
    "succeeded": "completed",
    "partial": "completed",
    "failed": "failed",
    "cancelled": "failed",
}


@original_router.post(
    "/process",
    response_model=ProcessAccepted,
    summary="The original batch API: extract frames from videos named by platform and code",
    description=(
        "`platform` is a video platform (`youtube`, `instagram`, ...; needs the optional yt-dlp support), `file` "
        "(code: an absolute path under the media roots) or `url` (code: an http(s) URL). Frames are taken every "
        "second; `POST /v1/extractions` offers every mode."
    ),
    responses=problem_responses(400, 409, 413, 502, 503),
)
def process(
    body: ProcessRequest,
    response: Response,
    session: SessionDep,
    gateway: GatewayDep,
    artifacts: ArtifactsDep,
    idempotency_key: IdempotencyKey = None,
) -> ProcessAccepted:
    try:
        request = ExtractionRequest.model_validate({"items": [item.model_dump() for item in body.items]})
    except ValidationError as exc:
        error = exc.errors()[0]
        location = ".".join(str(part) for part in error["loc"]) or "items"
        raise field_problem(location, error["msg"].removeprefix("Value error, ")) from None
    _, job = start_extraction(session, gateway, response, artifacts, request, idempotency_key, "/process")
    return ProcessAccepted(jobId=job.id)


@original_router.get(
    "/status/{jobId}",
    response_model=StatusOut,
    summary="The original batch API: a job's status, progress 0..100, items and logs",
    responses=problem_responses(404, 503),
)
def status(
    jobId: Annotated[uuid.UUID, Path(description="The `jobId` POST /process answered")],
    session: SessionDep,
    gateway: GatewayDep,
    artifacts: ArtifactsDep,
) -> StatusOut:
    job = session.get(JobRow, str(jobId))
    if job is None or job.kind != KIND:
        raise not_found("job", jobId)
    view = extraction_view(session, gateway, artifacts, job)
    items = []
    for item in view.items:
        platform, _, code = item.source.partition(":")
        if item.source.startswith(("file://", "http://", "https://")):
            platform, code = ("file" if item.source.startswith("file://") else "url"), item.source
        items.append(StatusItem(platform=platform, code=code, status=item.status, error=item.error, frames=item.frames))
    return StatusOut(
        jobId=job.id,
        status=_ORIGINAL_STATUS[view.status],  # type: ignore[arg-type]
        progress=view.percent,
        createdAt=view.created_at,
        updatedAt=view.updated_at,
        items=items,
        logs=[StatusLog(ts=log.ts, level=log.level, msg=log.msg) for log in view.logs],
    )
