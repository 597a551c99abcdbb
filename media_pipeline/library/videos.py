"""Video edits with ffmpeg (through the media core only): frame-exact trim, format, concat.

Trim: ffmpeg seeks half a frame before the first kept frame (`seek_seconds`), decodes from the
keyframe before it, and writes exactly end - start frames; the audio is cut at the first kept
frame's instant, to the sample, and lasts as long as the kept frames. Every trim re-encodes (a
cut between keyframes cannot be copied). Concat copies the streams when every input has the
same codec, size, rate, pixel format and audio layout, and re-encodes to the first input's
size and rate otherwise.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from media_pipeline.core import ffmpeg
from media_pipeline.core.probe import MediaInfo, probe
from media_pipeline.library.recipes import Format, OpRefused, Trim

# Container for each output format, and the file suffix ffmpeg picks the muxer by.
SUFFIXES = {"mp4": ".mp4", "webm": ".webm", "mkv": ".mkv", "gif": ".gif"}


def default_format(content_type: str) -> Format:
    """A video edit without a format op keeps the source's container family."""
    if content_type == "video/webm":
        return Format(op="format", format="webm")
    if content_type == "video/x-matroska":
        return Format(op="format", format="mkv")
    if content_type == "image/gif":
        return Format(op="format", format="gif")
    return Format(op="format", format="mp4")


def encoder_args(fmt: Format, *, audio: bool) -> list[str]:
    if fmt.format == "gif":
        return ["-an"]  # the palette filter comes with the video filters
    if fmt.format == "webm":
        video = ["-c:v", "libvpx-vp9", "-crf", str(fmt.crf), "-b:v", "0", "-row-mt", "1", "-deadline", "good",
                 "-cpu-used", "5", "-pix_fmt", "yuv420p"]  # fmt: skip
        return video + (["-c:a", "libopus", "-b:a", "128k"] if audio else ["-an"])
    video = ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(fmt.crf), "-pix_fmt", "yuv420p"]
    if fmt.format == "mp4":
        video += ["-movflags", "+faststart"]
    return video + (["-c:a", "aac", "-b:a", "192k"] if audio else ["-an"])


GIF_FILTER = "split[a][b];[a]palettegen=stats_mode=diff[p];[b][p]paletteuse=dither=bayer"


@dataclass(frozen=True)
class TrimPlan:
    first: int
    end: int


def plan_trim(op: Trim | None, info: MediaInfo, field: str) -> TrimPlan:
    count = info.frame_count
    if op is None:
        return TrimPlan(0, count)
    try:
        first, end = op.frames(info.rate, count)
    except ValueError as exc:
        raise OpRefused(field, str(exc)) from None
    if first >= count:
        raise OpRefused(field, f"the video has {count} frames (0..{count - 1}); the trim starts at frame {first}")
    end = min(end, count)
    if end <= first:
        raise OpRefused(field, f"the trim keeps no frame (frames {first} to {end}, the end not kept)")
    return TrimPlan(first, end)


def render(
    source: Path,
    ops: Sequence[Any],
    content_type: str,
    output_dir: Path,
    *,
    on_progress: Callable[[ffmpeg.Progress], None] | None = None,
) -> Path:
    """Trim and/or re-encode `source` as `ops` say; the output file (in `output_dir`)."""
    info = probe(source)
    trim = next((op for op in ops if isinstance(op, Trim)), None)
    fmt = next((op for op in ops if isinstance(op, Format)), None) or default_format(content_type)
    plan = plan_trim(trim, info, f"ops.{list(ops).index(trim)}" if trim is not None else "ops")
    rate = info.rate
    seek = ffmpeg.seek_seconds(plan.first, rate)
    args: list[str] = []
    if seek > 0:
        args += ["-ss", ffmpeg.format_seconds(seek)]
    args += ["-i", str(source), "-map", "0:v:0"]
    audio = info.has_audio and fmt.format != "gif"
    if audio:
        args += ["-map", "0:a:0"]
        # The seek lands up to half a frame early; the audio starts at the first kept frame.
        offset = Fraction(plan.first) / rate - seek
        duration = Fraction(plan.end - plan.first) / rate
        args += ["-af", f"atrim=start={ffmpeg.format_seconds(offset)}:duration={ffmpeg.format_seconds(duration)},"
                 "asetpts=PTS-STARTPTS"]  # fmt: skip
    # The seek leaves the first kept frame half a frame after 0: it starts the output at 0.
    if fmt.format == "gif":
        args = [a for a in args if a not in ("-map", "0:v:0")]
        args += ["-filter_complex", f"[0:v:0]setpts=PTS-STARTPTS,{GIF_FILTER}"]
    else:
        args += ["-vf", "setpts=PTS-STARTPTS"]
    args += ["-frames:v", str(plan.end - plan.first), "-fps_mode", "passthrough"]
    args += encoder_args(fmt, audio=audio)
    output = output_dir / f"edit{SUFFIXES[fmt.format]}"
    ffmpeg.run(args, output, on_progress=on_progress, what="the video edit")
    return output


def _signature(info: MediaInfo) -> tuple[Any, ...]:
    video = info.require_video()
    audio = (info.audio.codec, info.audio.sample_rate, info.audio.channels) if info.audio else None
    return (video.codec, video.width, video.height, video.rate, video.pixel_format, video.sample_aspect, audio)


def can_copy(infos: Sequence[MediaInfo]) -> bool:
    return len({_signature(info) for info in infos}) == 1


def concat(sources: Sequence[Path], output_dir: Path, fmt: Format | None = None) -> tuple[Path, bool]:
    """`sources` one after another; the output and whether the streams were copied."""
    infos = [probe(path) for path in sources]
    first = infos[0]
    if fmt is None and can_copy(infos):
        with tempfile.NamedTemporaryFile("w", suffix=".txt", dir=output_dir, delete=False) as listing:
            for path in sources:
                # Our own storage paths, quoted as the concat demuxer reads them.
                listing.write("file '" + str(path).replace("'", "'\\''") + "'\n")
        output = output_dir / "concat.mp4"
        ffmpeg.run(["-f", "concat", "-safe", "0", "-i", listing.name, "-map", "0", "-c", "copy"], output,
                   what="the concat (stream copy)")  # fmt: skip
        Path(listing.name).unlink()
        return output, True
    fmt = fmt or Format(op="format", format="mp4")
    rate = ffmpeg.rate_arg(first.rate)
    audio = all(info.has_audio for info in infos)
    args: list[str] = []
    chains: list[str] = []
    labels = ""
    for number, path in enumerate(sources):
        args += ["-i", str(path)]
        chains.append(
            f"[{number}:v:0]scale={first.width}:{first.height}:force_original_aspect_ratio=decrease,"
            f"pad={first.width}:{first.height}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={rate},format=yuv420p[v{number}]"
        )
        labels += f"[v{number}]"
        if audio:
            chains.append(f"[{number}:a:0]aresample=48000,aformat=channel_layouts=stereo[a{number}]")
            labels += f"[a{number}]"
    graph = (
        ";".join(chains) + f";{labels}concat=n={len(sources)}:v=1:a={1 if audio else 0}[v]" + ("[a]" if audio else "")
    )
    args += ["-filter_complex", graph, "-map", "[v]"] + (["-map", "[a]"] if audio else [])
    args += encoder_args(fmt, audio=audio)
    output = output_dir / f"concat{SUFFIXES[fmt.format]}"
    ffmpeg.run(args, output, what="the concat (re-encode)")
    return output, False
