"""Finding each shot's media on this machine and the shot's first frame inside it.

The frame rule: a shot's first frame in its media is the clip's source start minus the media's
start, where the media's start is the reference's `available_range` start, or, when the timeline
records none, the start timecode embedded in the file, or else zero. All of it is exact rational
time (23.976 is 24000/1001), converted to a whole frame at the media's own rate only at the end.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import unquote, urlparse

import opentimelineio as otio

from media_pipeline.core.errors import MediaError
from media_pipeline.core.probe import MediaInfo, probe
from media_pipeline.core.rates import exact_rate
from media_pipeline.core.redact import without_paths
from media_pipeline.db.models import MediaStatus
from media_pipeline.editorial.shots import ClipShot, seconds, to_frames

IMAGE_SUFFIXES = {".exr", ".dpx", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".tga", ".bmp", ".webp"}
MEDIA_SUFFIXES = IMAGE_SUFFIXES | {".mov", ".mp4", ".m4v", ".mxf", ".avi", ".mkv", ".webm", ".mpg", ".mts", ".r3d"}
_WINDOWS_PATH = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\)")

MAX_REQUESTED_ROOTS = 16
# Relinking walks the roots once per process; a root holding more files than this is indexed
# only this far (a note says so), so a huge or hostile tree costs bounded time and memory.
MAX_INDEXED_FILES = 200_000
INDEX_TTL_SECONDS = 60.0


@dataclass
class ResolvedMedia:
    status: str
    kind: str | None = None  # movie | sequence | still | generator
    path: str | None = None  # for sequences, a printf pattern ffmpeg reads: name.%04d.exr
    url: str | None = None
    frame: int | None = None  # decode index (movie) or file number (sequence) of the first frame
    rate: Fraction | None = None
    frame_count: int | None = None
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def url_to_path(url: str) -> str:
    """A media URL or path as recorded, as a path string (possibly another machine's)."""
    if url.startswith("file:"):
        path = unquote(urlparse(url).path)
        if re.match(r"^/[A-Za-z]:[\\/]", path):  # file://localhost/D%3a/media -> D:/media
            path = path[1:]
        return path
    return url


def file_name(path: str) -> str:
    return PureWindowsPath(path).name if _WINDOWS_PATH.match(path) else PurePosixPath(path).name


class MediaRootError(ValueError):
    """A requested media root is refused; the message says why and what is accepted."""


def real(path: str | Path) -> Path:
    """The path with every link and `..` resolved, whether or not it exists."""
    return Path(os.path.realpath(path))


def inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path.is_relative_to(root) for root in roots)


def confine_roots(requested: Iterable[str], allowed: Sequence[Path]) -> list[Path]:
    """A request's or watch.json's media roots: each must lie inside an allowed root (after
    links and `..` are resolved), may not be `/`, duplicates are dropped, at most 16 remain."""
    allowed = [real(root) for root in allowed]
    confined: list[Path] = []
    for raw in requested:
        text = str(raw).strip()
        if not text.startswith("/"):
            raise MediaRootError(f"media root {text!r} is not an absolute folder path (it must start with /)")
        path = real(text)
        if path == Path("/"):
            raise MediaRootError("media root / would search the whole filesystem; name the folder that holds the media")
        if not inside(path, allowed):
            names = ", ".join(str(root) for root in allowed) or "none are configured"
            raise MediaRootError(
                f"media root {text} is outside the folders media may be read from ({names}); name a folder "
                "inside one of them, or have the operator add it to MEDIA_PIPELINE_MEDIA_ROOTS"
            )
        if path not in confined:
            confined.append(path)
    if len(confined) > MAX_REQUESTED_ROOTS:
        raise MediaRootError(f"{len(confined)} media roots given; at most {MAX_REQUESTED_ROOTS} are accepted")
    return confined


_index_cache: dict[tuple[Path, ...], tuple[float, dict[str, Path], bool]] = {}


def name_index(roots: Sequence[Path]) -> tuple[dict[str, Path], bool]:
    """File name -> first path with that name under `roots` (in order), and whether the walk
    stopped at MAX_INDEXED_FILES. Links to folders are not followed. Cached per process."""
    key = tuple(roots)
    cached = _index_cache.get(key)
    if cached is not None and time.monotonic() - cached[0] < INDEX_TTL_SECONDS:
        return cached[1], cached[2]
    index: dict[str, Path] = {}
    seen = 0
    truncated = False
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                index.setdefault(name, Path(folder) / name)
            seen += len(files)
            if seen >= MAX_INDEXED_FILES:
                truncated = True
                break
        if truncated:
            break
    _index_cache[key] = (time.monotonic(), index, truncated)
    return index, truncated


class MediaResolver:
    """Resolves media for one cut, reading only inside the allowed media roots: relinks by file
    name under the search roots, probes once per file.

    A recorded path that resolves (links and `..` included) outside the allowed roots is never
    looked at, so the note a shot gets is the same whether or not such a file exists.
    """

    def __init__(
        self,
        allowed: Sequence[Path],
        requested: Iterable[str] = (),
        origin_dir: Path | None = None,
        max_pixels: int | None = None,
    ):
        self.max_pixels = max_pixels
        self.allowed = list(dict.fromkeys(real(root) for root in allowed))
        self.refused_roots: list[str] = []
        chosen: list[Path] = []
        for root in requested:  # re-checked here: the allowed roots may have changed since publishing
            try:
                chosen += confine_roots([root], self.allowed)
            except MediaRootError as exc:
                self.refused_roots.append(str(exc))
        self.search_roots = [root for root in dict.fromkeys([*chosen, *self.allowed]) if root.is_dir()]
        self.origin_dir = origin_dir
        self._probes: dict[str, MediaInfo | MediaError] = {}

    # -- locating files ---------------------------------------------------------------------
    def locate(self, recorded: str) -> tuple[Path | None, str | None]:
        """Path of the recorded file on this machine, and a note if it had to be relinked."""
        if not _WINDOWS_PATH.match(recorded):
            candidate = Path(recorded)
            if not candidate.is_absolute() and self.origin_dir is not None:
                candidate = self.origin_dir / candidate
            if candidate.is_absolute():
                resolved = real(candidate)
                if inside(resolved, self.allowed) and resolved.is_file():
                    return resolved, None
        name = file_name(recorded)
        found = self.find_by_name(name) if name else None
        if found is not None:
            return found, f"relinked by file name: {recorded} is not readable here; using {self.display(found)}"
        return None, None

    def find_by_name(self, name: str) -> Path | None:
        index, _ = name_index(self.search_roots)
        found = index.get(name)
        if found is None:
            return None
        resolved = real(found)  # a link inside a root may point anywhere
        return resolved if inside(resolved, self.allowed) and resolved.is_file() else None

    def display(self, path: Path) -> str:
        """`path` as a client may see it: relative to the media root that holds it."""
        for root in self.search_roots:
            if path.is_relative_to(root):
                return f"{path.relative_to(root).as_posix()} in media root {root.name or '/'}"
        return path.name

    def name_index(self) -> dict[str, Path]:
        return name_index(self.search_roots)[0]

    def probe(self, path: Path) -> MediaInfo:
        key = str(path)
        if key not in self._probes:
            try:
                self._probes[key] = probe(path, max_pixels=self.max_pixels)
            except MediaError as exc:
                self._probes[key] = exc
        result = self._probes[key]
        if isinstance(result, MediaError):
            raise result
        return result

    def missing_hint(self, recorded: str) -> str:
        # Worded from the recorded path and the roots only, never from what exists outside them.
        pure = PureWindowsPath(recorded) if _WINDOWS_PATH.match(recorded) else PurePosixPath(recorded)
        folder = str(pure.parent)
        hint = (
            f"media not found: {recorded} is not a file inside the media roots, and no file named "
            f"{file_name(recorded)!r} is under them; move the media into a media root, or add the folder that "
            f"holds it ({folder}) to MEDIA_PIPELINE_MEDIA_ROOTS and re-run"
        )
        if name_index(self.search_roots)[1]:
            hint += f" (the search stopped after {MAX_INDEXED_FILES:,} files: name smaller media roots)"
        return hint

    # -- resolving one shot -----------------------------------------------------------------
    def resolve(self, shot: ClipShot) -> ResolvedMedia:
        ref = shot.clip.media_reference
        if isinstance(ref, otio.schema.GeneratorReference):
            return ResolvedMedia(
                status=MediaStatus.GENERATOR,
                kind="generator",
                notes=[f"generator clip ({ref.generator_kind or 'unknown kind'}): no media to read"],
                details={"generator_kind": ref.generator_kind, "parameters": dict(ref.parameters)},
            )
        if isinstance(ref, otio.schema.ImageSequenceReference):
            return self._sequence(shot, ref)
        if isinstance(ref, otio.schema.ExternalReference) and ref.target_url:
            return self._file(shot, ref.target_url, ref.available_range)
        # MissingReference: some exporters name the media only in the clip name.
        if file_name(shot.name) and Path(shot.name).suffix.lower() in MEDIA_SUFFIXES:
            resolved = self._file(shot, shot.name, None)
            if resolved.status == MediaStatus.LINKED:
                return resolved
        return ResolvedMedia(
            status=MediaStatus.MISSING,
            notes=["the timeline records no media for this clip (offline / missing reference)"],
        )

    def _file(self, shot: ClipShot, url: str, available: otio.opentime.TimeRange | None) -> ResolvedMedia:
        recorded = url_to_path(url)
        path, note = self.locate(recorded)
        notes = [note] if note else []
        if path is None:
            return ResolvedMedia(status=MediaStatus.MISSING, url=url, notes=[self.missing_hint(recorded)])
        try:
            info = self.probe(path)
            info.require_video()
        except MediaError as exc:
            # The probe's own reason (an XML document, a playlist, too many pixels) names no path
            # but the file's; the root is shown as configured, never the server's full path.
            reason = without_paths(exc.summary, [path])
            return ResolvedMedia(
                status=MediaStatus.MISSING,
                url=url,
                path=str(path),
                notes=[
                    *notes,
                    f"unreadable media: {self.display(path)} is not a picture or movie ffmpeg can decode"
                    + (f" ({reason})" if reason else ""),
                ],
            )
        if info.is_image:
            # One picture held for the whole shot (animatic frames, title cards).
            return ResolvedMedia(
                status=MediaStatus.LINKED,
                kind="still",
                path=str(path),
                url=url,
                frame=0,
                rate=info.rate,
                frame_count=1,
                notes=notes,
                details=_info_details(info),
            )
        media_start = media_start_seconds(available, info)
        offset = seconds(shot.clip.trimmed_range().start_time) - media_start
        frame = round(offset * info.rate)
        if info.rate != shot.source_rate:
            notes.append(
                f"frame rate differs: the timeline names source frames at {float(shot.source_rate):.3f} fps, "
                f"the media runs at {float(info.rate):.3f} fps; frames were matched by time"
            )
        last = frame + round(Fraction(shot.source_duration) / shot.source_rate * info.rate) - 1
        if frame < 0 or last >= info.frame_count:
            notes.append(
                f"source range outside the media: the shot needs media frames {frame}..{last}, "
                f"the file has 0..{info.frame_count - 1} (check the source timecode / available range)"
            )
        return ResolvedMedia(
            status=MediaStatus.LINKED,
            kind="movie",
            path=str(path),
            url=url,
            frame=frame,
            rate=info.rate,
            frame_count=info.frame_count,
            notes=notes,
            details={**_info_details(info), "media_start_seconds": str(media_start)},
        )

    def _sequence(self, shot: ClipShot, ref: otio.schema.ImageSequenceReference) -> ResolvedMedia:
        rate = exact_rate(ref.rate)
        available = ref.available_range
        source_start = shot.clip.trimmed_range().start_time
        start_offset = source_start - available.start_time if available else source_start
        first_number = ref.start_frame + to_frames(start_offset, rate) * max(1, ref.frame_step)
        folder = url_to_path(ref.target_url_base)
        padding = ref.frame_zero_padding
        first_name = f"{ref.name_prefix}{first_number:0{padding}d}{ref.name_suffix}"
        recorded_first = (folder.rstrip("/\\") + "/" + first_name) if folder else first_name
        path, note = self.locate(recorded_first)
        url = ref.target_url_base + ref.name_prefix
        if path is None:
            return ResolvedMedia(status=MediaStatus.MISSING, url=url, notes=[self.missing_hint(recorded_first)])
        try:
            # The first file stands for the sequence: allowed format, pixel limit.
            if not self.probe(path).is_image:
                raise MediaError(f"{path.name} is not a still image, so it cannot be part of an image sequence")
        except MediaError as exc:
            return ResolvedMedia(
                status=MediaStatus.MISSING, url=url, path=str(path), notes=[f"unreadable media: {exc}"]
            )
        pattern = path.parent / f"{ref.name_prefix}%0{padding}d{ref.name_suffix}" if padding else None
        if pattern is None:
            pattern = path.parent / f"{ref.name_prefix}%d{ref.name_suffix}"
        return ResolvedMedia(
            status=MediaStatus.LINKED,
            kind="sequence",
            path=str(pattern),
            url=url,
            frame=first_number,
            rate=rate,
            frame_count=ref.number_of_images_in_sequence(),
            notes=[note] if note else [],
            details={"start_frame": ref.start_frame, "frame_step": ref.frame_step, "padding": padding},
        )


def media_start_seconds(available: otio.opentime.TimeRange | None, info: MediaInfo | None) -> Fraction:
    if available is not None:
        return seconds(available.start_time)
    if info is not None and info.video is not None and info.start_timecode:
        rate = info.rate
        timecode = otio.opentime.from_timecode(info.start_timecode, float(rate))
        return Fraction(round(timecode.value)) / rate
    return Fraction(0)


def _info_details(info: MediaInfo) -> dict[str, Any]:
    return {
        "width": info.width,
        "height": info.height,
        "codec": info.codec,
        "start_timecode": info.start_timecode,
        "display_aspect": str(info.display_aspect),
    }
