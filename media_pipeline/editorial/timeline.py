"""Reading timeline files through OTIO adapters, with errors a user can act on."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio

from media_pipeline.core.ffmpeg import exact_rate
from media_pipeline.core.redact import without_paths

EDL_ADAPTER = "cmx_3600"
MAX_RATE = 1000  # frames per second: above any camera's; larger values are typos or hostile
# Frame numbers and durations: 48 days at 24 fps, 27 hours at 1000 fps; also keeps every frame
# count inside the database's 32-bit integer columns however they are summed.
MAX_FRAMES = 100_000_000
# Adapters fail on unexpected content with these; their messages describe the content. Any
# other exception type is a reader's internal error, whose text means nothing to a user.
_DESCRIPTIVE = (ValueError, otio.exceptions.OTIOError, SyntaxError)


class TimelineError(ValueError):
    """A timeline could not be read; the message says why and what to do."""


@dataclass(frozen=True)
class ReadOptions:
    """How to read a timeline file. `rate` matters only to formats that carry none (EDL)."""

    rate: float | None = None
    ignore_timecode_mismatch: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"rate": self.rate, "ignore_timecode_mismatch": self.ignore_timecode_mismatch}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReadOptions:
        return cls(rate=data.get("rate"), ignore_timecode_mismatch=bool(data.get("ignore_timecode_mismatch")))


@dataclass
class ReadResult:
    timeline: otio.schema.Timeline
    adapter: str
    warnings: list[str] = field(default_factory=list)


def readable_suffixes() -> list[str]:
    return sorted(otio.adapters.suffixes_with_defined_adapters(read=True))


def adapter_for(path: Path) -> str:
    try:
        return otio.adapters.from_filepath(str(path)).name
    except otio.exceptions.NoKnownAdapterForExtensionError:
        known = ", ".join(f".{s}" for s in readable_suffixes())
        raise TimelineError(
            f"{path.name}: no installed OTIO adapter reads '{path.suffix or '(no extension)'}' files; "
            f"export the timeline as one of {known}"
        ) from None


def read_timeline(path: Path, options: ReadOptions = ReadOptions()) -> ReadResult:
    """Read any format an installed adapter reads; raise TimelineError with a reason if not."""
    adapter = adapter_for(path)
    kwargs: dict[str, Any] = {}
    warnings: list[str] = []
    if adapter == EDL_ADAPTER:
        kwargs["rate"] = options.rate or 24
        kwargs["ignore_timecode_mismatch"] = options.ignore_timecode_mismatch
    elif options.rate:
        warnings.append(f"rate {options.rate:g} was ignored: {path.suffix} files carry their own frame rate")
    try:
        result = otio.adapters.read_from_file(str(path), adapter_name=adapter, **kwargs)
    except Exception as exc:  # adapters raise anything from ValueError to AttributeError
        raise TimelineError(_explain(path, adapter, kwargs, exc)) from exc
    timeline = _first_timeline(path, result, warnings)
    check_numbers(path, timeline)
    return ReadResult(timeline=timeline, adapter=adapter, warnings=warnings)


def check_numbers(path: Path, timeline: otio.schema.Timeline) -> None:
    """Refuse rates and frame numbers no real timeline has (rate 0, 1e300 frames), with what is
    accepted, before anything divides by them or stores them."""

    def check(what: str, time: otio.opentime.RationalTime | None) -> None:
        if time is None:
            return
        if not (math.isfinite(time.rate) and 0 < time.rate <= MAX_RATE):
            raise TimelineError(
                f"{path.name}: {what} has frame rate {time.rate:g}; rates above 0 and up to {MAX_RATE} fps are "
                "accepted: fix the rate in the editing system and export again"
            )
        if not (math.isfinite(time.value) and abs(time.value) <= MAX_FRAMES):
            raise TimelineError(
                f"{path.name}: {what} is {time.value:g} frames; frame numbers and durations up to {MAX_FRAMES:,} "
                "frames are accepted"
            )

    def check_range(what: str, time_range: otio.opentime.TimeRange | None) -> None:
        if time_range is None:
            return
        check(f"{what} start", time_range.start_time)
        check(f"{what} duration", time_range.duration)
        if time_range.duration.value < 0:
            raise TimelineError(
                f"{path.name}: {what} has a negative duration; durations of 0 frames or more are accepted"
            )

    check("the timeline's start time", timeline.global_start_time)
    for item in timeline.find_children():
        name = f"{type(item).__name__.lower()} {item.name!r}" if item.name else type(item).__name__.lower()
        check_range(f"in {name}, the source range", getattr(item, "source_range", None))
        if isinstance(item, otio.schema.Transition):
            check(f"in {name}, the in offset", item.in_offset)
            check(f"in {name}, the out offset", item.out_offset)
        reference = getattr(item, "media_reference", None)
        if reference is not None:
            check_range(f"in {name}, the available media range", reference.available_range)
            if isinstance(reference, otio.schema.ImageSequenceReference) and not (0 < reference.rate <= MAX_RATE):
                raise TimelineError(
                    f"{path.name}: in {name}, the image sequence has rate {reference.rate:g}; rates above 0 and up "
                    f"to {MAX_RATE} fps are accepted"
                )
    try:
        duration = timeline.duration()
    except Exception:  # an item whose duration OTIO itself cannot compute
        raise TimelineError(f"{path.name}: the timeline's duration cannot be computed from its items") from None
    check("the timeline's duration", duration)


def _first_timeline(path: Path, result: Any, warnings: list[str]) -> otio.schema.Timeline:
    if isinstance(result, otio.schema.Timeline):
        return result
    if isinstance(result, otio.schema.SerializableCollection):
        timelines = list(result.find_children(descended_from_type=otio.schema.Timeline))
        if timelines:
            if len(timelines) > 1:
                warnings.append(
                    f"{path.name} holds {len(timelines)} timelines; the first, {timelines[0].name!r}, was used"
                )
            return timelines[0]
    raise TimelineError(f"{path.name} holds no timeline (it reads as a {type(result).__name__})")


def _explain(path: Path, adapter: str, kwargs: dict[str, Any], exc: Exception) -> str:
    if isinstance(exc, RecursionError | MemoryError):
        return f"{path.name} is nested too deeply or too large to read as {adapter}"
    if isinstance(exc, _DESCRIPTIVE):
        reason = without_paths(str(exc).strip(), [path])[:300] or "it is malformed"
    else:  # a reader's internal error: its text means nothing to a user
        reason = "its content is not what the reader expects"
    if adapter == EDL_ADAPTER:
        rate = kwargs["rate"]
        if "Frame rate mismatch" in reason or "has frames beyond" in reason:
            return (
                f"{path.name}: its timecodes do not fit {rate:g} fps ({reason}). An EDL carries no frame "
                "rate: publish it again with the rate it was cut at (for example rate=25)"
            )
        if "duration don't match" in reason:
            return (
                f"{path.name}: an event's source and record durations disagree at {rate:g} fps ({reason}). "
                "Check the rate, or publish with ignore_timecode_mismatch to trust the record side"
            )
        return f"{path.name} is not a valid CMX 3600 EDL: {reason}"
    return f"{path.name} could not be read as {adapter}: {reason} (export it again from the editing system)"


def timeline_rate(timeline: otio.schema.Timeline) -> Fraction:
    """The timeline's exact frame rate (23.976 read as 24000/1001)."""
    if timeline.global_start_time is not None:
        return exact_rate(timeline.global_start_time.rate)
    return exact_rate(timeline.duration().rate)
