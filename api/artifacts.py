"""Serving stored artifacts: path confinement and HTTP byte ranges (RFC 9110 §14)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from api.problems import ApiProblem
from media_pipeline.core.storage import confined_file, guess_content_type


def missing(requested: str) -> ApiProblem:
    # The same answer for "does not exist" and "not allowed": no probing outside the root.
    return ApiProblem(404, "not_found", f"there is no artifact at {requested!r}")


def resolve_artifact(root: Path, requested: str) -> Path:
    """The file `requested` names under `root`, or a 404 problem.

    Refused: absolute paths, `.`/`..` segments, backslashes, NUL, hidden names (half-written
    `.partial` files start with a dot) and anything that resolves outside the root through a
    symlink.
    """
    found = confined_file(root, requested)
    if found is None:
        raise missing(requested)
    return found


def content_type(path: Path) -> str:
    return guess_content_type(path.name)


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
