"""Cuts: publish a timeline, list and read cut versions, their shots, a diff, and launch renders."""

from __future__ import annotations

import tempfile
from pathlib import Path as FilePath
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, File, Form, Path, Query, Response, UploadFile
from fastapi.responses import FileResponse
from pydantic import StringConstraints
from sqlalchemy.orm import Session, selectinload

from api import callbacks
from api.dagster_gateway import DagsterGateway
from api.deps import ArtifactsDep, GatewayDep, SessionDep, SettingsDep
from api.diff import diff_view
from api.job_service import add_job, commit_new, job_view, launch_or_undo, replay, request_hash, start_job
from api.pagination import CursorQuery, LimitQuery, decode_cursor, encode_cursor
from api.params import IdempotencyKey, TextQuery
from api.problems import ApiProblem, field_problem, not_found, problem_responses, reject_problems
from api.schemas import (
    CALLBACK_DESCRIPTION,
    MAX_ID,
    Cut,
    CutCreated,
    CutDiff,
    CutThumbnailsBody,
    FinalVideoBody,
    Job,
    Page,
    Shot,
    without_callback,
)
from api.schemas import CutStatus as CutStatusName
from api.thumbnails import start_thumbnails
from api.uploads import copy_limited, discard, safe_filename
from api.views import cut_out, shots_out
from media_pipeline.core.files import sha256_file
from media_pipeline.db.models import CutStatus, CutVersion, Project
from media_pipeline.db.models import Job as JobRow
from media_pipeline.db.models import Shot as ShotRow
from media_pipeline.editorial import job_kinds
from media_pipeline.editorial.assets.proxies import ProxyConfig
from media_pipeline.editorial.cut_diff import DEFAULT_HANDLES
from media_pipeline.editorial.export import ExportError, ExportFormat, ExportMedia, export_cut
from media_pipeline.editorial.media import MediaRootError, confine_roots
from media_pipeline.editorial.publish import publish_cut
from media_pipeline.editorial.requests import FinalVideoConfig, ThumbnailConfig
from media_pipeline.editorial.safe_read import TimelineLimits, read_untrusted
from media_pipeline.editorial.timeline import ReadOptions, TimelineError, readable_suffixes, user_rate
from media_pipeline.resources import ArtifactStore

router = APIRouter(prefix="/cuts", tags=["cuts"])

CutId = Annotated[int, Path(ge=1, le=MAX_ID, description="A cut version's id")]
FormText = Annotated[
    str, Form(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$", description="1-200 printable characters")
]
_BINARY = {"schema": {"type": "string", "format": "binary"}}
MediaRoot = Annotated[str, StringConstraints(min_length=1, max_length=4096, pattern=r"^/[^\x00-\x1f\x7f]*$")]


def get_cut(session: Session, cut_id: int) -> CutVersion:
    cut = session.scalar(sa.select(CutVersion).options(selectinload(CutVersion.project)).where(CutVersion.id == cut_id))
    if cut is None:
        raise not_found("cut", cut_id)
    return cut


def require_ingested(cut: CutVersion) -> None:
    if cut.status != CutStatus.INGESTED:
        state = f"failed: {cut.error}" if cut.status == CutStatus.FAILED else "not been ingested yet"
        raise ApiProblem(
            409,
            "cut_not_ingested",
            f"cut {cut.id} has {state}; its shots exist once its ingest job has succeeded",
        )


@router.post(
    "",
    status_code=202,
    response_model=CutCreated,
    summary="Publish a timeline as a new cut version and start ingesting it",
    description=(
        "Upload a timeline (any format an installed OTIO adapter reads: "
        + ", ".join(f"`.{suffix}`" for suffix in readable_suffixes())
        + "). The file is checked to be a readable timeline before anything is stored; then a cut version "
        "is created and its `ingest_cut` run launched. Answers 202 with the cut and the job to follow. "
        "With an `Idempotency-Key`, repeating the same request returns the same cut and job."
    ),
    responses=problem_responses(
        400,
        409,
        413,
        502,
        503,
        descriptions={
            422: "Invalid fields, or the file is not a readable timeline (`unreadable_timeline`, with the "
            "adapter's reason in `detail`).",
            503: "Dagster or the artifact store is unreachable (`dagster_unavailable`, `storage_unavailable`); "
            "nothing was created.",
        },
    ),
)
def create_cut(
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    artifacts: ArtifactsDep,
    gateway: GatewayDep,
    file: Annotated[UploadFile, File(description="The timeline file; its extension picks the reader")],
    project: FormText,
    name: FormText,
    rate: Annotated[
        str | None,
        Form(
            max_length=32,
            description="Frame rate of an EDL (EDLs carry none; default 24): a number such as `25`, `23.976`, "
            "`29.97`, `59.94`, or exact text such as `30000/1001`. Drop-frame is read from the EDL itself "
            "(`FCM: DROP FRAME` or `;` timecodes).",
        ),
    ] = None,
    media_roots: Annotated[
        list[MediaRoot] | None,
        Form(
            description="Absolute folders searched first by file name for media not found where the timeline says; "
            "each must lie inside MEDIA_PIPELINE_MEDIA_ROOTS or a watch folder (not `/`; at most 16, duplicates "
            "dropped)"
        ),
    ] = None,
    idempotency_key: IdempotencyKey = None,
    callback_url: Annotated[str | None, Form(max_length=2048, description=CALLBACK_DESCRIPTION)] = None,
) -> CutCreated:
    callback_url = callbacks.accepted(settings, callback_url)
    filename = safe_filename(file.filename)
    try:
        roots = [str(root) for root in confine_roots(media_roots or [], settings.media_roots)]
    except MediaRootError as exc:
        raise field_problem("media_roots", str(exc)) from None
    upload_dir = FilePath(tempfile.mkdtemp(prefix="mp-upload-"))
    try:
        local = upload_dir / filename
        copy_limited(file.file, local, settings.max_upload_bytes)
        try:
            read_options = ReadOptions(rate=user_rate(rate))
        except TimelineError as exc:
            raise field_problem("rate", str(exc)) from exc
        try:
            # In a child process with time and memory limits: a hostile file costs that child only.
            read_untrusted(local, read_options, TimelineLimits.from_settings(settings))
        except TimelineError as exc:
            raise ApiProblem(
                422,
                "unreadable_timeline",
                str(exc),
                errors=[{"field": "file", "loc": ["body", "file"], "message": str(exc), "type": "unreadable_timeline"}],
            ) from exc
        digest = request_hash(
            {
                "route": "POST /v1/cuts",
                "project": project,
                "name": name,
                "rate": read_options.as_dict()["rate"],
                "media_roots": roots,
                "filename": filename,
                "sha256": sha256_file(local),
                "callback_url": callback_url,
            }
        )
        earlier = replay(session, idempotency_key, digest)
        if earlier is None:
            # publish_cut holds the project until this commit: concurrent publishes (other
            # requests, other API processes, the watch-folder sensor) get the next version.
            cut = publish_cut(
                session,
                artifacts,
                project=project,
                name=name,
                source=local,
                filename=filename,
                read_options=read_options,
                media_roots=roots,
            ).cut
            job = add_job(
                session,
                job_kinds.ingest_cut,
                subject_id=str(cut.id),
                params={"partition_key": cut.partition_key},
                idempotency_key=idempotency_key,
                digest=digest,
                callback_url=callback_url,
            )
            earlier = commit_new(session, idempotency_key, digest)
    finally:
        discard(upload_dir)
    if earlier is not None:
        response.headers["Idempotent-Replayed"] = "true"
        return _created(session, settings.artifact_root, gateway, earlier, response)
    launch_or_undo(session, gateway, job, cut.partition_key, {}, lambda: _undo_publish(session, artifacts, cut))
    return _created(session, settings.artifact_root, gateway, job, response)


def _created(
    session: Session, artifact_root: FilePath, gateway: DagsterGateway, job: JobRow, response: Response
) -> CutCreated:
    if job.kind != job_kinds.ingest_cut.name or job.subject_id is None:
        raise ApiProblem(409, "idempotency_conflict", "this Idempotency-Key belongs to a job that is not a publish")
    cut = get_cut(session, int(job.subject_id))
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    view = job_view(session, gateway, job)
    session.refresh(cut)  # the run may have changed it already (in-process runs finish before this)
    return CutCreated(cut=cut_out(session, cut, artifact_root), job=view)


def _undo_publish(session: Session, artifacts: ArtifactStore, cut: CutVersion) -> None:
    # The run never started, so nothing else refers to the cut: remove it and its stored file.
    session.execute(sa.delete(CutVersion).where(CutVersion.id == cut.id))
    session.commit()
    if cut.source_path and FilePath(cut.source_path).is_relative_to(artifacts.root_path):
        artifacts.delete(artifacts.key(cut.source_path))
    discard(artifacts.cut_dir(cut.partition_key))


@router.get("", response_model=Page[Cut], summary="List cut versions, newest first")
def list_cuts(
    session: SessionDep,
    settings: SettingsDep,
    project: Annotated[TextQuery | None, Query(description="Only this project's cuts")] = None,
    status: Annotated[CutStatusName | None, Query(description="Only cuts in this state (`failed`: with `error`)")] = (
        None
    ),
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[Cut]:
    position = decode_cursor(cursor, after=int)
    query = sa.select(CutVersion).options(selectinload(CutVersion.project)).order_by(CutVersion.id.desc())
    if project is not None:
        query = query.join(Project).where(Project.name == project)
    if status is not None:
        query = query.where(CutVersion.status == status)
    if position is not None:
        query = query.where(CutVersion.id < position["after"])
    rows = list(session.scalars(query.limit(limit + 1)))
    next_cursor = encode_cursor({"after": rows[limit - 1].id}) if len(rows) > limit else None
    items = [cut_out(session, cut, settings.artifact_root) for cut in rows[:limit]]
    return Page[Cut](items=items, next_cursor=next_cursor)


@router.get("/{cut_id}", response_model=Cut, summary="One cut version", responses=problem_responses(404))
def read_cut(cut_id: CutId, session: SessionDep, settings: SettingsDep) -> Cut:
    return cut_out(session, get_cut(session, cut_id), settings.artifact_root)


@router.get(
    "/{cut_id}/shots",
    response_model=Page[Shot],
    summary="The cut's shots in timeline order",
    responses=problem_responses(404),
)
def list_shots(
    cut_id: CutId, session: SessionDep, settings: SettingsDep, limit: LimitQuery = 100, cursor: CursorQuery = None
) -> Page[Shot]:
    cut = get_cut(session, cut_id)
    position = decode_cursor(cursor, after=int)
    query = sa.select(ShotRow).where(ShotRow.cut_version_id == cut.id).order_by(ShotRow.index)
    if position is not None:
        query = query.where(ShotRow.index > position["after"])
    rows = list(session.scalars(query.limit(limit + 1)))
    next_cursor = encode_cursor({"after": rows[limit - 1].index}) if len(rows) > limit else None
    return Page[Shot](items=shots_out(session, cut, rows[:limit], settings.media_roots), next_cursor=next_cursor)


@router.get(
    "/{cut_id}/diff",
    response_model=CutDiff,
    summary="What happened to each shot since another cut version: new, omitted, trimmed, rescan, moved, ...",
    description=(
        "Compares this cut with `against` (normally its previous version) shot by shot, as editorial change "
        "lists do. Shots are matched by name (repeated names pair up in order), then the rest by media file and "
        "overlapping source range (a renamed shot, reported with `old_name`). Each entry has a `status`, every "
        "category that applies, and a sentence per change:\n\n"
        "- `new`: not in `against` nor in any ingested version of its cut before it;\n"
        "- `reinstated`: not in `against`, but in such an earlier version;\n"
        "- `omitted`: in `against`, not in this cut;\n"
        "- `rescan`: the source range now reaches past `against`'s range plus `handles` frames, so the plate "
        "pulled for it is too short;\n"
        "- `cut_change`: trimmed, or extended within the handles;\n"
        "- `media_changed`: another media file or reel;\n"
        "- `moved`: another place in the edit order (only the shots that left the longest run still in "
        "order);\n"
        "- `no_change`.\n\n"
        "The status is the first category in that order. Source ranges are compared in whole frames at this cut's "
        "source rate (another rate is converted exactly). Both cuts must be ingested (409 otherwise)."
    ),
    responses=problem_responses(404, 409),
)
def diff(
    cut_id: CutId,
    against: Annotated[int, Query(ge=1, le=MAX_ID, description="The cut to compare with (normally the older one)")],
    session: SessionDep,
    handles: Annotated[
        int,
        Query(ge=0, le=100_000, description="Frames of handle pulled on each side of a shot; beyond them: `rescan`"),
    ] = DEFAULT_HANDLES,
) -> CutDiff:
    cut, other = get_cut(session, cut_id), get_cut(session, against)
    for each in (cut, other):
        require_ingested(each)
    return diff_view(session, cut, other, handles)


@router.get(
    "/{cut_id}/export",
    response_class=FileResponse,
    summary="The cut as a timeline file: OTIO, OTIOZ (with its media) or CMX 3600 EDL",
    description=(
        "One video track of the cut's shots at their record places, each with its exact source range, starting "
        "at the cut's start timecode; re-ingesting the file gives the same shots. `media=proxies` points every "
        "shot at its latest review proxy (409 `proxies_missing` until they are rendered). `otioz` bundles the "
        "media files; an EDL names the media in `* FROM CLIP:` comments."
    ),
    responses={
        200: {
            "description": "The timeline file: OTIO is JSON, an EDL is text, OTIOZ a zip",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/plain": {"schema": {"type": "string"}},
                "application/zip": _BINARY,
                "application/octet-stream": _BINARY,
            },
        },
        **problem_responses(404, 409),
    },
)
def export(
    cut_id: CutId,
    session: SessionDep,
    settings: SettingsDep,
    fmt: Annotated[ExportFormat, Query(alias="format", description="`otio`, `otioz` or `edl`")] = "otio",
    media: Annotated[ExportMedia, Query(description="`source` media or review `proxies`")] = "source",
) -> FileResponse:
    cut = get_cut(session, cut_id)
    require_ingested(cut)
    try:
        exported = export_cut(session, cut, settings.artifact_root, fmt, media)
    except ExportError as exc:
        raise ApiProblem(409, "proxies_missing", str(exc)) from exc
    return FileResponse(exported.path, media_type=exported.media_type, filename=exported.filename)


@router.post(
    "/{cut_id}/thumbnails",
    status_code=202,
    response_model=Job,
    summary="Re-render every shot's thumbnail (and the contact sheet)",
    description="Launches `render_thumbnails` for the cut's partition. Shots where an integer `frame` offset "
    "falls outside the shot get a slate saying so.",
    responses=problem_responses(400, 404, 409, 502, 503),
)
def render_thumbnails(
    cut_id: CutId,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    gateway: GatewayDep,
    body: CutThumbnailsBody | None = None,
    idempotency_key: IdempotencyKey = None,
) -> Job:
    body = body or CutThumbnailsBody()
    reject_problems(body)
    callback_url = callbacks.accepted(settings, body.callback_url)
    cut = get_cut(session, cut_id)
    return start_thumbnails(
        session, gateway, response, cut, None, without_callback(body, ThumbnailConfig), idempotency_key, callback_url
    )


@router.post(
    "/{cut_id}/final-video",
    status_code=202,
    response_model=Job,
    summary="Render the cut as one H.264 video (conform)",
    description=(
        "Launches `render_final_video` for the cut's partition: the cut conformed from its source media with "
        "exact frames, black gaps, slates for missing media, dissolves and (with `audio`) the conformed audio "
        "tracks, at the timeline's frame rate and start timecode. Segments already encoded with the same options "
        "(by any version of any cut) are reused, so a new cut version re-encodes only what changed.\n\n"
        "Answers 202 with the job to follow at `/v1/jobs/{id}`: its `progress` follows the frames encoded, and "
        'once it has succeeded its `outputs` hold `{"kind": "final_video", "url": '
        '"/v1/artifacts/cuts/<partition>/final_video.mp4"}` (byte ranges supported, for players). Each render '
        "replaces the cut's previous `final_video.mp4`. With an `Idempotency-Key`, repeating the same request "
        "returns the same job."
    ),
    responses=problem_responses(
        400,
        404,
        409,
        502,
        503,
        descriptions={
            409: "The cut is not ingested (`cut_not_ingested`: it has no shots yet, or its ingest failed), or the "
            "Idempotency-Key was used for another request (`idempotency_conflict`).",
            422: "Invalid options; `errors[].field` names each one (`resolution`, `crf`, `preset`, `audio`) "
            "(`validation_error`).",
        },
    ),
)
def final_video(
    cut_id: CutId,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    gateway: GatewayDep,
    body: FinalVideoBody | None = None,
    idempotency_key: IdempotencyKey = None,
) -> Job:
    body = body or FinalVideoBody()
    reject_problems(body)
    callback_url = callbacks.accepted(settings, body.callback_url)
    cut = get_cut(session, cut_id)
    return start_job(
        session,
        gateway,
        response,
        kind=job_kinds.final_video.name,
        subject_id=cut.id,
        request=without_callback(body, FinalVideoConfig),
        idempotency_key=idempotency_key,
        callback_url=callback_url,
    )


@router.post(
    "/{cut_id}/proxies",
    status_code=202,
    response_model=Job,
    summary="Render review proxies (H.264 with burn-ins) and filmstrips for all of the cut's shots or some",
    description=(
        "Launches `render_proxies` for the cut's partition with these options (the `shot_proxies` config): "
        "`shot_ids` / `shot_names` choose shots (empty: all), `width`, `crf`, `preset`, `gop`, `handles` (clamped "
        "to the media that exists), `burn_ins` (any of `shot_name`, `source_timecode`, `frame_number`, "
        "`cut_version`), `filmstrip_frames`, `force`. Unchanged proxies are reused. Once the job has succeeded, "
        "each shot's `proxy_url` and `filmstrip_url` point at its latest proxy."
    ),
    responses=problem_responses(
        400,
        404,
        409,
        502,
        503,
        descriptions={
            409: "The cut is not ingested (`cut_not_ingested`), or the Idempotency-Key was used for another "
            "request (`idempotency_conflict`).",
            422: "Invalid options; `errors[].field` names each one (`validation_error`).",
        },
    ),
)
def render_proxies(
    cut_id: CutId,
    response: Response,
    session: SessionDep,
    gateway: GatewayDep,
    body: ProxyConfig | None = None,
    idempotency_key: IdempotencyKey = None,
) -> Job:
    body = body or ProxyConfig()
    reject_problems(body)
    cut = get_cut(session, cut_id)
    return start_job(
        session,
        gateway,
        response,
        kind=job_kinds.proxies.name,
        subject_id=cut.id,
        request=body,
        idempotency_key=idempotency_key,
    )
