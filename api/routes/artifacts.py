"""Downloading produced files, with byte ranges."""

from __future__ import annotations

import pathlib
from email.utils import formatdate
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Header, Path
from fastapi.responses import StreamingResponse

from api.artifacts import RangeNotSatisfiable, content_type, iter_file, parse_range, resolve_artifact
from api.deps import SettingsDep
from api.problems import ApiProblem, problem_responses

router = APIRouter(prefix="/artifacts", tags=["artifacts"])

_BINARY = {"schema": {"type": "string", "format": "binary"}}


@router.get(
    "/{path:path}",
    response_class=StreamingResponse,
    summary="Download a produced file (thumbnails, contact sheets, stored timelines)",
    description="Paths are relative to the artifact root, as in the `url`s jobs, shots and cuts hand out. "
    "Supports a single `Range: bytes=...` (206 with `Content-Range`, 416 when past the end) and `If-Range`.",
    responses={
        200: {"description": "The whole file", "content": {"*/*": _BINARY}},
        206: {
            "description": "The requested byte range",
            "content": {"*/*": _BINARY},
            "headers": {"Content-Range": {"schema": {"type": "string"}, "description": "bytes start-end/size"}},
        },
        **problem_responses(404, 416),
    },
)
def download(
    path: Annotated[str, Path(description="File path under the artifact root")],
    settings: SettingsDep,
    range_header: Annotated[str | None, Header(alias="Range", max_length=200)] = None,
    if_range: Annotated[str | None, Header(alias="If-Range", max_length=200)] = None,
) -> StreamingResponse:
    file = resolve_artifact(settings.artifact_root, path)
    return file_response(file, range_header, if_range, content_type(file), file.name)


def file_response(
    file: pathlib.Path, range_header: str | None, if_range: str | None, media_type: str, filename: str
) -> StreamingResponse:
    """The file, whole or the single byte range asked for (206), with validators for If-Range."""
    stat = file.stat()
    size = stat.st_size
    etag = f'"{stat.st_mtime_ns:x}-{size:x}"'
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Last-Modified": formatdate(stat.st_mtime, usegmt=True),
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(filename)}",
    }
    # A changed file makes a client's saved partial copy useless: send it whole (RFC 9110 §13.1.5).
    wanted = range_header if if_range is None or if_range.strip() == etag else None
    try:
        byte_range = parse_range(wanted, size)
    except RangeNotSatisfiable:
        raise ApiProblem(
            416,
            "range_not_satisfiable",
            f"the requested range starts at or past the end of the file, which has {size} bytes",
            headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
        ) from None
    if byte_range is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(iter_file(file, 0, size), media_type=media_type, headers=headers)
    headers["Content-Length"] = str(byte_range.length)
    headers["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{size}"
    return StreamingResponse(
        iter_file(file, byte_range.start, byte_range.length), status_code=206, media_type=media_type, headers=headers
    )
