"""Library items: what content is (probed, never guessed from a name), the limits, adding it once.

An item is identified by its sha-256: adding content the library already holds returns the
existing item (`duplicate`), and its bytes are not stored a second time.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from media_pipeline.core.errors import MediaError
from media_pipeline.core.probe import MediaInfo, probe
from media_pipeline.db.models import MediaItem
from media_pipeline.library.store import Incoming, LibraryStore

# The demuxer that read a still, and the content type it is served with.
IMAGE_TYPES = {
    "png_pipe": "image/png",
    "jpeg_pipe": "image/jpeg",
    "webp_pipe": "image/webp",
    "tiff_pipe": "image/tiff",
    "bmp_pipe": "image/bmp",
    "gif": "image/gif",
    "exr_pipe": "image/x-exr",
    "dpx_pipe": "image/x-dpx",
    "j2k_pipe": "image/jp2",
}
VIDEO_TYPES = {
    "mov": "video/quicktime",
    "mp4": "video/mp4",
    "matroska": "video/x-matroska",
    "webm": "video/webm",
    "gif": "image/gif",  # an animated GIF is a video of the library (it has frames and a rate)
}


@dataclass(frozen=True)
class Limits:
    max_pixels: int
    max_duration: int  # seconds


class Refused(Exception):
    """Content the library does not take; `str()` is the sentence, `status` 413 or 422."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Probed:
    type: str  # image | video
    content_type: str
    container: str
    width: int
    height: int
    codec: str
    rate: str | None
    frame_count: int | None
    duration: str | None
    has_audio: bool


def _video_content_type(info: MediaInfo, filename: str) -> str:
    names = info.format_name.split(",")
    if "matroska" in names:
        # One demuxer reads both: a VP8/VP9/AV1 file is served as WebM.
        return "video/webm" if info.codec in ("vp8", "vp9", "av1", "libdav1d") else "video/x-matroska"
    if "mov" in names:
        guessed, _ = mimetypes.guess_type(filename)
        return "video/mp4" if guessed == "video/mp4" or Path(filename).suffix.lower() == ".mp4" else "video/quicktime"
    return VIDEO_TYPES.get(names[0], "application/octet-stream")


def examine(path: Path, filename: str, limits: Limits) -> Probed:
    """What the content at `path` is, or Refused with the reason (too large, too long, not media)."""
    try:
        info = probe(path, max_pixels=limits.max_pixels)
    except MediaError as exc:
        message = str(exc).replace(path.name, filename or "the upload")
        if "above the limit of" in message:
            raise Refused(
                f"{filename or 'the upload'}: the picture is larger than the library accepts "
                f"({limits.max_pixels} pixels, MEDIA_PIPELINE_LIBRARY_MAX_PIXELS); scale it down first"
            ) from None
        raise Refused(f"{message}. The library takes images (PNG, JPEG, WebP, TIFF, ...) and videos") from None
    if info.video is None:
        raise Refused("the upload holds audio only; the library takes images and videos")
    video = info.video
    if info.is_image:
        return Probed(
            "image",
            IMAGE_TYPES.get(info.format_name, "application/octet-stream"),
            info.format_name,
            video.width,
            video.height,
            video.codec,
            None,
            None,
            None,
            False,
        )
    duration = Fraction(video.frames, 1) / video.rate if video.frames else info.duration
    if duration > limits.max_duration:
        raise Refused(
            f"the video lasts {float(duration):.1f} s, longer than the library accepts "
            f"({limits.max_duration} s, MEDIA_PIPELINE_LIBRARY_MAX_DURATION); trim it first"
        )
    return Probed(
        "video",
        _video_content_type(info, filename),
        info.format_name,
        video.width,
        video.height,
        video.codec,
        str(video.rate),  # exact: 24, 30000/1001
        video.frames,
        str(duration),  # exact seconds: 2, 1001/480
        info.has_audio,
    )


def by_sha256(session: Session, sha256: str) -> MediaItem | None:
    return session.scalar(sa.select(MediaItem).where(MediaItem.sha256 == sha256))


def add(
    session: Session, store: LibraryStore, incoming: Incoming, filename: str, limits: Limits
) -> tuple[MediaItem, bool]:
    """The item for received bytes and whether it was already in the library.

    A duplicate is answered before the bytes are probed or moved: the partial file is dropped.
    New content is probed (Refused: nothing is kept), moved under its key, and recorded; a
    concurrent upload of the same content that committed first wins, and this one is its duplicate.
    """
    sha256 = incoming.finish()
    existing = by_sha256(session, sha256)
    if existing is not None:
        incoming.discard()
        return existing, True
    probed = examine(incoming.path, filename, limits)
    size = incoming.size
    key = store.commit(incoming)
    return record(session, sha256, size, key, filename, probed)


def record(session: Session, sha256: str, size: int, key: str, filename: str, probed: Probed) -> tuple[MediaItem, bool]:
    item = MediaItem(
        sha256=sha256,
        size=size,
        type=probed.type,
        filename=filename,
        content_type=probed.content_type,
        container=probed.container,
        storage_key=key,
        width=probed.width,
        height=probed.height,
        codec=probed.codec,
        rate=probed.rate,
        frame_count=probed.frame_count,
        duration=probed.duration,
        has_audio=probed.has_audio,
    )
    session.add(item)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        existing = by_sha256(session, sha256)
        if existing is None:
            raise
        return existing, True
    return item, False


def add_file(
    session: Session, store: LibraryStore, path: Path, filename: str, limits: Limits
) -> tuple[MediaItem, bool]:
    """An edit's output (a local file) as a library item: stored once, like an upload."""
    probed = examine(path, filename, limits)
    sha256, size, key = store.put_file(path)
    existing = by_sha256(session, sha256)
    if existing is not None:
        return existing, True
    return record(session, sha256, size, key, filename, probed)
