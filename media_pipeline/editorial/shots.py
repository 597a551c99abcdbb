"""Which clips of a timeline are its shots, and where they sit, in integer frames.

The shot rule (also in the README):
1. Only enabled video tracks count; audio tracks never make shots.
2. Several video tracks are flattened top-down, as a viewer sees them: where an upper track has a
   clip it wins, where it has a gap the track below shows through (`otio.algorithms.flatten_stack`).
3. A nested stack or track inside a track is flattened the same way, trimmed to the nested item's
   own source range, and its visible clips become shots at their place in the parent timeline.
4. Gaps are not shots; transitions are not shots (they are noted on the shots they join).
5. Every remaining clip is one shot, in record order, indexed from 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import opentimelineio as otio

from media_pipeline.core.ffmpeg import exact_rate
from media_pipeline.editorial.timeline import TimelineError, timeline_rate


def seconds(rt: otio.opentime.RationalTime) -> Fraction:
    """A RationalTime as exact seconds (23.976 read as 24000/1001)."""
    return Fraction(rt.value) / exact_rate(rt.rate)


def to_frames(rt: otio.opentime.RationalTime, rate: Fraction) -> int:
    return round(seconds(rt) * rate)


@dataclass
class ClipShot:
    """One shot as the timeline names it, before its media is looked at."""

    index: int
    name: str
    track: str
    record_start: int  # frames at the timeline rate from the timeline's first frame
    record_duration: int
    source_start: int  # frames at source_rate, as named by the timeline (timecode frames)
    source_duration: int
    source_rate: Fraction
    clip: otio.schema.Clip
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class ShotList:
    rate: Fraction
    global_start_frame: int
    duration: int
    shots: list[ClipShot]
    warnings: list[str]


def extract_shots(timeline: otio.schema.Timeline) -> ShotList:
    video = [track for track in timeline.video_tracks() if track.enabled]
    if not video:
        audio = len(timeline.audio_tracks())
        held = f"it holds {audio} audio track(s) only" if audio else "it holds no tracks at all"
        raise TimelineError(f"the timeline has no video track ({held}); there are no shots to extract")
    rate = timeline_rate(timeline)
    start = to_frames(timeline.global_start_time, rate) if timeline.global_start_time is not None else 0
    flat = otio.algorithms.flatten_stack(video)
    shots: list[ClipShot] = []
    warnings: list[str] = []
    _walk(flat, Fraction(0), rate, video[0].name if len(video) == 1 else "flattened", shots, warnings)
    if not shots:
        raise TimelineError("the timeline's video tracks hold no clips (only gaps); there are no shots to extract")
    for index, shot in enumerate(shots):
        shot.index = index
        if not shot.name:
            shot.name = f"shot_{index + 1:03d}"
    return ShotList(
        rate=rate,
        global_start_frame=start,
        duration=to_frames(flat.duration(), rate),
        shots=shots,
        warnings=warnings,
    )


def _walk(
    track: otio.schema.Track,
    offset: Fraction,
    rate: Fraction,
    track_name: str,
    shots: list[ClipShot],
    warnings: list[str],
) -> None:
    """Collect clips of `track`; `offset` is the track's start in the timeline, in seconds."""
    children = list(track)
    for position, item in enumerate(children):
        if isinstance(item, otio.schema.Transition | otio.schema.Gap):
            continue
        placed = item.range_in_parent()
        start = offset + seconds(placed.start_time)
        if isinstance(item, otio.schema.Clip):
            if not item.enabled:
                warnings.append(f"clip {item.name!r} is disabled and was left out")
                continue
            shots.append(_clip_shot(item, start, rate, track_name, _transitions(children, position)))
        elif isinstance(item, otio.schema.Stack | otio.schema.Track):
            inner = _flatten_nested(item)
            trimmed = otio.algorithms.track_trimmed_to_range(inner, item.trimmed_range())
            _walk(trimmed, start, rate, f"{track_name}/{item.name}", shots, warnings)
        else:
            warnings.append(f"{type(item).__name__} {item.name!r} is not a clip and was left out")


def _flatten_nested(item: otio.core.Composition) -> otio.schema.Track:
    if isinstance(item, otio.schema.Track):
        return item
    layers = []
    for child in item:
        if isinstance(child, otio.schema.Track):
            if child.kind == otio.schema.TrackKind.Video and child.enabled:
                layers.append(child)
        elif getattr(child, "enabled", True):
            layers.append(otio.schema.Track(children=[child.clone()]))
    return otio.algorithms.flatten_stack(layers) if layers else otio.schema.Track()


def _transitions(children: list[Any], position: int) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, neighbour in (("in", position - 1), ("out", position + 1)):
        if 0 <= neighbour < len(children) and isinstance(children[neighbour], otio.schema.Transition):
            transition = children[neighbour]
            found[f"transition_{key}"] = {
                "type": transition.transition_type,
                "in_offset": round(transition.in_offset.value),
                "out_offset": round(transition.out_offset.value),
            }
    return found


def _clip_shot(
    clip: otio.schema.Clip, record_start: Fraction, rate: Fraction, track: str, details: dict[str, Any]
) -> ClipShot:
    source = clip.trimmed_range()
    source_rate = exact_rate(source.start_time.rate)
    effects = [effect.effect_name or type(effect).__name__ for effect in clip.effects]
    if effects:
        details["effects"] = effects
    return ClipShot(
        index=0,
        name=clip.name or "",
        track=track,
        record_start=round(record_start * rate),
        record_duration=to_frames(source.duration, rate),
        source_start=to_frames(source.start_time, source_rate),
        source_duration=to_frames(source.duration, source_rate),
        source_rate=source_rate,
        clip=clip,
        details=details,
    )
