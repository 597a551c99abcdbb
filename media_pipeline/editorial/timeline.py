"""Reading timeline files through OTIO adapters, with errors a user can act on."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio

from media_pipeline.core.ffmpeg import exact_rate

EDL_ADAPTER = "cmx_3600"


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
    return ReadResult(timeline=timeline, adapter=adapter, warnings=warnings)


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
    reason = str(exc).strip() or type(exc).__name__
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
        return f"{path.name} is not a valid CMX 3600 EDL: the EDL reader failed with {type(exc).__name__}: {reason}"
    return f"{path.name} could not be read as {adapter}: {type(exc).__name__}: {reason}"


def timeline_rate(timeline: otio.schema.Timeline) -> Fraction:
    """The timeline's exact frame rate (23.976 read as 24000/1001)."""
    if timeline.global_start_time is not None:
        return exact_rate(timeline.global_start_time.rate)
    return exact_rate(timeline.duration().rate)
