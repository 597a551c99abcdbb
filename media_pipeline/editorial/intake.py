"""Reading a file someone dropped into a watch folder, as an untrusted file.

Only regular files are read, opened without following a link in the last path component
(`O_NOFOLLOW`) and without blocking on a FIFO or device (`O_NONBLOCK`), then checked again on
the open descriptor (`fstat`), so a file swapped for a link between the folder scan and the
open is still refused. The copy is bounded in bytes and in time: a file that grows past the
limit or a share that stalls is refused with a sentence instead of hanging the sensor.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from media_pipeline.core.files import atomic_path

CHUNK = 1 << 20
READ_SECONDS = 30.0  # well inside the sensor's evaluation budget


class Refused(ValueError):
    """The file is not read; the message says why, in a sentence a user can act on."""


def kind_of(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "regular file" if stat.S_ISREG(mode) else "special file"


def not_regular(kind: str) -> Refused:
    return Refused(
        f"it is a {kind}, not a regular file; watch folders read regular files only "
        "(copy the timeline itself into the folder, not a link to it)"
    )


def too_large(size: int, limit: int) -> Refused:
    return Refused(
        f"it is {size:,} bytes, over the {limit:,}-byte limit (MEDIA_PIPELINE_MAX_UPLOAD_BYTES); "
        "a timeline is rarely over a few MB: check that the right file was dropped"
    )


@contextlib.contextmanager
def open_regular(path: Path) -> Iterator[tuple[int, os.stat_result]]:
    """A read descriptor on the regular file at `path` and its `fstat`; Refused otherwise.

    Checked on the open descriptor, so a file swapped for a link, FIFO or device after the
    folder scan is still refused; never follows a final link and never blocks on opening.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise not_regular("symbolic link") from None
        raise Refused(f"it could not be opened ({exc.strerror or 'error'}); check its permissions") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise not_regular(kind_of(info.st_mode))
        yield fd, info
    finally:
        os.close(fd)


def copy_untrusted(path: Path, target: Path, *, max_bytes: int, seconds: float = READ_SECONDS) -> int:
    """Copy the regular file at `path` to `target` (atomically); bytes copied. Refused otherwise."""
    with open_regular(path) as (fd, info):
        if info.st_size > max_bytes:
            raise too_large(info.st_size, max_bytes)
        deadline = time.monotonic() + seconds
        written = 0
        with atomic_path(target) as tmp, tmp.open("wb") as out:
            while block := os.read(fd, CHUNK):
                written += len(block)
                if written > max_bytes:  # grew while we read it
                    raise too_large(written, max_bytes)
                if time.monotonic() > deadline:
                    raise Refused(f"reading it took over {seconds:g} s; copy it onto a local disk and drop it again")
                out.write(block)
        return written


def read_small(path: Path, *, max_bytes: int) -> bytes:
    """The whole content of a small regular file (a watch.json), with the same refusals."""
    with open_regular(path) as (fd, info):
        data = os.read(fd, max_bytes + 1)
        if len(data) > max_bytes:
            raise too_large(info.st_size, max_bytes)
        return data
