"""The one place that runs ffmpeg: input checks, progress, error capture, cancellation, atomic outputs.

ffmpeg is always given an argument list (never a shell string). The binary comes from
imageio-ffmpeg, so no system ffmpeg is needed; probing uses PyAV (`media_pipeline.core.probe`).

Every input a caller names with `-i` is checked before ffmpeg starts: a media file must be a
local file that `probe` accepts (allowed demuxers and decoders, pixel limit), an image sequence
pattern is checked on its first file, and ffmpeg itself is told the same rules
(`-protocol_whitelist file`, `-format_whitelist`, `-codec_whitelist`, `-max_pixels`). Only inputs
whose format the caller forces with `-f` are exempt: `lavfi` (generated pictures) and `concat`
(a list of our own files), which take the file protocol only.

Cancellation: ffmpeg runs in its own process group, registered with the `cancel_scope` of the
work that started it (worker threads get it through their context, see `run_in_scope`). When the
scope is cancelled, or its block is left by an exception such as Dagster's run interruption,
every process in it is killed at once and no new one starts; outputs still being written are
discarded, never renamed into place.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import functools
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Literal, ParamSpec, TypeVar, get_args

from media_pipeline.core.errors import Cancelled, FFmpegError, MediaError
from media_pipeline.core.files import atomic_path
from media_pipeline.core.probe import (
    DECODERS,
    DEMUXERS,
    MediaInfo,
    count_pictures,
    is_url,
    local_file,
    max_pixels_limit,
    probe,
)
from media_pipeline.core.rates import NTSC_RATES, exact_rate, rate_arg

__all__ = [
    "NTSC_RATES",
    "CancelScope",
    "Cancelled",
    "FFmpegError",
    "MediaError",
    "MediaInfo",
    "Progress",
    "cancel_scope",
    "count_pictures",
    "drawtext_font",
    "exact_rate",
    "ffmpeg_exe",
    "filter_value",
    "format_seconds",
    "probe",
    "rate_arg",
    "run",
    "run_in_scope",
    "seek_seconds",
]

P = ParamSpec("P")
R = TypeVar("R")

# libx264's presets, fastest first: every area's encode options take one of these.
X264Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"]
X264_PRESETS: tuple[str, ...] = get_args(X264Preset)
# libx264's constant rate factor for 8-bit video: lower is better and larger.
X264_CRF_MIN, X264_CRF_MAX = 0, 51


def crf_problem(crf: int) -> str | None:
    """The sentence for a CRF libx264 refuses, or None."""
    if X264_CRF_MIN <= crf <= X264_CRF_MAX:
        return None
    return f"crf must be between {X264_CRF_MIN} and {X264_CRF_MAX}, not {crf}"


@dataclass(frozen=True)
class Progress:
    frame: int
    out_seconds: float
    done: bool


@cache
def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _tail(text: str, lines: int = 6) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# -- cancellation ----------------------------------------------------------------------------
class CancelScope:
    """The ffmpeg processes of one piece of work (a step), killed together on `cancel()`."""

    def __init__(self) -> None:
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._processes: set[subprocess.Popen[str]] = set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Kill every process of the scope now; none starts after this."""
        with self._lock:
            self._cancelled.set()
            running = list(self._processes)
        for proc in running:
            _kill(proc)

    def check(self, what: str = "the work") -> None:
        if self.cancelled:
            raise Cancelled(f"{what} was not started: the run was cancelled")

    def _start(self, cmd: list[str], what: str) -> subprocess.Popen[str]:
        # Under the lock, so a cancel either sees this process or stops it from starting.
        with self._lock:
            self.check(what)
            proc = _popen(cmd)
            self._processes.add(proc)
            return proc

    def _forget(self, proc: subprocess.Popen[str]) -> None:
        with self._lock:
            self._processes.discard(proc)


_scope: contextvars.ContextVar[CancelScope | None] = contextvars.ContextVar("ffmpeg_cancel_scope", default=None)


@contextlib.contextmanager
def cancel_scope() -> Iterator[CancelScope]:
    """A scope for the ffmpeg work of the block (the current one if already inside a scope).

    Leaving the block by any exception (KeyboardInterrupt, Dagster's
    DagsterExecutionInterruptedError, a failure) cancels it: every ffmpeg still running in it,
    in any thread, is killed.
    """
    current = _scope.get()
    if current is not None:
        yield current
        return
    scope = CancelScope()
    token = _scope.set(scope)
    try:
        yield scope
    except BaseException:
        scope.cancel()
        raise
    finally:
        _scope.reset(token)


def run_in_scope(fn: Callable[P, R]) -> Callable[P, R]:
    """`fn` running in the caller's cancel scope from any thread (e.g. a thread pool's)."""
    scope = _scope.get()

    @functools.wraps(fn)
    def bound(*args: P.args, **kwargs: P.kwargs) -> R:
        token = _scope.set(scope)
        try:
            return fn(*args, **kwargs)
        finally:
            _scope.reset(token)

    return bound


def _popen(cmd: list[str]) -> subprocess.Popen[str]:
    # Its own process group: a terminal's Ctrl-C does not reach it half-way through a write, and
    # a cancel kills it (and anything it started) as one.
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace", process_group=0
    )


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.returncode is not None:
        return  # reaped: its pid (the group's id) may already belong to another process
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


# -- inputs ----------------------------------------------------------------------------------
_GENERATED_FORMATS = ("lavfi",)
_LIST_FORMATS = ("concat",)


def guarded_args(args: Sequence[str], max_pixels: int | None = None) -> list[str]:
    """`args` with every `-i` input checked and ffmpeg's own input restrictions in front of it."""
    max_pixels = max_pixels or max_pixels_limit()
    out: list[str] = []
    options_start = 0
    items = list(args)
    index = 0
    while index < len(items):
        arg = items[index]
        if arg != "-i" or index + 1 >= len(items):
            out.append(arg)
            index += 1
            continue
        options = items[options_start:index]
        target = items[index + 1]
        forced = _option(options, "-f")
        if forced in _GENERATED_FORMATS:
            restrictions: list[str] = []
        elif forced in _LIST_FORMATS:
            restrictions = ["-protocol_whitelist", "file"]
        else:
            _check_input(target, _option(options, "-start_number"), max_pixels)
            restrictions = [
                "-protocol_whitelist", "file",
                "-format_whitelist", ",".join(DEMUXERS),
                "-codec_whitelist", ",".join(DECODERS),
                "-max_pixels", str(max_pixels),
            ]  # fmt: skip
        out += [*restrictions, "-i", target]
        index += 2
        options_start = index
    return out


def _option(options: list[str], name: str) -> str | None:
    value = None
    for position, arg in enumerate(options[:-1]):
        if arg == name:
            value = options[position + 1]
    return value


def _check_input(target: str, start_number: str | None, max_pixels: int) -> None:
    if "%" in target and not Path(target).exists():
        # An image sequence pattern: its files are what the first one is.
        try:
            first = target % int(start_number or 0)
        except (TypeError, ValueError):
            raise MediaError(f"{Path(target).name} is not a valid image sequence pattern") from None
        info = _checked(local_file(first), max_pixels)
        if not info.is_image:
            raise MediaError(f"{Path(first).name} is not a still image, so it cannot be part of an image sequence")
        return
    if not is_url(target) and not Path(target).exists():
        return  # ffmpeg reports it ("No such file or directory") in the caller's words
    _checked(local_file(target), max_pixels)


def _checked(path: Path, max_pixels: int) -> MediaInfo:
    stat = path.stat()
    return _probe_cached(str(path), stat.st_size, stat.st_mtime_ns, max_pixels)


@functools.lru_cache(maxsize=512)
def _probe_cached(path: str, size: int, mtime_ns: int, max_pixels: int) -> MediaInfo:
    # Keyed by size and mtime: a file replaced since is probed again.
    return probe(path, max_pixels=max_pixels)


# -- running ---------------------------------------------------------------------------------
def run(
    args: Sequence[str],
    output: Path | None = None,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    timeout: float | None = None,
    what: str = "ffmpeg",
    max_pixels: int | None = None,
) -> None:
    """Run ffmpeg with `args`; `output` (if given) is appended and written atomically.

    The output is written to a temporary name in the same folder and renamed only after ffmpeg
    exits cleanly, so a failed, killed, cancelled or timed-out encode leaves no file under the
    final name. Inputs are checked first (see the module docstring): MediaError if one is refused;
    `max_pixels` defaults to the process's limit (`probe.set_max_pixels`).
    """
    checked = guarded_args(args, max_pixels)
    if output is None:
        _run(checked, on_progress, timeout, what)
        return
    with atomic_path(output) as tmp:
        _run([*checked, str(tmp)], on_progress, timeout, what)


def _run(
    args: list[str],
    on_progress: Callable[[Progress], None] | None,
    timeout: float | None,
    what: str,
) -> None:
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats", "-progress", "pipe:1"]
    cmd += args
    stderr_lines: collections.deque[str] = collections.deque(maxlen=30)
    scope = _scope.get()
    proc = scope._start(cmd, what) if scope is not None else _popen(cmd)

    def drain_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            stderr_lines.append(line.rstrip())

    reader = threading.Thread(target=drain_stderr, daemon=True)
    reader.start()
    timer = threading.Timer(timeout, _kill, args=(proc,)) if timeout else None
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
        # Interrupted here (Dagster's run termination lands in the step's thread): stop ffmpeg.
        _kill(proc)
        proc.wait()
        raise
    finally:
        if timer:
            timer.cancel()
        if scope is not None:
            scope._forget(proc)
        reader.join(timeout=5)
    if scope is not None and scope.cancelled:
        raise Cancelled(f"{what} was stopped: the run was cancelled")
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


_FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf")


def drawtext_font() -> str:
    """drawtext's font option: DejaVu Sans where installed, else fontconfig's `Sans`."""
    for candidate in _FONTS:
        if Path(candidate).is_file():
            return f"fontfile={filter_value(candidate)}"
    return "font=Sans"


def analyse(args: Sequence[str], *, timeout: float = 600, what: str = "ffmpeg analysis") -> str:
    """Run ffmpeg for what its analysis filters report (loudnorm, astats) and return its stderr.

    Those filters print at the info level, which `run` silences; nothing is written. Inputs are
    checked as `run` checks them.
    """
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info", *guarded_args(args)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise FFmpegError(f"{what} took longer than {timeout:.0f} s and was stopped") from exc
    if proc.returncode != 0:
        raise FFmpegError(f"{what} failed (ffmpeg exit code {proc.returncode})", _tail(proc.stderr), proc.returncode)
    return proc.stderr
