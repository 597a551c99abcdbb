"""The frame plan: every duration becomes whole frames once, at the exact rational rate.

Rounding rule (README, "Slideshows"): a duration in seconds becomes `floor(seconds * fps + 1/2)`
frames (nearest frame, halves up), with the seconds read exactly as written (2.5 is 5/2, not a
float); a voiceover's length (its samples / its sample rate) rounds *up*, so the whole voice fits.
A scene lasts its `duration`, else its voiceover's length, else `minShot`, then clamped to
`[minShot, maxShot]` in frames. Nothing is ever added up in seconds: scene starts and the total
are sums of frames, so the output has exactly `sum(scene frames) - (scenes - 1) * xfade frames`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from media_pipeline.core.audio import frame_to_sample
from media_pipeline.core.rates import seconds_to_frames


class PlanError(ValueError):
    """Options that cannot make a video; `field` names the option."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class TimingOptions:
    rate: Fraction
    min_shot: float
    max_shot: float
    xfade: float


@dataclass(frozen=True)
class ScenePlan:
    index: int
    start: int  # first output frame
    frames: int
    source: Literal["duration", "voiceover", "minShot"]
    clamped: bool  # the wanted length was outside [minShot, maxShot]
    wanted: int  # frames before clamping

    @property
    def end(self) -> int:
        return self.start + self.frames


@dataclass(frozen=True)
class FramePlan:
    rate: Fraction
    scenes: tuple[ScenePlan, ...]
    xfade_frames: int

    @property
    def total_frames(self) -> int:
        return sum(s.frames for s in self.scenes) - (len(self.scenes) - 1) * self.xfade_frames

    def sample(self, frame: int) -> int:
        return frame_to_sample(frame, self.rate)

    @property
    def total_samples(self) -> int:
        return self.sample(self.total_frames)


def timing_frames(options: TimingOptions) -> tuple[int, int, int]:
    """(minShot, maxShot, xfade) in frames, or PlanError naming the option."""
    rate = options.rate
    low, high = seconds_to_frames(options.min_shot, rate), seconds_to_frames(options.max_shot, rate)
    xfade = seconds_to_frames(options.xfade, rate)
    if low < 1:
        raise PlanError("minShot", f"minShot {options.min_shot} s is shorter than one frame at {rate} fps")
    if high < low:
        raise PlanError(
            "maxShot", f"maxShot ({options.max_shot} s) must not be shorter than minShot ({options.min_shot} s)"
        )
    if 2 * xfade > low:
        # A scene between two others overlaps both neighbours: it must be at least two crossfades long.
        raise PlanError("xfade", f"xfade ({options.xfade} s) must be at most half of minShot ({options.min_shot} s)")
    return low, high, xfade


def plan_frames(
    durations: list[float | None], voice_lengths: list[Fraction | None], options: TimingOptions
) -> FramePlan:
    """One ScenePlan per scene; `voice_lengths` are exact seconds (samples / sample rate) or None."""
    low, high, xfade = timing_frames(options)
    scenes: list[ScenePlan] = []
    start = 0
    for index, (duration, voice) in enumerate(zip(durations, voice_lengths, strict=True)):
        if duration is not None:
            wanted, source = seconds_to_frames(duration, options.rate), "duration"
        elif voice is not None:
            wanted, source = math.ceil(voice * options.rate), "voiceover"
        else:
            wanted, source = low, "minShot"
        frames = min(max(wanted, low), high)
        scenes.append(ScenePlan(index, start, frames, source, frames != wanted, wanted))  # type: ignore[arg-type]
        start += frames - xfade
    return FramePlan(options.rate, tuple(scenes), xfade)
