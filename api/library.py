"""The media library over HTTP: receiving uploads (streamed, hashed in the same read), item
views, the edit decision (inline under the pixel budget, else a job)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import sqlalchemy as sa
from pydantic import BaseModel, ValidationError
from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy.orm import Session
from starlette.requests import ClientDisconnect, Request

from api.job_service import as_utc
from api.library_schemas import Lineage, Media, MediaUpload
from api.problems import ApiProblem, field_problem
from api.uploads import safe_filename
from media_pipeline.db.models import MediaDerivative, MediaItem
from media_pipeline.library.media import Limits
from media_pipeline.library.recipes import OpRefused
from media_pipeline.library.store import Incoming, LibraryStore, TooLarge
from media_pipeline.resources import ArtifactStore
from media_pipeline.settings import Settings

ASSET_KEY = dg.AssetKey("library_derivatives")
logger = logging.getLogger("api.library")


def store_for(artifacts: ArtifactStore) -> LibraryStore:
    # The app's one ArtifactStore: building one from the settings validates a Dagster resource
    # config (about 10 ms), which a cached edit answered in a few milliseconds must not pay.
    return LibraryStore(artifacts)


def limits_for(settings: Settings) -> Limits:
    return Limits(settings.library_max_pixels, settings.library_max_duration)


def too_large(limit: int) -> ApiProblem:
    return ApiProblem(
        413,
        "payload_too_large",
        f"the upload is larger than the library accepts ({limit} bytes, MEDIA_PIPELINE_LIBRARY_MAX_BYTES); "
        "upload a smaller file or ask the operator to raise the limit",
    )


def media_view(
    session: Session, item: MediaItem, *, lineage: bool = True, earliest: MediaDerivative | None = None
) -> Media:
    """The item's body; its lineage is its earliest derivative (`earliest` when the caller has it)."""
    derived = None
    if lineage:
        row = earliest or session.scalar(
            sa.select(MediaDerivative).where(MediaDerivative.media_id == item.id).order_by(MediaDerivative.id).limit(1)
        )
        if row is not None:
            derived = Lineage(source_id=row.source_id, inputs=row.inputs, recipe=row.recipe, run_id=row.run_id)
    return Media(
        id=item.id,
        sha256=item.sha256,
        size=item.size,
        type=item.type,  # type: ignore[arg-type]
        filename=item.filename,
        content_type=item.content_type,
        container=item.container,
        width=item.width,
        height=item.height,
        codec=item.codec,
        rate=item.rate,
        frame_count=item.frame_count,
        duration=item.duration,
        duration_seconds=float(Fraction(item.duration)) if item.duration else None,
        has_audio=item.has_audio,
        created_at=as_utc(item.created_at),
        url=f"/v1/media/{item.id}",
        content_url=f"/v1/media/{item.id}/content",
        derived_from=derived,
    )


def upload_view(session: Session, item: MediaItem, duplicate: bool) -> MediaUpload:
    return MediaUpload(**media_view(session, item).model_dump(), duplicate=duplicate)


# -- receiving --------------------------------------------------------------------------------


async def _chunks(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        async for chunk in stream:
            if chunk:
                yield chunk
    except ClientDisconnect:
        raise ApiProblem(400, "bad_request", "the client went away before the upload was complete") from None


async def receive_raw(stream: AsyncIterator[bytes], incoming: Incoming) -> None:
    async for chunk in _chunks(stream):
        await incoming.feed(chunk)
    await incoming.flush()


async def receive_multipart(stream: AsyncIterator[bytes], content_type: str, incoming: Incoming) -> str:
    """Stream the `file` part of a multipart body into `incoming`; the part's file name.

    The body is parsed as it arrives (python-multipart's push parser), so the file's bytes are
    written and hashed once, never spooled to a temporary file first.
    """
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise ApiProblem(400, "bad_request", "the multipart body has no boundary; send it as a form upload")
    state: dict[str, object] = {
        "headers": {},
        "field": b"",
        "value": b"",
        "target": None,
        "filename": None,
        "seen": False,
    }

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] = state["field"] + data[start:end]  # type: ignore[operator]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] = state["value"] + data[start:end]  # type: ignore[operator]

    def on_header_end() -> None:
        headers = state["headers"]
        assert isinstance(headers, dict)
        headers[bytes(state["field"]).lower()] = bytes(state["value"])  # type: ignore[arg-type]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        headers = state["headers"]
        assert isinstance(headers, dict)
        _, options = parse_options_header(headers.get(b"content-disposition", b""))
        if options.get(b"name") == b"file" and not state["seen"]:
            state["target"], state["seen"] = incoming, True
            raw = options.get(b"filename", b"")
            state["filename"] = raw.decode("utf-8", "replace")
        else:
            state["target"] = None

    received: list[bytes] = []  # the file's bytes of the chunk being parsed, fed after it

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["target"] is not None:
            received.append(data[start:end])

    def on_part_end() -> None:
        state["headers"], state["target"] = {}, None

    parser = MultipartParser(
        boundary,
        {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        async for chunk in _chunks(stream):
            parser.write(chunk)
            for piece in received:
                await incoming.feed(piece)
            received.clear()
        parser.finalize()
        for piece in received:
            await incoming.feed(piece)
        await incoming.flush()
    except TooLarge:
        raise
    except Exception as exc:  # python-multipart raises its own errors on malformed bodies
        if isinstance(exc, ApiProblem):
            raise
        raise ApiProblem(
            400, "bad_request", "the multipart body could not be parsed; send the file as a form field named `file`"
        ) from None
    if not state["seen"]:
        raise field_problem("file", "the form has no `file` field; send the media as `-F file=@photo.jpg`")
    return str(state["filename"] or "")


async def receive(
    stream: AsyncIterator[bytes], content_type: str, filename: str | None, store: LibraryStore, limit: int
) -> tuple[Incoming, str]:
    """The upload received into the store's incoming area (hashed as written) and its safe name."""
    incoming = store.receive(limit)
    try:
        if content_type.lower().startswith("multipart/form-data"):
            sent_name = await receive_multipart(stream, content_type, incoming)
            name = _name(filename or sent_name)
        else:
            if not filename:
                raise field_problem("filename", "a raw upload needs ?filename=photo.jpg", location="query")
            name = _name(filename)
            await receive_raw(stream, incoming)
    except TooLarge as exc:
        incoming.discard()
        raise too_large(exc.limit) from None
    except BaseException:
        incoming.discard()
        raise
    if incoming.size == 0:
        incoming.discard()
        raise field_problem("file", "the upload is empty")
    return incoming, name


def _name(filename: str) -> str:
    try:
        return safe_filename(filename)
    except ApiProblem:
        return "upload"  # the type comes from the content; a name is only a label


async def json_object(request: Request) -> dict[str, Any] | None:
    """The body as a JSON object; None when there is none; 400 when it is not JSON."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiProblem(400, "bad_request", "the body is not JSON; send a JSON object") from None
    if not isinstance(body, dict):
        raise field_problem("body", "send a JSON object")
    return body


M = TypeVar("M", bound=BaseModel)

# The op names pydantic puts in an error's location (the discriminated union's tag): not fields.
_TAGS = {"crop", "resize", "opacity", "color", "text", "format", "trim"}


def validated(model: type[M], body: dict[str, Any], default: str) -> M:
    """`body` as a recipe or workflow `model`; else a 422 naming its first offending field
    (`ops.0.width`; `default` when the error has no field of its own)."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise _recipe_problem(exc, default) from None


def _recipe_problem(exc: ValidationError, default: str) -> ApiProblem:
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"] if part not in _TAGS) or default
    message = error["msg"].removeprefix("Value error, ")
    refused = error.get("ctx", {}).get("error")
    if isinstance(refused, OpRefused):  # raised by a validator, with the op's own field
        location, message = refused.field, str(refused)
    return field_problem(location, message)


def report_inline(gateway: object, description: str, metadata: dict[str, object]) -> None:
    """Record an inline edit as a materialization of the derivatives asset, without a run.

    Dagster being down loses only this view of the lineage (the database row has it): logged.
    """
    try:
        instance = gateway.instance  # type: ignore[attr-defined]
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=ASSET_KEY, description=description, metadata=metadata)  # type: ignore[arg-type]
        )
    except Exception:
        logger.warning("the inline edit (%s) could not be recorded in Dagster", description, exc_info=True)


def content_path(store: LibraryStore, item: MediaItem) -> Path:
    return store.local_path(item.storage_key)
