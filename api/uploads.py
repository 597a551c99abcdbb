"""Getting an uploaded timeline onto local disk, within the size limit, under a safe name."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import BinaryIO

from api.middleware import too_large_detail
from api.problems import ApiProblem, field_problem

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CHUNK = 1 << 20


def safe_filename(filename: str | None) -> str:
    """The upload's own file name without any folder part; its extension picks the OTIO adapter."""
    name = Path((filename or "").replace("\\", "/")).name
    name = _CONTROL.sub("", name).strip()
    if not name or name in (".", ".."):
        raise field_problem("file", "the upload needs a file name with an extension (.otio, .edl, .xml, ...)")
    if len(name) > 200:  # the column holds 255; the extension must survive the cut
        suffix = Path(name).suffix[:20]
        name = Path(name).stem[: 200 - len(suffix)] + suffix
    return name


def copy_limited(source: BinaryIO, target: Path, limit: int) -> int:
    """Copy at most `limit` bytes; 413 (and no file left behind) if the source holds more."""
    written = 0
    with target.open("wb") as out:
        while chunk := source.read(CHUNK):
            written += len(chunk)
            if written > limit:
                out.close()
                target.unlink(missing_ok=True)
                raise ApiProblem(413, "payload_too_large", too_large_detail(limit))
            out.write(chunk)
    return written


def discard(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
