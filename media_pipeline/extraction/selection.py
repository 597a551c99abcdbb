"""Which decoded frames an item asks for, decided as the frames stream past.

**The frame rule.** A frame's position is its own pts in the stream's time base, counted from the
first frame (the first frame is at 0). A timestamp `t` names the frame being displayed at that
instant: the last frame whose position is <= t, with `t` taken to the nearest tick of the stream's
time base (the precision the file stores positions in). A timestamp at or past the end of the last
frame (its position plus its duration) names no frame. A timecode HH:MM:SS:FF is the instant
(frame count at the nominal rate) / rate; written HH:MM:SS;FF at 29.97 or 59.94 it is drop-frame.
`interval` with `every_seconds: s` takes the frames named by 0, s, 2s, ... (one image when several
instants fall on the same frame);
`every_frames: n` takes indices 0, n, 2n, ...
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from media_pipeline.core.frames import DecodedFrame, StreamInfo, timecode_seconds
from media_pipeline.extraction.request import (
    MAX_FRAMES_PER_ITEM,
    Best,
    ByIndex,
    Interval,
    Scenes,
    Timestamps,
    seconds_of,
)


@dataclass
class Pick:
    frame: DecodedFrame
    requested: list[str] = field(default_factory=list)
    score: dict[str, float] | None = None


class Selector:
    """Feed every decoded frame in order, then call `finish`; each returns the frames to write."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def feed(self, frame: DecodedFrame) -> list[Pick]:
        raise NotImplementedError

    def finish(self) -> list[Pick]:
        return []

    @property
    def done(self) -> bool:
        """Nothing later in the stream can be picked: decoding may stop here."""
        return False


class ByIndexSelector(Selector):
    def __init__(self, indices: list[int], labels: dict[int, list[str]] | None = None):
        super().__init__()
        self.wanted = sorted(set(indices))
        self._remaining = set(self.wanted)
        self._labels = labels or {}
        self._last_index = -1

    def feed(self, frame: DecodedFrame) -> list[Pick]:
        self._last_index = frame.index
        if frame.index in self._remaining:
            self._remaining.discard(frame.index)
            return [Pick(frame, self._labels.get(frame.index, [f"frame {frame.index}"]))]
        return []

    @property
    def done(self) -> bool:
        return not self._remaining

    def finish(self) -> list[Pick]:
        if self._remaining:
            missing = ", ".join(str(i) for i in sorted(self._remaining)[:10])
            self.warnings.append(
                f"frames {missing} do not exist: the video has {self._last_index + 1} frames (0..{self._last_index})"
            )
        return []


class EveryNFrames(Selector):
    def __init__(self, step: int):
        super().__init__()
        self.step = step
        self._count = 0

    def feed(self, frame: DecodedFrame) -> list[Pick]:
        if frame.index % self.step or self._count >= MAX_FRAMES_PER_ITEM:
            return []
        self._count += 1
        if self._count == MAX_FRAMES_PER_ITEM:
            self.warnings.append(f"stopped at {MAX_FRAMES_PER_ITEM} frames, the most one item may write")
        return [Pick(frame, [f"every {self.step} frames"])]


def _tick(seconds: Fraction, time_base: Fraction) -> int:
    return math.floor(seconds / time_base + Fraction(1, 2))


class InstantSelector(Selector):
    """The frame displayed at each instant: the last one whose position is <= the instant."""

    def __init__(self, instants: Iterator[tuple[Fraction, str]], *, rate: Fraction, open_ended: bool):
        super().__init__()
        self._instants = instants
        self._rate = rate
        self._open_ended = open_ended  # an interval runs to the end; listed timestamps must all land
        self._next = next(self._instants, None)
        self._previous: DecodedFrame | None = None
        self._first_pts: int | None = None
        self._count = 0

    def _position(self, frame: DecodedFrame) -> int:
        return frame.pts - (self._first_pts or 0)

    def _take(self, frame: DecodedFrame, before: int | None) -> list[Pick]:
        # Every pending instant earlier than `before` (the next frame's position) shows `frame`.
        labels: list[str] = []
        while self._next is not None and (before is None or _tick(self._next[0], frame.time_base) < before):
            if before is None and _tick(self._next[0], frame.time_base) >= self._end_of(frame):
                break
            labels.append(self._next[1])
            self._next = next(self._instants, None)
        if not labels or self._count >= MAX_FRAMES_PER_ITEM:
            return []
        self._count += 1
        if self._count == MAX_FRAMES_PER_ITEM:
            self.warnings.append(f"stopped at {MAX_FRAMES_PER_ITEM} frames, the most one item may write")
        return [Pick(frame, labels)]

    def _end_of(self, frame: DecodedFrame) -> int:
        duration = frame.frame.duration
        if not duration:  # the container did not say: one nominal frame
            duration = max(1, _tick(1 / self._rate, frame.time_base))
        return self._position(frame) + int(duration)

    @property
    def done(self) -> bool:
        return self._next is None

    def feed(self, frame: DecodedFrame) -> list[Pick]:
        if self._first_pts is None:
            self._first_pts = frame.pts
        picks = self._take(self._previous, self._position(frame)) if self._previous is not None else []
        self._previous = frame
        return picks

    def finish(self) -> list[Pick]:
        picks = self._take(self._previous, None) if self._previous is not None else []
        if self._next is not None and not self._open_ended:
            late = [self._next[1], *(label for _, label in self._instants)]
            self.warnings.append(f"{', '.join(late[:10])}: after the last frame; no frame is displayed then")
        return picks


class SceneSelector(Selector):
    """The first frame of each shot: a frame whose mean luma differs from the previous one's by
    `threshold` or more (0..255, on a 64x36 thumbnail) starts a new shot. Dissolves are not cuts."""

    SIZE = (64, 36)

    def __init__(self, threshold: float):
        super().__init__()
        self.threshold = threshold
        self._previous: np.ndarray | None = None

    def feed(self, frame: DecodedFrame) -> list[Pick]:
        small = frame.gray(*self.SIZE).astype(np.int16)
        previous, self._previous = self._previous, small
        if previous is None:
            return [Pick(frame, ["first frame"], {"change": 0.0})]
        change = float(np.abs(small - previous).mean())
        if change >= self.threshold:
            return [Pick(frame, ["cut"], {"change": round(change, 2)})]
        return []


@dataclass
class _Candidate:
    index: int
    sharpness: float
    exposure: float
    fingerprint: np.ndarray


class BestScorer(Selector):
    """First pass of `best`: scores every frame; `choose()` then names the frames to write.

    sharpness: variance of the Laplacian of the luma at 320 px wide (edges and detail);
    exposure: 1 at mid-grey mean luma, falling to 0 at black or white, times the share of pixels
    not clipped; total = sharpness / the sharpest frame's x exposure. Frames are taken best first,
    skipping any whose 16x9 thumbnail is within `DUPLICATE_DISTANCE` (mean luma) of one already taken.
    """

    DUPLICATE_DISTANCE = 6.0

    def __init__(self, count: int):
        super().__init__()
        self.count = count
        self._candidates: list[_Candidate] = []

    def feed(self, frame: DecodedFrame) -> list[Pick]:
        width = min(320, frame.frame.width)
        height = max(2, round(width * frame.frame.height / frame.frame.width))
        luma = frame.gray(width, height).astype(np.float32)
        laplacian = luma[1:-1, 2:] + luma[1:-1, :-2] + luma[2:, 1:-1] + luma[:-2, 1:-1] - 4 * luma[1:-1, 1:-1]
        mean = float(luma.mean())
        clipped = float(((luma <= 8) | (luma >= 247)).mean())
        exposure = max(0.0, 1 - abs(mean - 127.5) / 127.5) * (1 - clipped)
        self._candidates.append(
            _Candidate(frame.index, float(laplacian.var()), exposure, frame.gray(16, 9).astype(np.int16))
        )
        return []

    def choose(self) -> dict[int, dict[str, float]]:
        if not self._candidates:
            return {}
        sharpest = max(c.sharpness for c in self._candidates) or 1.0

        def total(candidate: _Candidate) -> float:
            return candidate.sharpness / sharpest * candidate.exposure

        chosen: dict[int, dict[str, float]] = {}
        taken: list[np.ndarray] = []
        for candidate in sorted(self._candidates, key=lambda c: (-total(c), c.index)):
            if len(chosen) == self.count:
                break
            if any(float(np.abs(candidate.fingerprint - other).mean()) < self.DUPLICATE_DISTANCE for other in taken):
                continue
            taken.append(candidate.fingerprint)
            chosen[candidate.index] = {
                "rank": float(len(chosen) + 1),
                "sharpness": round(candidate.sharpness, 3),
                "exposure": round(candidate.exposure, 4),
                "total": round(total(candidate), 4),
            }
        if len(chosen) < self.count:
            self.warnings.append(
                f"only {len(chosen)} frames are not near-duplicates of each other; asked for {self.count}"
            )
        return chosen


def selector_for(spec: ByIndex | Interval | Timestamps | Scenes, info: StreamInfo) -> Selector:
    """The selector for every mode but `best` (two passes: see BestScorer)."""
    if isinstance(spec, ByIndex):
        return ByIndexSelector(spec.frames)
    if isinstance(spec, Scenes):
        return SceneSelector(spec.threshold)
    if isinstance(spec, Interval):
        if spec.every_frames is not None:
            return EveryNFrames(spec.every_frames)
        step = Fraction(str(spec.every_seconds))
        instants = ((k * step, f"t={float(k * step):g}s") for k in itertools.count())
        return InstantSelector(instants, rate=info.rate, open_ended=True)
    listed = sorted((_instant(value, info.rate), str(value)) for value in spec.timestamps)
    return InstantSelector(iter(listed), rate=info.rate, open_ended=False)


def _instant(value: float | str, rate: Fraction) -> Fraction:
    seconds = seconds_of(value)
    return seconds if seconds is not None else timecode_seconds(str(value), rate)


def planned_frames(spec: ByIndex | Interval | Timestamps | Scenes | Best, info: StreamInfo) -> int:
    """How many frames the item should write, for progress (an estimate for scenes: 1)."""
    if isinstance(spec, ByIndex):
        return len(set(spec.frames))
    if isinstance(spec, Timestamps):
        return len(spec.timestamps)
    if isinstance(spec, Best):
        return spec.count
    if isinstance(spec, Interval):
        if spec.every_frames is not None and info.frames:
            return min(MAX_FRAMES_PER_ITEM, -(-info.frames // spec.every_frames))
        if spec.every_seconds is not None and info.duration:
            return min(MAX_FRAMES_PER_ITEM, math.floor(info.duration / Fraction(str(spec.every_seconds))) + 1)
    return 1
