"""Decoded video frames with the positions the stream itself states (PyAV).

Every frame comes with its `pts` in units of the stream's `time_base`, as the demuxer and decoder
report it. Positions are never worked out as duration x rate, so variable-frame-rate files come
out right. Frames are numbered in the order the decoder hands them out (presentation order),
from 0.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np
from PIL import Image

from media_pipeline.core.ffmpeg import MediaError, exact_rate
from media_pipeline.core.timecode import from_timecode, to_timecode


class DecodeTimeout(MediaError):
    """Decoding took longer than the caller allowed."""


@dataclass(frozen=True)
class StreamInfo:
    width: int
    height: int
    time_base: Fraction
    rate: Fraction  # nominal (average or guessed): for timecodes only, never for positions
    frames: int | None  # the container's own count; None when it does not say
    duration: Fraction | None  # seconds, as the container states it
    codec: str


@dataclass(frozen=True)
class DecodedFrame:
    index: int
    pts: int
    time_base: Fraction
    seconds: Fraction  # (pts - first frame's pts) x time_base, exact
    frame: av.VideoFrame

    def image(self) -> Image.Image:
        # Through a numpy array: PyAV's own to_image() holds the GIL for its whole copy, which
        # serialises the worker threads (measured 2-3x slower with two items at once).
        return Image.fromarray(self.frame.to_ndarray(format="rgb24"))

    def gray(self, width: int, height: int) -> np.ndarray:
        """The frame scaled to `width` x `height`, as 8-bit luma (full range)."""
        small = self.frame.reformat(width=width, height=height, format="gray")
        return small.to_ndarray()


def _unreadable(path: Path, exc: BaseException) -> MediaError:
    return MediaError(
        f"{path.name} is not a readable video file (corrupt, truncated or not video); re-export or re-copy it",
        str(exc),
    )


def _open(path: Path) -> av.container.InputContainer:
    if not path.is_file():
        raise MediaError(f"Media file {path.name} does not exist")
    try:
        # Only the local file protocol: a crafted playlist cannot make the demuxer reach out.
        return av.open(str(path), options={"protocol_whitelist": "file"})
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise _unreadable(path, exc) from exc


def _video_stream(container: av.container.InputContainer, path: Path) -> av.VideoStream:
    if not container.streams.video:
        raise MediaError(f"{path.name} has no video stream; send a video file")
    return container.streams.video[0]


def _info(stream: av.VideoStream) -> StreamInfo:
    rate = stream.average_rate or stream.guessed_rate or Fraction(25)
    duration = stream.duration * stream.time_base if stream.duration and stream.time_base else None
    return StreamInfo(
        width=stream.codec_context.width,
        height=stream.codec_context.height,
        time_base=Fraction(stream.time_base or Fraction(1, 90000)),
        rate=exact_rate(Fraction(rate)),
        frames=stream.frames or None,
        duration=Fraction(duration) if duration is not None else None,
        codec=stream.codec_context.name,
    )


def stream_info(path: Path) -> StreamInfo:
    """The first video stream's size, time base and nominal rate, without decoding."""
    with _open(path) as container:
        return _info(_video_stream(container, path))


def decode(path: Path, *, deadline: float | None = None) -> Iterator[tuple[StreamInfo, DecodedFrame]]:
    """Every frame of the first video stream, in presentation order, with its exact position.

    `deadline` is a `time.monotonic()` value: past it, DecodeTimeout. A stream that breaks off
    part-way raises MediaError naming the last good frame.
    """
    with _open(path) as container:
        stream = _video_stream(container, path)
        stream.thread_type = "AUTO"
        info = _info(stream)
        first_pts: int | None = None
        index = 0
        try:
            for frame in container.decode(stream):
                if deadline is not None and time.monotonic() > deadline:
                    raise DecodeTimeout(f"decoding {path.name} took longer than its time limit and was stopped")
                pts = frame.pts
                if pts is None:
                    raise MediaError(f"{path.name} has frames without timestamps; remux it (ffmpeg -c copy) to mp4")
                if first_pts is None:
                    first_pts = pts
                yield info, DecodedFrame(index, pts, info.time_base, (pts - first_pts) * info.time_base, frame)
                index += 1
        except av.error.FFmpegError as exc:
            raise MediaError(
                f"{path.name} could not be decoded past frame {index} (corrupt or truncated); re-export or re-copy it",
                str(exc),
            ) from exc
        if index == 0:
            raise MediaError(f"{path.name} has a video stream but no decodable frame (corrupt or truncated)")


def timecode(seconds: Fraction, rate: Fraction, drop_frame: bool = False) -> str:
    """HH:MM:SS:FF of the frame nearest `seconds` at `rate` (drop-frame, `;`, if asked at 29.97/59.94)."""
    return to_timecode(math.floor(seconds * rate + Fraction(1, 2)), rate, drop_frame)


def timecode_seconds(text: str, rate: Fraction) -> Fraction:
    """The instant a timecode names: its frame number / `rate`. Written with `;` at 29.97 or 59.94,
    it is drop-frame (`00:01:00;02` is frame 1800, not 1802)."""
    return Fraction(from_timecode(text, rate)) / rate
