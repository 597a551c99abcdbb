"""Downloading produced files, with byte ranges, from whichever storage backend keeps them."""

from __future__ import annotations

from email.utils import formatdate
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Header, Path
from fastapi.responses import StreamingResponse

from api.artifacts import RangeNotSatisfiable, missing, parse_range
from api.deps import ArtifactsDep
from api.problems import ApiProblem, problem_responses
from media_pipeline.core.storage import InvalidKey, StorageError, check_key
from media_pipeline.resources import ArtifactStore

router = APIRouter(prefix="/artifacts", tags=["artifacts"])

_BINARY = {"schema": {"type": "string", "format": "binary"}}


def storage_unavailable(exc: StorageError) -> ApiProblem:
    return ApiProblem(503, "storage_unavailable", str(exc))


@router.get(
    "/{path:path}",
    response_class=StreamingResponse,
    summary="Download a produced file (thumbnails, contact sheets, stored timelines)",
    description="Paths are relative to the artifact root, as in the `url`s jobs, shots and cuts hand out, "
    "and the same on both storage backends (local folder, S3). Supports a single `Range: bytes=...` "
    "(206 with `Content-Range`, 416 when past the end) and `If-Range`; with S3 only the range is read "
    "from the bucket.",
    responses={
        200: {"description": "The whole file", "content": {"*/*": _BINARY}},
        206: {
            "description": "The requested byte range",
            "content": {"*/*": _BINARY},
            "headers": {"Content-Range": {"schema": {"type": "string"}, "description": "bytes start-end/size"}},
        },
        **problem_responses(
            404, 416, 503, descriptions={503: "The storage backend cannot be reached (`storage_unavailable`)."}
        ),
    },
)
def download(
    path: Annotated[str, Path(description="File path under the artifact root")],
    artifacts: ArtifactsDep,
    range_header: Annotated[str | None, Header(alias="Range", max_length=200)] = None,
    if_range: Annotated[str | None, Header(alias="If-Range", max_length=200)] = None,
) -> StreamingResponse:
    return stored_response(artifacts, path, range_header, if_range)


def stored_response(
    artifacts: ArtifactStore,
    path: str,
    range_header: str | None,
    if_range: str | None,
    *,
    media_type: str | None = None,
    filename: str | None = None,
) -> StreamingResponse:
    """The stored object at `path`, whole or the single byte range asked for (206), on either backend."""
    try:
        stored = artifacts.stat(check_key(path))
    except InvalidKey:
        raise missing(path) from None
    except StorageError as exc:
        raise storage_unavailable(exc) from None
    if stored is None:
        raise missing(path)
    size = stored.size
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": stored.etag,
        "Last-Modified": formatdate(stored.mtime, usegmt=True),
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(filename or path.rsplit('/', 1)[-1])}",
    }
    # A changed file makes a client's saved partial copy useless: send it whole (RFC 9110 §13.1.5).
    wanted = range_header if if_range is None or if_range.strip() == stored.etag else None
    try:
        byte_range = parse_range(wanted, size)
    except RangeNotSatisfiable:
        raise ApiProblem(
            416,
            "range_not_satisfiable",
            f"the requested range starts at or past the end of the file, which has {size} bytes",
            headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
        ) from None
    start, length = (0, size) if byte_range is None else (byte_range.start, byte_range.length)
    try:
        body = artifacts.iter_bytes(path, start, length)
    except FileNotFoundError:
        raise missing(path) from None  # deleted between the stat and the read
    except StorageError as exc:
        raise storage_unavailable(exc) from None
    headers["Content-Length"] = str(length)
    if byte_range is None:
        return StreamingResponse(body, media_type=media_type or stored.content_type, headers=headers)
    headers["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{size}"
    return StreamingResponse(body, status_code=206, media_type=media_type or stored.content_type, headers=headers)
