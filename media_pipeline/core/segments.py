"""Joinable video segments: encoded alike, so they join by stream copy into one exact video.

Every segment of one video is H.264 in MP4 with the same rate, GOP structure, pixel format,
colour tags and track timescale; a concat list of them is then joined without re-encoding,
and the joined file has exactly the sum of their frames with continuous timestamps. Used by
every area that builds a video out of pieces cached one by one (slideshows, compositions).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from media_pipeline.core import ffmpeg


@dataclass(frozen=True)
class Look:
    """What every segment of one video shares."""

    width: int
    height: int
    rate: Fraction
    crf: int
    preset: str


def timescale(rate: Fraction) -> int:
    # A timescale the frame duration divides exactly, so joined segments keep exact timestamps.
    return rate.numerator * max(1, -(-10000 // rate.numerator)) if rate.denominator == 1 else rate.numerator


def encoder_args(look: Look, frames: int) -> list[str]:
    return [
        "-r", ffmpeg.rate_arg(look.rate), "-fps_mode", "cfr", "-frames:v", str(frames),
        "-c:v", "libx264", "-preset", look.preset, "-crf", str(look.crf), "-pix_fmt", "yuv420p",
        # The same GOP structure and colour tags in every segment, so they join by stream copy.
        "-g", str(max(1, 2 * round(look.rate))), "-keyint_min", "1",
        "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
        "-video_track_timescale", str(timescale(look.rate)), "-an", "-f", "mp4",
    ]  # fmt: skip


def concat_list(paths: list[Path], list_file: Path) -> None:
    lines = []
    for path in paths:
        escaped = str(path).replace("'", "'\\''")  # the concat demuxer's quoting
        lines.append(f"file '{escaped}'")
    list_file.parent.mkdir(parents=True, exist_ok=True)
    list_file.write_text("\n".join(lines) + "\n")


def join(
    segments: list[Path],
    audio: Path | None,
    output: Path,
    *,
    frames: int,
    list_file: Path,
    audio_samples: tuple[int, int] | None = None,
) -> None:
    """Segments joined by stream copy, with `audio` (a WAV, or `audio_samples` of it) as AAC if
    given, +faststart."""
    concat_list(segments, list_file)
    args = ["-f", "concat", "-safe", "0", "-i", str(list_file)]
    if audio is not None:
        args += ["-i", str(audio), "-map", "0:v", "-map", "1:a"]
        if audio_samples is not None:
            start, end = audio_samples
            args += ["-af", f"atrim=start_sample={start}:end_sample={end},asetpts=PTS-STARTPTS"]
    else:
        args += ["-map", "0:v"]
    args += ["-c:v", "copy", "-frames:v", str(frames)]
    if audio is not None:
        args += ["-c:a", "aac", "-b:a", "192k", "-ar", "48000", "-ac", "2"]
    args += ["-movflags", "+faststart", "-f", "mp4"]
    ffmpeg.run(args, output, what=f"joining {output.name}", timeout=3600)


def count_frames(path: Path) -> int:
    """The video frames of `path`, counted by demuxing (stream copy to null: nothing decoded)."""
    last: list[ffmpeg.Progress] = []
    ffmpeg.run(["-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "null", "-"], on_progress=last.append)
    return last[-1].frame if last else 0
