"""The one place that runs ffmpeg: probing, progress, error capture, atomic outputs.

ffmpeg is always given an argument list (never a shell string). The binary comes from
imageio-ffmpeg, so no system ffmpeg is needed; imageio-ffmpeg ships no ffprobe, so probing
parses `ffmpeg -i`'s stream report.
"""

from __future__ import annotations

import collections
import re
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path

from media_pipeline.core.files import atomic_path

# Rates that editorial tools write as rounded decimals; ffmpeg prints them rounded too.
NTSC_RATES = (Fraction(24000, 1001), Fraction(30000, 1001), Fraction(48000, 1001), Fraction(60000, 1001))


def exact_rate(rate: float | str | Fraction) -> Fraction:
    """The exact rational rate behind a decimal one: 23.976 -> 24000/1001, 25 -> 25."""
    value = Fraction(str(rate)) if not isinstance(rate, Fraction) else rate
    for ntsc in NTSC_RATES:
        if abs(value - ntsc) < Fraction(6, 1000):
            return ntsc
    return value.limit_denominator(1001)


class FFmpegError(RuntimeError):
    """ffmpeg failed; `str()` is a sentence for a user, `stderr_tail` what ffmpeg said last."""

    def __init__(self, summary: str, stderr_tail: str = "", returncode: int | None = None):
        self.summary = summary
        self.stderr_tail = stderr_tail
        self.returncode = returncode
        detail = f" ffmpeg said: {stderr_tail.strip()}" if stderr_tail.strip() else ""
        super().__init__(f"{summary}.{detail}")


class MediaError(FFmpegError):
    """A media file is missing, unreadable or not media at all."""


@dataclass(frozen=True)
class MediaInfo:
    path: str
    width: int
    height: int
    rate: Fraction
    duration: Fraction  # seconds, exact as far as the container reports it
    start_timecode: str | None
    codec: str
    has_audio: bool
    sample_aspect: Fraction = Fraction(1)

    @property
    def frame_count(self) -> int:
        """Frames in the container's duration: exact for picture-only files; an audio track
        that runs longer makes it an over-estimate (ffmpeg -i reports no stream duration)."""
        # Containers report durations rounded to 10 ms: round, do not truncate.
        return round(self.duration * self.rate)

    @property
    def display_aspect(self) -> Fraction:
        return Fraction(self.width, self.height) * self.sample_aspect


@dataclass(frozen=True)
class Progress:
    frame: int
    out_seconds: float
    done: bool


@cache
def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_VIDEO = re.compile(r"Stream #\S+.*?: Video: (\w+)(.*)")
_SIZE = re.compile(r"\b(\d{1,5})x(\d{1,5})\b")
_SAR = re.compile(r"SAR (\d+):(\d+)")
_FPS = re.compile(r"([\d.]+k?) (fps|tbr)")
_TIMECODE = re.compile(r"^\s*timecode\s*:\s*(\d\d:\d\d:\d\d[:;.]\d\d)", re.MULTILINE)
_UNREADABLE = ("Invalid data found", "moov atom not found", "could not find codec", "Invalid argument")


def _tail(text: str, lines: int = 6) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def probe(path: Path | str) -> MediaInfo:
    """Rate, size, duration and start timecode of a media file's first video stream."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"Media file {path} does not exist")
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
    )
    report = proc.stderr
    video = _VIDEO.search(report)
    if video is None:
        reason = next((line for line in report.splitlines() if any(m in line for m in _UNREADABLE)), "")
        if reason or "Stream #" not in report:
            raise MediaError(
                f"{path.name} is not a readable media file (corrupt, truncated or not video); re-export or re-copy it",
                _tail(reason or report),
            )
        raise MediaError(f"{path.name} has no video stream", _tail(report))
    codec, rest = video.group(1), video.group(2)
    size = _SIZE.search(rest)
    fps = _FPS.search(rest)
    if size is None or fps is None:
        raise MediaError(f"{path.name}: could not read the video size and frame rate", _tail(report))
    fps_text = fps.group(1)
    rate = exact_rate(float(fps_text[:-1]) * 1000 if fps_text.endswith("k") else fps_text)
    duration_match = _DURATION.search(report)
    duration = (
        Fraction(int(duration_match.group(1)) * 3600 + int(duration_match.group(2)) * 60)
        + Fraction(duration_match.group(3))
        if duration_match
        else Fraction(1) / rate  # still images report "Duration: N/A"
    )
    sar = _SAR.search(rest)
    sample_aspect = Fraction(int(sar.group(1)), int(sar.group(2))) if sar and int(sar.group(2)) else Fraction(1)
    timecode = _TIMECODE.search(report)
    return MediaInfo(
        path=str(path),
        width=int(size.group(1)),
        height=int(size.group(2)),
        rate=rate,
        duration=duration,
        start_timecode=timecode.group(1) if timecode else None,
        codec=codec,
        has_audio=": Audio:" in report,
        sample_aspect=sample_aspect or Fraction(1),
    )


def run(
    args: Sequence[str],
    output: Path | None = None,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    timeout: float | None = None,
    what: str = "ffmpeg",
) -> None:
    """Run ffmpeg with `args`; `output` (if given) is appended and written atomically.

    The output is written to a temporary name in the same folder and renamed only after ffmpeg
    exits cleanly, so a failed, killed or timed-out encode leaves no file under the final name.
    """
    if output is None:
        _run(list(args), on_progress, timeout, what)
        return
    with atomic_path(output) as tmp:
        _run([*args, str(tmp)], on_progress, timeout, what)


def _run(
    args: list[str],
    on_progress: Callable[[Progress], None] | None,
    timeout: float | None,
    what: str,
) -> None:
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats", "-progress", "pipe:1"]
    cmd += args
    stderr_lines: collections.deque[str] = collections.deque(maxlen=30)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace")

    def drain_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            stderr_lines.append(line.rstrip())

    reader = threading.Thread(target=drain_stderr, daemon=True)
    reader.start()
    timer = threading.Timer(timeout, proc.kill) if timeout else None
    if timer:
        timer.start()
    try:
        block: dict[str, str] = {}
        assert proc.stdout is not None
        for line in proc.stdout:
            key, _, value = line.strip().partition("=")
            block[key] = value
            if key == "progress":
                if on_progress is not None:
                    on_progress(_progress(block))
                block = {}
        returncode = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        if timer:
            timer.cancel()
        reader.join(timeout=5)
    if returncode != 0:
        tail = _tail("\n".join(stderr_lines))
        if timeout and returncode < 0:
            raise FFmpegError(f"{what} took longer than {timeout:.0f} s and was stopped", tail, returncode)
        raise FFmpegError(f"{what} failed (ffmpeg exit code {returncode})", tail, returncode)


def _progress(block: dict[str, str]) -> Progress:
    def number(key: str) -> float:
        try:
            return float(block.get(key, "0") or 0)
        except ValueError:  # "N/A" before the first frame
            return 0.0

    return Progress(
        frame=int(number("frame")),
        out_seconds=number("out_time_us") / 1_000_000,
        done=block.get("progress") == "end",
    )


def seek_seconds(frame: int, rate: Fraction) -> Fraction:
    """Input-seek target for `frame`: half a frame early, so the first decoded frame at or
    after it is exactly `frame` whatever rounding the demuxer applies."""
    return max(Fraction(0), (Fraction(frame) - Fraction(1, 2)) / rate)


def format_seconds(value: Fraction) -> str:
    # Microsecond precision: half a frame of margin dwarfs the rounding.
    return f"{float(value):.6f}"


def filter_value(text: str) -> str:
    """Escape `text` for use as an option value inside a filter graph string.

    For an unquoted value. Two levels, as ffmpeg parses them: the filter's option parser (backslash, quote, colon)
    and then the graph parser (backslash, quote, brackets, comma, semicolon). User text
    (shot names and the like) is passed by file instead; this is for paths and fixed strings.
    """
    for special in "\\':":
        text = text.replace(special, "\\" + special)
    for special in "\\'[],;":
        text = text.replace(special, "\\" + special)
    return text


def rate_arg(rate: Fraction) -> str:
    return f"{rate.numerator}/{rate.denominator}"
