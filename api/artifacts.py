"""Serving files from the artifact root: path confinement and HTTP byte ranges (RFC 9110 §14)."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from api.problems import ApiProblem

# Types mimetypes does not know, or guesses differently on different systems.
CONTENT_TYPES = {
    ".otio": "application/json",
    ".otioz": "application/zip",
    ".otiod": "application/octet-stream",
    ".edl": "text/plain; charset=utf-8",
    ".xml": "application/xml",
    ".fcpxml": "application/xml",
    ".aaf": "application/octet-stream",
    ".json": "application/json",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".mov": "video/quicktime",
    ".mp4": "video/mp4",
    ".txt": "text/plain; charset=utf-8",
}
CHUNK = 256 * 1024


def missing(requested: str) -> ApiProblem:
    # The same answer for "does not exist" and "not allowed": no probing outside the root.
    return ApiProblem(404, "not_found", f"there is no artifact at {requested!r}")


def resolve_artifact(root: Path, requested: str) -> Path:
    """The file `requested` names under `root`, or a 404 problem.

    Refused: absolute paths, `.`/`..` segments, backslashes, NUL, hidden names (half-written
    `.partial` files start with a dot) and anything that resolves outside the root through a
    symlink.
    """
    if not requested or "\x00" in requested or "\\" in requested or requested.startswith("/"):
        raise missing(requested)
    parts = requested.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        raise missing(requested)
    try:
        base = root.resolve(strict=True)
        candidate = base.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        raise missing(requested) from None
    if not candidate.is_relative_to(base) or not candidate.is_file():
        raise missing(requested)
    return candidate


def content_type(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in CONTENT_TYPES:
        return CONTENT_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


class RangeNotSatisfiable(Exception):
    pass


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive, as in Content-Range

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single byte range asked for; None to send the whole file.

    A header that is malformed, not in bytes, or lists several ranges is ignored (the server
    MAY ignore Range, RFC 9110 §14.2); a well-formed range wholly past the end raises
    RangeNotSatisfiable (416).
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or first == "") or not (last.isdigit() or last == ""):
        return None
    if first == "":
        if last == "":
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    if last and int(last) < start:
        return None  # "5-3" is not a range at all
    if start >= size:
        raise RangeNotSatisfiable
    end = int(last) if last else size - 1
    return ByteRange(start, min(end, size - 1))


def iter_file(path: Path, start: int, length: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(start)
        remaining = length
        while remaining > 0:
            chunk = handle.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
