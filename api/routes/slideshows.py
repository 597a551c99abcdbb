"""Slideshows: scenes, assets and renders; also under the original Render API's paths
(`/v1/projects/{id}/...`), so its clients work unchanged."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Header, Path, Response, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from api.dagster_gateway import DagsterGateway
from api.deps import ArtifactsDep, GatewayDep, SessionDep, SettingsDep
from api.job_service import add_job, commit_new, job_view, launch_or_undo, replay, request_hash
from api.params import IdempotencyKey
from api.problems import ApiProblem, field_problem, problem_responses
from api.routes.artifacts import download
from api.schemas import Job
from api.slideshow_schemas import (
    AssetFile,
    AssetList,
    AssetsStored,
    LegacyJobCreated,
    OutputFile,
    Outputs,
    Render,
    RenderCreated,
    ScenesStored,
    StoredFile,
)
from api.uploads import copy_limited
from media_pipeline.platform.urls import artifact_url
from media_pipeline.resources import ArtifactStore
from media_pipeline.settings import Settings
from media_pipeline.slideshows.assets_store import MANIFEST, AssetRefused, check_upload, store, write_scenes
from media_pipeline.slideshows.config import SlideshowRenderConfig
from media_pipeline.slideshows.job_kinds import SLIDESHOW_RENDER
from media_pipeline.slideshows.partitions import new_render_key, split_render_key
from media_pipeline.slideshows.spec import SLIDESHOW_ID, AssetName, RenderRequest, SceneList

router = APIRouter(tags=["slideshows"])

SlideshowId = Annotated[
    str, Path(pattern=SLIDESHOW_ID, description="Chosen by the client: 1-64 letters, digits, `_` or `-`")
]
Subdir = Annotated[Literal["images", "voiceovers", "music"], Form(description="Which asset folder the files go in")]
KIND = "slideshow_render"
_NAME_CHARS = "letters, digits, spaces and . _ ( ) + -"
_ASSET_NAME: TypeAdapter[str] = TypeAdapter(AssetName)


def slideshow_dir(settings: Settings, slideshow_id: str) -> FilePath:
    return settings.artifact_root / "slideshows" / slideshow_id


# -- scenes -----------------------------------------------------------------------------------


def put_scenes(
    slideshow_id: SlideshowId, body: SceneList, settings: SettingsDep, artifacts: ArtifactsDep
) -> ScenesStored:
    path = write_scenes(slideshow_dir(settings, slideshow_id), body)
    artifacts.publish(path)  # renders may run on another machine
    relative = path.relative_to(settings.artifact_root).as_posix()
    return ScenesStored(slideshow_id=slideshow_id, scenes=len(body.scenes), url=artifact_url(relative))


SCENES_DOC = dict(
    summary="Store the slideshow's scenes",
    description="Validates the structure (422 with `errors[].field` paths such as `scenes.1.images`) and stores "
    "`scenes.json`, replacing the previous one. Whether the named files exist is checked when a render starts, "
    "so scenes may be put before their assets are uploaded.",
    responses=problem_responses(400, 422, 503),
)
router.put("/slideshows/{slideshow_id}/scenes", **SCENES_DOC)(put_scenes)  # type: ignore[arg-type]
router.put("/projects/{slideshow_id}/scenes", **SCENES_DOC, include_in_schema=True)(put_scenes)  # type: ignore[arg-type]


@router.get(
    "/slideshows/{slideshow_id}/scenes",
    response_model=SceneList,
    summary="The slideshow's stored scenes",
    description="What the last PUT stored, in the shape it takes (an editor reads it back to change it).",
    responses=problem_responses(404, 503),
)
def get_scenes(slideshow_id: SlideshowId, artifacts: ArtifactsDep) -> SceneList:
    stored = _read_record(artifacts, f"slideshows/{slideshow_id}/scenes.json")
    if stored is None:
        raise ApiProblem(404, "not_found", f"slideshow {slideshow_id} has no scenes yet; PUT them first")
    return SceneList.model_validate(stored)


# -- assets -----------------------------------------------------------------------------------


def upload_assets(
    slideshow_id: SlideshowId,
    settings: SettingsDep,
    artifacts: ArtifactsDep,
    files: Annotated[list[UploadFile], File(description="One or more files (repeat the field)")],
    subdir: Subdir,
) -> AssetsStored:
    folder = slideshow_dir(settings, slideshow_id)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".incoming-", dir=folder) as tmp:
        checked: list[tuple[str, FilePath]] = []
        for number, upload in enumerate(files):
            name = asset_name(upload.filename)
            path = FilePath(tmp) / f"{number}{FilePath(name).suffix}"
            copy_limited(upload.file, path, settings.max_upload_bytes)
            try:
                check_upload(path, name, subdir, settings.slideshow.max_pixels)
            except AssetRefused as exc:
                raise ApiProblem(422, "unreadable_asset", f"{exc}; nothing from this request was stored") from exc
            checked.append((name, path))
        stored = store(folder, subdir, checked)
    artifacts.publish(*(folder / s.subdir / s.name for s in stored), folder / MANIFEST)
    root = settings.artifact_root
    return AssetsStored(
        slideshow_id=slideshow_id,
        files=[
            StoredFile(
                subdir=s.subdir,
                name=s.name,
                sha256=s.sha256,
                size=s.size,
                stored=s.stored,
                url=artifact_url((folder / s.subdir / s.name).relative_to(root).as_posix()),
            )
            for s in stored
        ],
    )


def asset_name(filename: str | None) -> str:
    name = FilePath((filename or "").replace("\\", "/")).name
    try:
        return _ASSET_NAME.validate_python(name)
    except ValidationError:
        raise field_problem(
            "files", f"the file name {name[:80]!r} is not usable; use 1-200 {_NAME_CHARS}, not starting with a dot"
        ) from None


ASSETS_DOC = dict(
    summary="Upload images, voiceovers or music",
    description="Multipart: repeatable `files` plus `subdir` (`images`, `voiceovers`, `music`). Each file is stored "
    "by its file name under the slideshow, with its sha-256 recorded; the same bytes are never stored twice (a "
    "second name is a hard link). Images and audio are probed first: an unreadable file, an image over the pixel "
    "limit (`MEDIA_PIPELINE_SLIDESHOW_MAX_PIXELS`) or a request over the size limit is refused with a sentence, "
    "and nothing from that request is stored.",
    responses=problem_responses(400, 413, 422, 503),
)
router.post("/slideshows/{slideshow_id}/assets", **ASSETS_DOC)(upload_assets)  # type: ignore[arg-type]
router.post("/projects/{slideshow_id}/assets", **ASSETS_DOC)(upload_assets)  # type: ignore[arg-type]


@router.get(
    "/slideshows/{slideshow_id}/assets",
    response_model=AssetList,
    summary="The slideshow's uploaded files",
    description="Every file uploaded so far (from the asset manifest), by folder then name; none yet is an empty "
    "list, as a slideshow exists once its id is used.",
    responses=problem_responses(503),
)
def list_assets(slideshow_id: SlideshowId, artifacts: ArtifactsDep) -> AssetList:
    manifest = _read_record(artifacts, f"slideshows/{slideshow_id}/{MANIFEST}") or {}
    files = []
    for key, entry in sorted(manifest.items()):
        subdir, _, name = key.partition("/")
        url = artifact_url(f"slideshows/{slideshow_id}/{key}")
        files.append(AssetFile(subdir=subdir, name=name, sha256=entry["sha256"], size=entry["size"], url=url))
    return AssetList(slideshow_id=slideshow_id, files=files)


# -- renders ----------------------------------------------------------------------------------


def render_config(settings: Settings, body: RenderRequest) -> SlideshowRenderConfig:
    """The run config: the request's options with the server's defaults for the rest."""
    options, defaults = body.render_options, settings.slideshow
    tts = options.tts
    return SlideshowRenderConfig(
        output_name=body.output_name,
        fps=str(options.fps if options.fps is not None else defaults.fps),
        min_shot=options.min_shot if options.min_shot is not None else defaults.min_shot,
        max_shot=options.max_shot if options.max_shot is not None else defaults.max_shot,
        xfade=options.xfade if options.xfade is not None else defaults.xfade,
        crf=options.crf if options.crf is not None else defaults.crf,
        preset=options.preset or defaults.preset,
        resolution=options.resolution or defaults.resolution,
        tts_engine=tts.engine if tts else "",
        tts_voice=(tts.voice or "") if tts else "",
        music=options.music or "",
        ducking=options.ducking,
        loudness=options.loudness if options.loudness is not None else defaults.loudness,
        max_pixels=defaults.max_pixels,
    )


def start_render(
    session: Session,
    gateway: DagsterGateway,
    response: Response,
    settings: Settings,
    slideshow_id: str,
    body: RenderRequest,
    idempotency_key: str | None,
) -> tuple[Job, str]:
    """Create the job and launch its run on a new render partition; (job, partition key).

    The steps of `job_service.start_job`, except that the subject (a new render partition) is made
    here and the answer also names the render; the run config comes from the registered job kind.
    """
    if not (slideshow_dir(settings, slideshow_id) / "scenes.json").is_file():
        raise ApiProblem(409, "no_scenes", f"slideshow {slideshow_id} has no scenes yet; PUT its scenes first")
    config = render_config(settings, body)
    digest = request_hash({"route": "slideshow_render", "slideshow": slideshow_id, "body": config.model_dump()})
    earlier = replay(session, idempotency_key, digest)
    if earlier is None:
        key = new_render_key(slideshow_id)
        params = {"slideshow_id": slideshow_id, "partition_key": key, **config.model_dump()}
        job = add_job(
            session, SLIDESHOW_RENDER, subject_id=key, params=params, idempotency_key=idempotency_key, digest=digest
        )
        earlier = commit_new(session, idempotency_key, digest)
    if earlier is not None:
        response.headers["Idempotent-Replayed"] = "true"
        response.headers["Location"] = f"/v1/jobs/{earlier.id}"
        return job_view(session, gateway, earlier), str(earlier.params["partition_key"])
    launch_or_undo(session, gateway, job, key, SLIDESHOW_RENDER.config_for(config))
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return job_view(session, gateway, job), key


RENDER_RESPONSES = problem_responses(
    400,
    409, 422, 502, 503,
    descriptions={409: "No scenes were put yet (`no_scenes`), or the Idempotency-Key was used for another request."},
)  # fmt: skip


@router.post(
    "/slideshows/{slideshow_id}/renders",
    status_code=202,
    response_model=RenderCreated,
    summary="Render the slideshow",
    description="Launches `render_slideshow` on a new `slideshow_renders` partition. Options left out take the "
    "server's defaults (`MEDIA_PIPELINE_SLIDESHOW_*`). Answers 202 with the render and its job; follow the job at "
    "`/v1/jobs/{id}`. Files that do not exist, an engine that is not installed, impossible timing: the job fails "
    "in VALIDATE with a sentence, and nothing is written to `output/`.",
    responses=RENDER_RESPONSES,
)
def create_render(
    slideshow_id: SlideshowId,
    response: Response,
    session: SessionDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    body: RenderRequest | None = None,
    idempotency_key: IdempotencyKey = None,
) -> RenderCreated:
    body = body or RenderRequest()
    job, key = start_render(session, gateway, response, settings, slideshow_id, body, idempotency_key)
    _, render_id = split_render_key(key)
    output = f"slideshows/{slideshow_id}/output/{job.params.get('output_name', body.output_name)}"
    return RenderCreated(
        render=Render(id=render_id, slideshow_id=slideshow_id, partition_key=key, output_url=artifact_url(output)),
        job=job,
    )


@router.post(
    "/projects/{slideshow_id}/render",
    status_code=202,
    response_model=LegacyJobCreated,
    summary="Render (the original Render API's path)",
    description='The same as `POST /v1/slideshows/{id}/renders`, answering `{"jobId": ...}`.',
    responses=RENDER_RESPONSES,
)
def create_render_legacy(
    slideshow_id: SlideshowId,
    response: Response,
    session: SessionDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    body: RenderRequest | None = None,
    idempotency_key: IdempotencyKey = None,
) -> LegacyJobCreated:
    job, _ = start_render(session, gateway, response, settings, slideshow_id, body or RenderRequest(), idempotency_key)
    return LegacyJobCreated(jobId=job.id)


# -- outputs ----------------------------------------------------------------------------------


def _read_record(artifacts: ArtifactStore, key: str) -> dict[str, Any] | None:
    # From the store: the render that wrote it may have run on another machine.
    try:
        with artifacts.open(key) as handle:
            return dict(json.load(handle))
    except (OSError, ValueError):
        return None  # not there (yet); a store that cannot be reached is a 503 (api/problems.py)


@router.get(
    "/projects/{slideshow_id}/outputs",
    response_model=Outputs,
    summary="The files under the slideshow's output folder",
    responses=problem_responses(404, 503),
)
def list_outputs(slideshow_id: SlideshowId, artifacts: ArtifactsDep) -> Outputs:
    folder = f"slideshows/{slideshow_id}/"
    if not artifacts.exists(folder + "scenes.json") and not artifacts.list_objects(folder):
        raise ApiProblem(404, "not_found", f"there is no slideshow with id {slideshow_id}")
    prefix = folder + "output/"
    outputs = [o for o in artifacts.list_objects(prefix) if "/" not in o.key.removeprefix(prefix)]
    return Outputs(
        slideshow_id=slideshow_id,
        files=[OutputFile(name=o.key.rsplit("/", 1)[-1], size=o.size, url=artifact_url(o.key)) for o in outputs],
    )


router.get(
    "/slideshows/{slideshow_id}/outputs",
    response_model=Outputs,
    summary="The files under output/",
    responses=problem_responses(404, 503),
)(list_outputs)


@router.get(
    "/projects/{slideshow_id}/outputs/video",
    response_class=StreamingResponse,
    summary="The last render's video (Range supported)",
    responses=problem_responses(404, 416, 503),
)
def last_video(
    slideshow_id: SlideshowId,
    artifacts: ArtifactsDep,
    range_header: Annotated[str | None, Header(alias="Range", max_length=200)] = None,
    if_range: Annotated[str | None, Header(alias="If-Range", max_length=200)] = None,
) -> StreamingResponse:
    latest = _read_record(artifacts, f"slideshows/{slideshow_id}/renders/latest.json")
    if latest is None:
        raise ApiProblem(404, "not_found", f"slideshow {slideshow_id} has no finished render yet; POST a render first")
    relative = f"slideshows/{slideshow_id}/output/{latest['video']}"
    return download(path=relative, artifacts=artifacts, range_header=range_header, if_range=if_range)


@router.get(
    "/slideshows/{slideshow_id}/renders/{render_id}",
    summary="What a finished render did",
    description="The frame plan, the measured frames, durations, loudness and ducking depth, the checks, which "
    "scenes were reused from earlier renders and the warnings (as `renders/<render>.json`). 404 until the "
    "render has succeeded.",
    responses=problem_responses(404, 503),
)
def render_summary(
    slideshow_id: SlideshowId,
    render_id: Annotated[str, Path(pattern=r"^[0-9a-f]{12}$", description="The render's id")],
    artifacts: ArtifactsDep,
) -> dict[str, Any]:
    record = _read_record(artifacts, f"slideshows/{slideshow_id}/renders/{render_id}.json")
    if record is None:
        raise ApiProblem(
            404, "not_found", f"render {render_id} of slideshow {slideshow_id} has not finished (or does not exist)"
        )
    return record
