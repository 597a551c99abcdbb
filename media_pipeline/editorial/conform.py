"""Conforming a cut into one playable file, segment by segment.

The record timeline is split into segments: a shot's frames, a gap (black), a slate for missing
media, or a dissolve between two neighbours. Each segment is encoded on its own with identical
encoder settings and cached by what determines its pixels, then the segments are joined with
the concat demuxer (stream copy) and muxed with the conformed audio. A new cut version
re-encodes only segments whose inputs changed; the join itself copies.

Frame accuracy: a movie segment seeks its input half a frame before the first named frame (the
first decoded frame at or after that is exactly it) and takes exactly N frames; image sequences
start at the named file number; output timestamps are regenerated at the output rate.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from media_pipeline.core import ffmpeg
from media_pipeline.db.models import MediaStatus, Shot
from media_pipeline.editorial.thumbnails import render_slate

# Bump when segment encoding changes, so cached segments are not reused. 2: segments are cached
# only once their frame count is checked (a version-1 segment may be short).
SEGMENT_VERSION = 2


@dataclass(frozen=True)
class EncodeOptions:
    width: int = 1920
    height: int = 1080
    fps: Fraction = Fraction(24)
    crf: int = 18
    preset: str = "medium"
    audio: bool = True

    def key(self) -> dict[str, Any]:
        return {"w": self.width, "h": self.height, "fps": str(self.fps), "crf": self.crf, "preset": self.preset}


@dataclass
class Source:
    """Where a run of output frames comes from."""

    kind: str  # movie | sequence | still | black | slate
    path: str | None = None
    first: int = 0  # first media frame (movie decode index / sequence file number)
    rate: Fraction | None = None
    lines: list[str] = field(default_factory=list)  # slate text

    def identity(self) -> dict[str, Any]:
        ident: dict[str, Any] = {"kind": self.kind, "first": self.first, "rate": str(self.rate)}
        if self.kind == "slate":
            ident["lines"] = self.lines
        elif self.path is not None:
            probe_path = Path(self.path % self.first if self.kind == "sequence" else self.path)
            stat = probe_path.stat() if probe_path.exists() else None
            ident.update(path=self.path, size=stat.st_size if stat else None, mtime=stat.st_mtime_ns if stat else None)
        return ident

    def at(self, offset: int) -> Source:
        """The same source starting `offset` output frames later."""
        if self.kind in ("black", "slate", "still"):
            return self
        return Source(self.kind, self.path, self.first + offset, self.rate, self.lines)


@dataclass
class Segment:
    record_start: int
    frames: int
    sources: list[Source]  # one (a cut) or two (a dissolve from the first to the second)
    label: str
    shot_ids: tuple[int, ...] = ()  # the shots it shows (not part of the cache key: pixels are)

    def cache_key(self, options: EncodeOptions) -> str:
        identity = {
            "v": SEGMENT_VERSION,
            "frames": self.frames,
            "sources": [s.identity() for s in self.sources],
            "options": options.key(),
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


@dataclass
class ConformPlan:
    segments: list[Segment]
    total_frames: int
    not_rendered: list[str]  # effects, speed changes, transitions that are not dissolves


def shot_source(shot: Shot) -> tuple[Source, list[str]]:
    """The source of a shot's first record frame, and notes about what cannot be rendered."""
    notes: list[str] = []
    if shot.media_status == MediaStatus.GENERATOR:
        kind = (shot.details or {}).get("generator_kind") or "generator"
        return Source("slate", lines=["GENERATOR", shot.name, f"{kind}: not rendered"]), notes
    if shot.media_status != MediaStatus.LINKED or shot.media_frame is None or shot.media_path is None:
        reason = (shot.notes or ["media missing"])[-1]
        return Source("slate", lines=["MEDIA MISSING", shot.name, reason]), notes
    rate = Fraction(shot.media_rate) if shot.media_rate else Fraction(shot.source_rate)
    kind = shot.media_kind or "movie"
    return Source(kind, shot.media_path, shot.media_frame, rate), notes


def plan_conform(shots: list[Shot], total_frames: int) -> ConformPlan:
    """Split the record timeline into segments: shots, gaps, dissolves."""
    ordered = sorted(shots, key=lambda s: s.record_start)
    not_rendered: list[str] = []
    # Each shot's visible record range after dissolves take their share.
    starts = {s.id: s.record_start for s in ordered}
    ends = {s.id: s.record_start + s.record_duration for s in ordered}
    dissolves: list[tuple[Shot, Shot, int, int]] = []
    for previous, current in itertools.pairwise(ordered):
        transition = (current.details or {}).get("transition_in")
        if not transition or ends[previous.id] != current.record_start:
            continue
        if transition.get("type") != "SMPTE_Dissolve":
            not_rendered.append(f"{transition.get('type')} transition before {current.name!r}: rendered as a cut")
            continue
        before, after = int(transition["in_offset"]), int(transition["out_offset"])
        ends[previous.id] = current.record_start - before
        starts[current.id] = current.record_start + after
        dissolves.append((previous, current, before, after))
    for shot in ordered:
        for effect in (shot.details or {}).get("effects", []):
            not_rendered.append(f"{effect} on {shot.name!r}: not rendered (the shot plays at normal speed, unaltered)")

    segments: list[Segment] = []
    for shot in ordered:
        source, notes = shot_source(shot)
        not_rendered += notes
        start, end = starts[shot.id], ends[shot.id]
        if end > start:
            segments.append(Segment(start, end - start, [source.at(start - shot.record_start)], shot.name, (shot.id,)))
    for previous, current, before, after in dissolves:
        cut = current.record_start
        prev_source, _ = shot_source(previous)
        next_source, _ = shot_source(current)
        segments.append(
            Segment(
                cut - before,
                before + after,
                # The outgoing shot runs on past its out point and the incoming one starts before
                # its in point: both read their media's handles.
                [prev_source.at(cut - before - previous.record_start), next_source.at(-before)],
                f"dissolve {previous.name} > {current.name}",
                (previous.id, current.id),
            )
        )
    segments.sort(key=lambda seg: seg.record_start)
    filled: list[Segment] = []
    cursor = 0
    for segment in segments:
        if segment.record_start > cursor:
            filled.append(Segment(cursor, segment.record_start - cursor, [Source("black")], "gap"))
        filled.append(segment)
        cursor = segment.record_start + segment.frames
    if total_frames > cursor:
        filled.append(Segment(cursor, total_frames - cursor, [Source("black")], "gap"))
    return ConformPlan(filled, max(total_frames, cursor), not_rendered)


def _input_args(source: Source, options: EncodeOptions, workdir: Path, index: int) -> list[str]:
    fps = ffmpeg.rate_arg(options.fps)
    if source.kind == "movie":
        assert source.rate is not None and source.path is not None
        seek = ffmpeg.seek_seconds(source.first, source.rate)
        return ["-ss", ffmpeg.format_seconds(seek), "-i", source.path]
    if source.kind == "sequence":
        assert source.rate is not None and source.path is not None
        return ["-framerate", ffmpeg.rate_arg(source.rate), "-start_number", str(source.first), "-i", source.path]
    if source.kind == "still":
        return ["-loop", "1", "-framerate", fps, "-i", str(source.path)]
    if source.kind == "slate":
        slate = workdir / f"slate_{index}.png"
        render_slate(source.lines, slate, options.width, Fraction(options.width, options.height))
        return ["-loop", "1", "-framerate", fps, "-i", str(slate)]
    return ["-f", "lavfi", "-i", f"color=c=black:s={options.width}x{options.height}:r={fps}"]


def _chain(index: int, source: Source, frames: int, options: EncodeOptions) -> str:
    w, h, fps = options.width, options.height, ffmpeg.rate_arg(options.fps)
    steps = []
    if source.kind in ("movie", "sequence") and source.rate != options.fps:
        steps.append(f"fps={fps}")  # different media rate: frames matched by time
    steps += [
        f"scale={w}:{h}:force_original_aspect_ratio=decrease",
        f"pad={w}:{h}:-1:-1:color=black",
        "setsar=1",
        "format=yuv420p",
        f"trim=end_frame={frames}",
        f"setpts=N/({fps})/TB",
    ]
    return f"[{index}:v]{','.join(steps)}[v{index}]"


def encode_segment(
    segment: Segment,
    options: EncodeOptions,
    output: Path,
    on_frames: Callable[[int], None] | None = None,
) -> None:
    """Encode one segment to `output` (atomically) with the shared encoder settings."""
    with tempfile.TemporaryDirectory(prefix="segment-") as tmp:
        workdir = Path(tmp)
        args: list[str] = []
        chains = []
        for index, source in enumerate(segment.sources):
            args += _input_args(source, options, workdir, index)
            chains.append(_chain(index, source, segment.frames, options))
        if len(segment.sources) == 2:
            seconds = ffmpeg.format_seconds(Fraction(segment.frames) / options.fps)
            chains.append(f"[v0][v1]xfade=transition=fade:duration={seconds}:offset=0[out]")
            out_label = "[out]"
        else:
            out_label = "[v0]"
        args += ["-filter_complex", ";".join(chains), "-map", out_label, "-frames:v", str(segment.frames)]
        args += encoder_args(options)
        args += ["-an", "-video_track_timescale", str(timescale(options.fps))]

        def progress(update: ffmpeg.Progress) -> None:
            if on_frames is not None:
                on_frames(update.frame)

        ffmpeg.run(args, output, on_progress=progress, what=f"segment {segment.label!r}", timeout=3600)


@dataclass(frozen=True)
class Shortfall:
    """A segment whose sources gave fewer frames than planned, and what the join reads instead."""

    got: int
    frames: int
    parts: list[Path]  # the frames there were (if any), then a slate for the rest

    def note(self, label: str) -> str:
        return (
            f"final video: {label!r} got {self.got} of its {self.frames} frames from the media (it ends early, or "
            f"the source range lies outside it); the other {self.frames - self.got} are a slate saying so"
        )


def encoded_frames(path: Path) -> int:
    """Pictures in an encoded segment, counted by PyAV (0 when ffmpeg wrote no picture at all)."""
    try:
        info = ffmpeg.probe(path)
    except ffmpeg.MediaError:
        return 0
    return info.video.frames if info.video is not None else 0


def encode_checked(
    segment: Segment,
    options: EncodeOptions,
    output: Path,
    scratch: Path,
    on_frames: Callable[[int], None] | None = None,
) -> Shortfall | None:
    """Encode `segment` into its cache path `output` only if it has every planned frame.

    ffmpeg ends cleanly when a seek lands past the real data or a container over-states its
    length, so each encode is counted before it is cached. A short one never reaches `output`:
    it stays in `scratch` (a folder of this render's own) with a slate for the missing frames
    after it, and the caller joins those two instead.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    staged = scratch / output.name
    encode_segment(segment, options, staged, on_frames)
    got = min(encoded_frames(staged), segment.frames)
    if got == segment.frames:
        output.parent.mkdir(parents=True, exist_ok=True)
        staged.replace(output)
        return None
    missing = segment.frames - got
    lines = ["MEDIA ENDS EARLY", segment.label, f"{missing} of {segment.frames} frames are not in the media"]
    slate = Segment(segment.record_start + got, missing, [Source("slate", lines=lines)], f"{segment.label} (slate)")
    slate_path = scratch / f"{output.stem}_slate.mp4"
    encode_segment(slate, options, slate_path)
    if not got:
        staged.unlink(missing_ok=True)  # no picture: nothing the join could read
    return Shortfall(got, segment.frames, [staged, slate_path] if got else [slate_path])


def encoder_args(options: EncodeOptions) -> list[str]:
    fps = ffmpeg.rate_arg(options.fps)
    return [
        "-r", fps, "-fps_mode", "cfr",
        "-c:v", "libx264", "-preset", options.preset, "-crf", str(options.crf), "-pix_fmt", "yuv420p",
        # Every segment the same GOP structure and colour tags, so they join by stream copy.
        "-g", str(max(1, round(options.fps))), "-keyint_min", "1",
        "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
    ]  # fmt: skip


def timescale(fps: Fraction) -> int:
    # A timescale the frame duration divides exactly: 24000 for 24000/1001, 25 * 1000 for 25.
    return fps.numerator * (1000 if fps.denominator == 1 else 1)


def concat_list(paths: list[Path], list_file: Path) -> None:
    lines = []
    for path in paths:
        escaped = str(path).replace("'", "'\\''")  # the concat demuxer's quoting
        lines.append(f"file '{escaped}'")
    list_file.write_text("\n".join(lines) + "\n")


def assemble(
    segment_files: list[Path],
    audio: Path | None,
    output: Path,
    options: EncodeOptions,
    total_frames: int,
    start_timecode: str | None,
) -> None:
    """Join encoded segments by stream copy and mux the conformed audio, +faststart."""
    with tempfile.TemporaryDirectory(prefix="assemble-") as tmp:
        list_file = Path(tmp) / "segments.txt"
        concat_list(segment_files, list_file)
        args = ["-f", "concat", "-safe", "0", "-i", str(list_file)]
        if audio is not None:
            args += ["-i", str(audio), "-map", "0:v", "-map", "1:a", "-c:a", "aac", "-b:a", "192k"]
        args += ["-c:v", "copy", "-frames:v", str(total_frames), "-movflags", "+faststart"]
        if start_timecode:
            args += ["-timecode", start_timecode]
        ffmpeg.run(args, output, what="joining the final video", timeout=3600)


@dataclass
class AudioClip:
    path: str
    media_seconds: Fraction  # where in the media the clip starts
    record_seconds: Fraction  # where in the timeline it starts
    seconds: Fraction


SAMPLE_RATE = 48000


def render_audio(clips: list[AudioClip], total_seconds: Fraction, output: Path) -> None:
    """Mix the timeline's audio clips at their record positions into one track of exactly
    the timeline's length (silence where there is nothing)."""
    total_samples = round(total_seconds * SAMPLE_RATE)
    args: list[str] = ["-f", "lavfi", "-i", f"anullsrc=r={SAMPLE_RATE}:cl=stereo"]
    chains = ["[0:a]atrim=end_sample=1[base]"]
    labels = ["[base]"]
    for number, clip in enumerate(clips, start=1):
        args += ["-ss", ffmpeg.format_seconds(clip.media_seconds), "-t", ffmpeg.format_seconds(clip.seconds)]
        args += ["-i", clip.path]
        delay = round(clip.record_seconds * SAMPLE_RATE)
        chains.append(
            f"[{number}:a]aresample={SAMPLE_RATE},aformat=sample_fmts=fltp:channel_layouts=stereo,"
            f"adelay=delays={delay}S:all=1[a{number}]"
        )
        labels.append(f"[a{number}]")
    chains.append(
        f"{''.join(labels)}amix=inputs={len(labels)}:duration=longest:normalize=0,"
        f"apad=whole_len={total_samples},atrim=end_sample={total_samples}[mix]"
    )
    args += ["-filter_complex", ";".join(chains), "-map", "[mix]", "-c:a", "pcm_s16le", "-ar", str(SAMPLE_RATE)]
    ffmpeg.run(args, output, what="conforming the audio", timeout=3600)


def timeline_audio(timeline: Any, resolver: Any) -> tuple[list[AudioClip], list[str]]:
    """Audio clips of the timeline's enabled audio tracks, with their media found on this machine."""
    import opentimelineio as otio

    from media_pipeline.editorial.media import media_start_seconds, url_to_path
    from media_pipeline.editorial.shots import seconds

    clips: list[AudioClip] = []
    notes: list[str] = []
    for track in timeline.audio_tracks():
        if not track.enabled:
            continue
        for item in track:
            if isinstance(item, otio.core.Composition):
                notes.append(f"nested audio {item.name!r}: not rendered")
                continue
            if not isinstance(item, otio.schema.Clip) or not item.enabled:
                continue
            reference = item.media_reference
            if not isinstance(reference, otio.schema.ExternalReference) or not reference.target_url:
                notes.append(f"audio clip {item.name!r}: no media, rendered as silence")
                continue
            path, _ = resolver.locate(url_to_path(reference.target_url))
            if path is None:
                notes.append(f"audio clip {item.name!r}: media {reference.target_url} not found, rendered as silence")
                continue
            try:
                info = resolver.probe(path)
            except ffmpeg.MediaError as exc:
                notes.append(f"audio clip {item.name!r}: {exc} Rendered as silence.")
                continue
            if not info.has_audio:
                notes.append(f"audio clip {item.name!r}: {path.name} has no audio stream; rendered as silence")
                continue
            media_start = media_start_seconds(reference.available_range, info)
            source = item.trimmed_range()
            clips.append(
                AudioClip(
                    path=str(path),
                    media_seconds=seconds(source.start_time) - media_start,
                    record_seconds=seconds(item.range_in_parent().start_time),
                    seconds=seconds(source.duration),
                )
            )
    return clips, notes
