"""The media library: upload (deduplicated by sha-256), find, download, delete, edit, concat, best
frames; and the original editor's `/bucket/upload` routes."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Annotated, Any, Literal, get_args

import sqlalchemy as sa
from fastapi import APIRouter, BackgroundTasks, Depends, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from api.deps import ArtifactsDep, GatewayDep, SessionDep, SettingsDep, require_token
from api.job_service import as_utc, live_statuses, start_job
from api.library import (
    json_object,
    limits_for,
    media_view,
    receive,
    report_inline,
    store_for,
    upload_view,
    validated,
)
from api.library_schemas import (
    BestFramesRequest,
    CheckAnswer,
    CheckRequest,
    ConcatRequest,
    EditAnswer,
    Media,
    MediaUpload,
    body_ref,
)
from api.pagination import CursorQuery, LimitQuery, decode_cursor, encode_cursor
from api.params import IdempotencyKey
from api.problems import ApiProblem, field_problem, not_found, problem_responses
from api.routes.artifacts import stored_response
from api.schemas import Job as JobOut
from api.schemas import Page
from media_pipeline.compositions import store as composition_store
from media_pipeline.db.models import Job, MediaItem
from media_pipeline.library import edits
from media_pipeline.library.assets import lineage_metadata
from media_pipeline.library.media import Refused, add
from media_pipeline.library.recipes import EditOp, OpRefused, Recipe
from media_pipeline.library.requests import BestFramesJob, ConcatJob, EditJob
from media_pipeline.library.usage import Usage, derivatives_using, forget, usage
from media_pipeline.platform import metrics
from media_pipeline.platform.job_state import TERMINAL

router = APIRouter(prefix="/media", tags=["media"])
MediaIdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_SHA256 = r"^[0-9a-f]{64}$"

UPLOAD_DESCRIPTION = (
    "Send a multipart form with the file as `file`, or the raw bytes as the body with `?filename=`. The bytes "
    "are streamed to storage while their sha-256 is computed (one read). New content answers 201; content the "
    "library already holds answers 200 with the existing item and `duplicate: true`, and is not stored again. "
    "The type (image or video), size, codec, rate and duration come from the content, never the name."
)


# Built once (session.get builds its query on every call: as much time as a cached edit's lookup).
_BY_ID = sa.select(MediaItem).where(MediaItem.id == sa.bindparam("media_id"))


def _get(session: SessionDep, media_id: int, *, lock: Literal["share", "update"] | None = None) -> MediaItem:
    """The item, or a 404. `lock` (Postgres; SQLite has no row locks) holds its row until the
    session commits: `update` for a delete, `share` for a job that will read the item, so that
    the two take turns instead of a job being queued on an item deleted meanwhile."""
    query = _BY_ID if lock is None else _BY_ID.with_for_update(read=lock == "share")
    item = session.scalars(query, {"media_id": media_id}).one_or_none()
    if item is None:
        raise not_found("media", media_id)
    return item


async def _upload(
    request: Request, response: Response, session: Any, settings: Any, filename: str | None
) -> MediaUpload:
    store = store_for(request.app.state.artifacts)
    incoming, name = await receive(
        request.stream(), request.headers.get("content-type", ""), filename, store, settings.library_max_bytes
    )

    def finish() -> MediaUpload:
        try:
            item, duplicate = add(session, store, incoming, name, limits_for(settings))
        except Refused as exc:
            raise ApiProblem(exc.status, "unsupported_media", str(exc)) from None
        finally:
            incoming.discard()
        metrics.record_upload(item.size, duplicate=duplicate)
        response.status_code = 200 if duplicate else 201
        response.headers["Location"] = f"/v1/media/{item.id}"
        return upload_view(session, item, duplicate)

    return await run_in_threadpool(finish)


FilenameQuery = Annotated[
    str | None, Query(min_length=1, max_length=255, description="The file's name, for a raw-body upload")
]


@router.post(
    "",
    status_code=201,
    response_model=MediaUpload,
    summary="Upload an image or video (deduplicated by content)",
    description=UPLOAD_DESCRIPTION,
    responses={
        200: {"model": MediaUpload, "description": "Already in the library (`duplicate: true`)"},
        **problem_responses(
            400,
            413,
            descriptions={
                413: "Larger than MEDIA_PIPELINE_LIBRARY_MAX_BYTES (`payload_too_large`); nothing is kept.",
                422: "Not an image or video (`unsupported_media`), more pixels than MEDIA_PIPELINE_LIBRARY_MAX_PIXELS "
                "or longer than MEDIA_PIPELINE_LIBRARY_MAX_DURATION; nothing is kept.",
            },
        ),
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
                },
                "application/octet-stream": _BINARY,
            }
        }
    },
)
async def upload_media(
    request: Request, response: Response, session: SessionDep, settings: SettingsDep, filename: FilenameQuery = None
) -> MediaUpload:
    return await _upload(request, response, session, settings, filename)


@router.post(
    "/check",
    response_model=CheckAnswer,
    summary="Which of these sha-256s are in the library",
    responses=problem_responses(400, 413),
)
def check_media(body: CheckRequest, session: SessionDep) -> CheckAnswer:
    wanted = [value.lower() for value in body.sha256]
    for number, value in enumerate(wanted):
        if len(value) != 64 or any(ch not in "0123456789abcdef" for ch in value):
            raise field_problem(f"sha256.{number}", "not a sha-256 (64 hexadecimal digits)")
    rows = session.execute(sa.select(MediaItem.sha256, MediaItem.id).where(MediaItem.sha256.in_(wanted)))
    existing = {sha: media_id for sha, media_id in rows}
    return CheckAnswer(existing=existing, missing=[sha for sha in dict.fromkeys(wanted) if sha not in existing])


def _page(
    session: Any,
    limit: int,
    cursor: str | None,
    *,
    type_: str | None = None,
    after: dt.datetime | None = None,
    before: dt.datetime | None = None,
    sha256: str | None = None,
    derived_from: int | None = None,
) -> Page[Media]:
    position = decode_cursor(cursor, id=int)
    query = sa.select(MediaItem).order_by(MediaItem.id.desc()).limit(limit + 1)
    if position is not None:
        query = query.where(MediaItem.id < position["id"])
    if type_ is not None:
        query = query.where(MediaItem.type == type_)
    # Stored in UTC (SQLite keeps no offset): compare in UTC.
    if after is not None:
        query = query.where(MediaItem.created_at >= as_utc(after).astimezone(dt.UTC))
    if before is not None:
        query = query.where(MediaItem.created_at < as_utc(before).astimezone(dt.UTC))
    if sha256 is not None:
        query = query.where(MediaItem.sha256 == sha256.lower())
    if derived_from is not None:
        # Every item made from it: an edit's source, or any input of a concat.
        made = [row.media_id for row in derivatives_using(session, derived_from)]
        query = query.where(MediaItem.id.in_(made))
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page[Media](
        items=[media_view(session, item) for item in rows],
        next_cursor=encode_cursor({"id": rows[-1].id}) if more and rows else None,
    )


@router.get("", response_model=Page[Media], summary="Library items, newest first, with filters")
def list_media(
    session: SessionDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
    type: Annotated[Literal["image", "video"] | None, Query()] = None,
    uploaded_after: Annotated[dt.datetime | None, Query(description="ISO 8601; items added at or after")] = None,
    uploaded_before: Annotated[dt.datetime | None, Query(description="ISO 8601; items added before")] = None,
    sha256: Annotated[str | None, Query(pattern=r"^[0-9a-fA-F]{64}$")] = None,
    derived_from: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="Only the items edits made from this one (its derivatives)")
    ] = None,
) -> Page[Media]:
    return _page(
        session,
        limit,
        cursor,
        type_=type,
        after=uploaded_after,
        before=uploaded_before,
        sha256=sha256,
        derived_from=derived_from,
    )


@router.post(
    "/concat",
    status_code=202,
    response_model=JobOut,
    summary="Videos one after another, as a new item (a job)",
    description="Stream copy when every input has the same codec, size, rate, pixel format and audio; otherwise "
    "re-encoded (H.264) to the first input's size and rate. The job's output is the new item.",
    responses=problem_responses(400, 404, 409, 413, 502, 503),
)
def concat_media(
    body: ConcatRequest,
    response: Response,
    session: SessionDep,
    gateway: GatewayDep,
    idempotency_key: IdempotencyKey = None,
) -> JobOut:
    for number, media_id in enumerate(body.items):
        # Share-locked until the job is committed (see _get).
        item = session.get(MediaItem, media_id, with_for_update={"read": True})
        if item is None:
            raise field_problem(f"items.{number}", f"there is no media with id {media_id}")
        if item.type != "video":
            raise field_problem(f"items.{number}", f"media {media_id} is an image; only videos can be concatenated")
    return start_job(
        session,
        gateway,
        response,
        kind="media_concat",
        subject_id=body.items[0],
        request=ConcatJob(items=body.items),
        idempotency_key=idempotency_key,
    )


@router.get(
    "/{media_id}", response_model=Media, summary="One library item, with its lineage", responses=problem_responses(404)
)
def get_media(media_id: MediaIdPath, session: SessionDep) -> Media:
    return media_view(session, _get(session, media_id))


@router.get(
    "/{media_id}/content",
    response_class=StreamingResponse,
    summary="The item's bytes (Range supported)",
    responses={
        200: {"content": {"*/*": _BINARY}},
        206: {"content": {"*/*": _BINARY}},
        **problem_responses(404, 416, 503),
    },
)
def media_content(
    media_id: MediaIdPath,
    session: SessionDep,
    artifacts: ArtifactsDep,
    range_header: Annotated[str | None, Header(alias="Range", max_length=200)] = None,
    if_range: Annotated[str | None, Header(alias="If-Range", max_length=200)] = None,
) -> StreamingResponse:
    item = _get(session, media_id)
    return stored_response(
        artifacts, item.storage_key, range_header, if_range, media_type=item.content_type, filename=item.filename
    )


def _still_unfinished(gateway: Any, jobs: list[Job]) -> list[Job]:
    """The jobs whose run has not ended: a stored status lags its run until the job tracker
    records the end. Dagster unreachable: the stored status, which errs on the side of refusing."""
    try:
        live = live_statuses(gateway, jobs)
    except ApiProblem:
        return jobs
    return [job for job in jobs if live.get(job.id, job.status) not in TERMINAL]


def in_use(media_id: int, used: Usage, compositions: list[int]) -> ApiProblem:
    """The 409 for deleting an item something uses, naming each user."""
    made = sorted({row.media_id for row in used.derivatives})
    jobs = [job.id for job in used.jobs]
    reasons = []
    if made:
        reasons.append(f"media {', '.join(map(str, made))} {'was' if len(made) == 1 else 'were'} made from it")
    if jobs:
        reasons.append(f"unfinished job(s) {', '.join(jobs)} use it")
    if compositions:
        reasons.append(f"compositions {', '.join(map(str, compositions))} use it (segment inputs or soundtrack)")
    return ApiProblem(
        409,
        "media_in_use",
        f"media {media_id} is in use: {' and '.join(reasons)}; delete those first, wait for the jobs, or delete "
        "with ?force=true anyway (their lineage then shows null where this item was)",
        derivatives=made,
        jobs=jobs,
        compositions=compositions,
    )


@router.delete(
    "/{media_id}",
    status_code=204,
    summary="Delete an item (refused while derivatives, jobs or compositions use it, unless force)",
    responses=problem_responses(404, 409),
)
def delete_media(
    media_id: MediaIdPath,
    session: SessionDep,
    artifacts: ArtifactsDep,
    gateway: GatewayDep,
    force: Annotated[
        bool, Query(description="Delete even if derivatives, unfinished jobs or compositions use it")
    ] = False,
) -> Response:
    item = _get(session, media_id, lock="update")
    used = usage(session, media_id)
    used = replace(used, jobs=_still_unfinished(gateway, used.jobs))
    compositions = composition_store.compositions_using(session, media_id)
    if (used or compositions) and not force:
        raise in_use(media_id, used, compositions)
    key = item.storage_key
    forget(session, used.derivatives, media_id)
    session.delete(item)
    session.commit()
    store_for(artifacts).delete(key)
    return Response(status_code=204)


def _edit_query_parameters() -> list[dict[str, Any]]:
    """The query-parameter form of one edit, for the OpenAPI document: `op` and every op's fields.

    Only documented: the handler reads `request.query_params` whole and validates them as the one
    op of a recipe, so declaring them as FastAPI parameters would add a second, different check.
    """
    used_by: dict[str, list[type[BaseModel]]] = {}
    for model in get_args(get_args(EditOp)[0]):
        for name in model.model_fields:
            if name != "op":
                used_by.setdefault(name, []).append(model)
    names = [model.model_fields["op"].annotation.__args__[0] for model in get_args(get_args(EditOp)[0])]
    parameters: list[dict[str, Any]] = [
        {
            "name": "op",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": names},
            "description": "One edit as query parameters instead of a JSON body: the op's name; every field of "
            "that op may be given as a query parameter too (`?op=resize&width=640&fit=cover`), with the same "
            "rules and defaults as in the body. Not together with a body.",
        }
    ]
    for name, models in used_by.items():
        ops = [model.model_fields["op"].annotation.__args__[0] for model in models]
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "schema": models[0].model_json_schema()["properties"][name],
                "description": f"With `op` = {' | '.join(ops)}: that op's `{name}` field",
            }
        )
    return parameters


def _recipe_from(body: dict[str, Any] | None, request: Request) -> Recipe:
    if body is not None and request.query_params.get("op"):
        raise field_problem("op", "give the edit as a JSON body or as query parameters, not both", location="query")
    if body is None:
        if not request.query_params.get("op"):
            raise field_problem(
                "ops", 'send {"ops": [...]} or a single edit as query parameters (?op=resize&width=640)'
            )
        body = {"ops": [dict(request.query_params)]}
    return validated(Recipe, body, "ops")


@router.post(
    "/{media_id}/edits",
    response_model=EditAnswer,
    summary="Edit an item: a new item with lineage (inline for images under the budget, else a job)",
    description=(
        'Body `{"ops": [...]}` or one op as query parameters (`?op=resize&width=640`). Image ops: crop, resize, '
        "opacity, color, text, format; video ops: trim, format. The output is cached by (source sha-256, canonical "
        "recipe): the same edit of the same content renders once. Images up to MEDIA_PIPELINE_LIBRARY_INLINE_PIXELS "
        "answer 200 with the new item; videos and larger images answer 202 with the job."
    ),
    openapi_extra={"requestBody": {"required": False, **body_ref(Recipe)}, "parameters": _edit_query_parameters()},
    responses={
        202: {"model": EditAnswer, "description": "Running as a job"},
        **problem_responses(400, 404, 409, 413, 502, 503),
    },
)
async def edit_media(
    media_id: MediaIdPath,
    request: Request,
    response: Response,
    background: BackgroundTasks,
    session: SessionDep,
    settings: SettingsDep,
    artifacts: ArtifactsDep,
    gateway: GatewayDep,
    idempotency_key: IdempotencyKey = None,
) -> EditAnswer:
    recipe = _recipe_from(await json_object(request), request)
    return await run_in_threadpool(
        _edit, media_id, recipe, response, background, session, settings, artifacts, gateway, idempotency_key
    )


def _edit(media_id: int, recipe: Recipe, response: Response, background: BackgroundTasks, session: Any,
          settings: Any, artifacts: Any, gateway: Any, idempotency_key: str | None) -> EditAnswer:  # fmt: skip
    item = _get(session, media_id)
    store = store_for(artifacts)
    try:
        if item.type == "image" and edits.pixels(item) <= settings.library_inline_pixels:
            with metrics.inline_edit_timer():
                try:
                    # A new derivative share-locks its source (edits._hold); a cached one takes no lock.
                    edited = edits.edit(session, store, item, recipe.ops, limits_for(settings))
                except edits.SourceDeleted:
                    raise not_found("media", media_id) from None
            if not edited.cached:
                # After the answer is sent: the derivative is already stored and recorded; the
                # Dagster event (a write to its event log, 50-100 ms on SQLite) is its lineage view.
                background.add_task(report_inline, gateway, f"inline edit of media {item.id}", lineage_metadata(edited))
            response.headers["Location"] = f"/v1/media/{edited.item.id}"
            answer = EditAnswer(media=media_view(session, edited.item, earliest=edited.lineage), cached=edited.cached)
            # The read transaction ends here, on this worker thread, so closing the session at the
            # end of the request does not need another trip to the thread pool to roll it back.
            session.rollback()
            return answer
        edits.canonical_recipe(item, store, recipe.ops)  # 422 now, not in the run
    except OpRefused as exc:
        raise field_problem(exc.field, str(exc)) from None
    # Share-locked until the job is committed (see _get): a delete under way is waited for, and
    # then the edit answers 404 instead of queueing a job on a deleted item.
    _get(session, media_id, lock="share")
    job = start_job(
        session,
        gateway,
        response,
        kind="media_edit",
        subject_id=media_id,
        request=EditJob(media_id=media_id, ops=recipe.ops),
        idempotency_key=idempotency_key,
    )
    response.status_code = 202
    return EditAnswer(job=job)


@router.post(
    "/{media_id}/best-frames",
    status_code=202,
    response_model=JobOut,
    summary="The best frames of a video (a job): sharp, well exposed, not near-duplicates",
    description="Scored by the extraction area's scorer (variance of the Laplacian x exposure, near-duplicates "
    "skipped). The job's outputs are the frames as PNG library items, best first, each with its index, pts, "
    "time base, exact seconds, timecode and scores.",
    responses=problem_responses(400, 404, 409, 413, 502, 503),
)
def best_frames(
    media_id: MediaIdPath,
    body: BestFramesRequest,
    response: Response,
    session: SessionDep,
    gateway: GatewayDep,
    idempotency_key: IdempotencyKey = None,
) -> JobOut:
    item = _get(session, media_id, lock="share")
    if item.type != "video":
        raise field_problem(
            "media_id", f"media {media_id} is an image; best frames are chosen from videos", location="path"
        )
    return start_job(
        session,
        gateway,
        response,
        kind="best_frames",
        subject_id=media_id,
        request=BestFramesJob(media_id=media_id, count=body.count),
        idempotency_key=idempotency_key,
    )


# -- the original editor's routes -------------------------------------------------------------

original_router = APIRouter(
    prefix="/bucket", tags=["media"], dependencies=[Depends(require_token)], responses=problem_responses(401, 422, 500)
)


@original_router.post(
    "/upload",
    status_code=201,
    response_model=MediaUpload,
    summary="The original editor's upload (the same as POST /v1/media)",
    description=UPLOAD_DESCRIPTION,
    responses=problem_responses(400, 413),
)
async def bucket_upload(
    request: Request, response: Response, session: SessionDep, settings: SettingsDep, filename: FilenameQuery = None
) -> MediaUpload:
    return await _upload(request, response, session, settings, filename)


@original_router.get(
    "/upload",
    response_model=Page[Media],
    summary="The original editor's listing: items of a type uploaded on a day",
)
def bucket_list(
    session: SessionDep,
    type: Annotated[Literal["image", "video"] | None, Query()] = None,
    uploadedAt: Annotated[dt.date | None, Query(description="A day, YYYY-MM-DD (UTC)")] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[Media]:
    after = before = None
    if uploadedAt is not None:
        after = dt.datetime.combine(uploadedAt, dt.time(), tzinfo=dt.UTC)
        before = after + dt.timedelta(days=1)
    return _page(session, limit, cursor, type_=type, after=after, before=before)
