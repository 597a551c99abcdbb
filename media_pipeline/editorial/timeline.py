"""Reading timeline files through OTIO adapters, with errors a user can act on."""

from __future__ import annotations

import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import opentimelineio as otio

from media_pipeline.core.ffmpeg import exact_rate
from media_pipeline.core.redact import without_paths
from media_pipeline.core.timecode import DROP_FRAME_RATES, RateError, parse_rate, rate_label, rate_text
from media_pipeline.editorial.fcpx import read_fcpx

EDL_ADAPTER = "cmx_3600"
MAX_RATE = 1000  # frames per second: above any camera's; larger values are typos or hostile
# Frame numbers and durations: 48 days at 24 fps, 27 hours at 1000 fps; also keeps every frame
# count inside the database's 32-bit integer columns however they are summed.
MAX_FRAMES = 100_000_000
# Adapters fail on unexpected content with these; their messages describe the content. Any
# other exception type is a reader's internal error, whose text means nothing to a user.
_DESCRIPTIVE = (ValueError, otio.exceptions.OTIOError, SyntaxError)
FCP7_ADAPTER = "fcp_xml"
FCPX_ADAPTER = "fcpx_xml"
ALE_ADAPTER = "ale"
AAF_ADAPTER = "AAF"
OTIOZ_ADAPTER = "otioz"
DEFAULT_EDL_RATE = Fraction(24)
# Where the pipeline keeps what it learnt reading a timeline (drop-frame, skipped clips) in the
# stored OTIO, so that a later step, and an exported file, still know it.
METADATA_KEY = "media_pipeline"
_EDL_TIMECODE = re.compile(r"\b(\d\d:\d\d:\d\d):(\d\d)\b")


class TimelineError(ValueError):
    """A timeline could not be read; the message says why and what to do."""


@dataclass(frozen=True)
class ReadOptions:
    """How to read a timeline file. `rate` matters only to formats that carry none (EDL)."""

    rate: Fraction | None = None
    ignore_timecode_mismatch: bool = False

    def __post_init__(self) -> None:
        # Callers hand over what users typed (25, 23.976, "30000/1001"): keep it exact.
        if self.rate is not None and not isinstance(self.rate, Fraction):
            object.__setattr__(self, "rate", user_rate(self.rate))

    def as_dict(self) -> dict[str, Any]:
        return {
            "rate": rate_text(self.rate) if self.rate is not None else None,
            "ignore_timecode_mismatch": self.ignore_timecode_mismatch,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReadOptions:
        return cls(
            rate=parse_rate(data["rate"]) if data.get("rate") else None,
            ignore_timecode_mismatch=bool(data.get("ignore_timecode_mismatch")),
        )


def user_rate(value: float | int | str | Fraction | None) -> Fraction | None:
    """A rate a user gave (API form, watch.json, setting); TimelineError with a sentence if bad."""
    if value is None or value == "":
        return None
    try:
        return parse_rate(value)
    except RateError as exc:
        raise TimelineError(str(exc)) from None


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
    warnings: list[str] = []
    drop_frame = False
    sequence: ElementTree.Element | None = None  # FCP X: the project's sequence
    try:
        if adapter == EDL_ADAPTER:
            rate = options.rate or DEFAULT_EDL_RATE
            text, drop_frame = _edl_text(path, rate)
            # The adapter checks timecodes against OTIO's list of SMPTE rates, which holds the
            # exact NTSC rates (24000/1001 as a float), not a rounded 23.976.
            result = otio.adapters.read_from_string(
                text, adapter_name=adapter, rate=float(rate), ignore_timecode_mismatch=options.ignore_timecode_mismatch
            )
        else:
            if options.rate:
                warnings.append(
                    f"rate {rate_label(options.rate)} was ignored: {path.suffix} files carry their own frame rate"
                )
            if adapter == OTIOZ_ADAPTER:
                result = _read_otioz(path)
            elif adapter == FCPX_ADAPTER:
                root = _fcpx_root(path)  # a malformed file is named as such, not as the reader's crash
                result = read_fcpx(root)
                sequence = _fcpx_sequence(root)
                drop_frame = _fcpx_drop_frame(sequence)
            else:
                result = otio.adapters.read_from_file(str(path), adapter_name=adapter)
                if adapter == AAF_ADAPTER:
                    drop_frame = _aaf_drop_frame(path)
    except TimelineError:
        raise
    except Exception as exc:  # adapters raise anything from ValueError to AttributeError
        raise TimelineError(_explain(path, adapter, options.rate or DEFAULT_EDL_RATE, exc)) from exc
    if adapter == ALE_ADAPTER:
        result = _ale_timeline(path, result, warnings)
    timeline = _first_timeline(path, result, warnings)
    if adapter == EDL_ADAPTER:
        _edl_record_start(timeline)
    if adapter == FCPX_ADAPTER:
        _fcpx_record_start(sequence, timeline)
    if adapter in (FCPX_ADAPTER, AAF_ADAPTER):
        drop_frame = drop_frame and timeline_rate(timeline) in DROP_FRAME_RATES
    if adapter == FCP7_ADAPTER:
        warnings += _apply_fcp_enabled(timeline)
    timeline.metadata[METADATA_KEY] = {**timeline.metadata.get(METADATA_KEY, {}), "drop_frame": drop_frame}
    check_numbers(path, timeline)
    return ReadResult(timeline=timeline, adapter=adapter, warnings=warnings)


def _edl_text(path: Path, rate: Fraction) -> tuple[str, bool]:
    """The EDL's text with drop-frame made explicit, and whether any of it is drop-frame.

    OTIO reads a timecode as drop-frame only when written `HH:MM:SS;FF`; many EDLs instead
    declare `FCM: DROP FRAME` and write every timecode with colons. Events after such a line
    get `;` here so that their frames are counted as drop-frame.
    """
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # older Avid EDLs: clip names in the system code page
    lines: list[str] = []
    drop_frame = False
    declared = False
    for line in text.splitlines():
        stripped = line.strip().upper()
        if stripped.startswith("FCM"):
            declared = "NON" not in stripped and "DROP" in stripped
        elif declared and line[:1].isdigit():
            line = _EDL_TIMECODE.sub(r"\1;\2", line)
        if line[:1].isdigit() and re.search(r"\d\d:\d\d:\d\d[;.]\d\d", line):
            drop_frame = True
        lines.append(line)
    if drop_frame and rate not in DROP_FRAME_RATES:
        raise TimelineError(
            f"{path.name} has drop-frame timecode, which exists only at 29.97 and 59.94 fps, not at "
            f"{rate_label(rate)}: publish it again with rate=29.97 (or 59.94)"
        )
    return "\n".join(lines) + "\n", drop_frame


def _edl_record_start(timeline: otio.schema.Timeline) -> None:
    """Make the EDL's first record timecode the timeline's start.

    The EDL reader keeps where each track's record side starts (01:00:00:00, say) as a negative
    start of the track's source range, so record timecodes would count from 00:00:00:00. The
    earliest becomes `global_start_time`; a track starting later gets a leading gap instead.
    """
    starts = {
        id(track): -track.source_range.start_time
        for track in timeline.tracks
        if track.source_range is not None and track.source_range.start_time.value < 0
    }
    if not starts:
        return
    first = min(starts.values(), key=lambda rt: rt.to_seconds())
    for track in timeline.tracks:
        start = starts.get(id(track))
        if start is None:
            continue
        track.source_range = None
        late = start - first
        if late.value > 0:
            track.insert(0, otio.schema.Gap(source_range=otio.opentime.TimeRange(duration=late)))
    timeline.global_start_time = first


def _read_otioz(path: Path) -> Any:
    """An OTIOZ bundle with its media unpacked next to it (once), its clips pointing there.

    Inside the bundle media is named relative to it (`media/plate.mov`), which means nothing once
    read: the pipeline would find no media at all.
    """
    folder = path.with_name(path.name + ".bundle")
    if not folder.is_dir():
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".bundle-") as scratch:
            result = otio.adapters.read_from_file(str(path), adapter_name=OTIOZ_ADAPTER, extract_to_directory=scratch)
            os.replace(scratch, folder)  # whole or not at all
            Path(scratch).mkdir()  # for TemporaryDirectory's own clean-up
    else:
        result = otio.adapters.read_from_file(str(path), adapter_name=OTIOZ_ADAPTER)
    for clip in result.find_children(descended_from_type=otio.schema.Clip):
        media = clip.media_reference
        if isinstance(media, otio.schema.ExternalReference) and media.target_url and "://" not in media.target_url:
            local = (folder / otio.url_utils.filepath_from_url(media.target_url)).resolve()
            if local.is_relative_to(folder.resolve()):
                media.target_url = local.as_uri()
    return result


def _fcpx_root(path: Path) -> ElementTree.Element:
    try:
        return ElementTree.parse(path).getroot()
    except ElementTree.ParseError as exc:
        raise TimelineError(f"{path.name} is not well-formed XML ({exc}); export it again from Final Cut Pro") from None


def _fcpx_sequence(root: ElementTree.Element) -> ElementTree.Element | None:
    """The sequence the timeline is read from: the first project's. A compound clip's sequence
    (inside a `media` resource, listed before the project) has a timecode of its own."""
    for project in root.iter("project"):
        sequence = project.find("sequence")
        if sequence is not None:
            return sequence
    return next(root.iter("sequence"), None)


def _fcpx_drop_frame(sequence: ElementTree.Element | None) -> bool:
    """Whether the project's timecode is drop-frame (`tcFormat="DF"`, as Final Cut Pro writes 29.97
    and 59.94 projects by default); its times are seconds, so only the timecode shown depends on it."""
    return sequence is not None and sequence.get("tcFormat") == "DF"


def _aaf_drop_frame(path: Path) -> bool:
    """Whether the composition's timecode track is drop-frame, as Media Composer marks a 29.97 DF
    sequence. The AAF adapter reads the start timecode but leaves this flag out of the OTIO."""
    import aaf2

    with aaf2.open(str(path), "r") as aaf:
        for mob in aaf.content.toplevel():
            for slot in mob.slots:
                segment = slot.segment
                for component in getattr(segment, "components", None) or [segment]:
                    if isinstance(component, aaf2.components.Timecode):
                        return bool(component.drop)
            return False  # the adapter reads the first top-level composition; so does this
    return False


def _fcpx_record_start(sequence: ElementTree.Element | None, timeline: otio.schema.Timeline) -> None:
    """The FCP X reader turns the sequence's start timecode (`tcStart`) into a leading gap on
    every track; make it the timeline's start instead, as the EDL's first record timecode is."""
    start_text = sequence.get("tcStart") if sequence is not None else None
    if not start_text or start_text == "0s":
        return
    rate = timeline_rate(timeline)
    start = round(Fraction(start_text.removesuffix("s")) * rate)
    for track in timeline.tracks:
        first = track[0] if len(track) else None
        if not isinstance(first, otio.schema.Gap) or round(seconds_of(first.duration()) * rate) < start:
            return  # not the reader's shape: leave the timeline as it is
    for track in timeline.tracks:
        gap = track[0]
        rest = round(seconds_of(gap.duration()) * rate) - start
        if rest:
            gap.source_range = otio.opentime.TimeRange(duration=otio.opentime.RationalTime(rest, float(rate)))
        else:
            del track[0]
    timeline.global_start_time = otio.opentime.RationalTime(start, float(rate))


def _ale_timeline(path: Path, result: Any, warnings: list[str]) -> otio.schema.Timeline:
    """An ALE is a list of clips (a bin), not an edit: its clips become one track, one after
    another in the order listed, so each is a shot."""
    clips = list(result.find_clips()) if isinstance(result, otio.schema.SerializableCollection) else []
    if not clips:
        raise TimelineError(f"{path.name} lists no clips; an ALE needs a Column and a Data section with one row a clip")
    timeline = otio.schema.Timeline(name=path.stem)
    track = otio.schema.Track(name="ALE", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    for clip in clips:
        track.append(clip.clone())
    warnings.append(f"{path.name} is a clip list (ALE): its {len(clips)} clips were placed one after another")
    return timeline


def seconds_of(rt: otio.opentime.RationalTime) -> Fraction:
    return Fraction(rt.value) / exact_rate(rt.rate)


def _apply_fcp_enabled(timeline: otio.schema.Timeline) -> list[str]:
    """Premiere and FCP 7 write `<enabled>FALSE</enabled>` on clips and tracks that are switched
    off; the FCP XML adapter keeps it only as metadata, so carry it over to OTIO's own flag."""
    notes: list[str] = []
    for track in timeline.tracks:
        if _fcp_disabled(track) and track.enabled:
            track.enabled = False
            notes.append(f"{track.kind.lower()} track {track.name or '(unnamed)'!r} is disabled and was left out")
        for item in track.find_children(descended_from_type=otio.core.Item, shallow_search=False):
            if _fcp_disabled(item) and item.enabled:
                item.enabled = False
                if track.enabled and track.kind == otio.schema.TrackKind.Video:
                    notes.append(f"clip {item.name!r} is disabled and was left out")
    return notes


def _fcp_disabled(item: otio.core.SerializableObjectWithMetadata) -> bool:
    value = (item.metadata.get("fcp_xml") or {}).get("enabled")
    return isinstance(value, str) and value.strip().upper() == "FALSE"


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


def _explain(path: Path, adapter: str, rate: Fraction, exc: Exception) -> str:
    if isinstance(exc, RecursionError | MemoryError):
        return f"{path.name} is nested too deeply or too large to read as {adapter}"
    if isinstance(exc, _DESCRIPTIVE):
        reason = without_paths(str(exc).strip(), [path])[:300] or "it is malformed"
    else:  # a reader's internal error: its text means nothing to a user
        reason = "its content is not what the reader expects"
    if adapter == EDL_ADAPTER:
        label = rate_label(rate)
        if "Frame rate mismatch" in reason or "has frames beyond" in reason:
            return (
                f"{path.name}: its timecodes do not fit {label} fps ({reason}). An EDL carries no frame "
                "rate: publish it again with the rate it was cut at (for example rate=25 or rate=23.976)"
            )
        if "does not support this rate" in reason:
            return (
                f"{path.name}: {label} fps is not a timecode rate, so the EDL's timecodes cannot be read at it; "
                "publish it again with the rate it was cut at (24, 25, 30, 23.976, 29.97, 59.94 ...)"
            )
        if "duration don't match" in reason:
            return (
                f"{path.name}: an event's source and record durations disagree at {label} fps ({reason}). "
                "Check the rate, or publish with ignore_timecode_mismatch to trust the record side"
            )
        return f"{path.name} is not a valid CMX 3600 EDL: {reason}"
    return f"{path.name} could not be read as {adapter}: {reason} (export it again from the editing system)"


def drop_frame_of(timeline: otio.schema.Timeline) -> bool:
    """Whether the timeline's timecode is drop-frame (as read from the file it came from)."""
    return bool((timeline.metadata.get(METADATA_KEY) or {}).get("drop_frame")) and (
        timeline_rate(timeline) in DROP_FRAME_RATES
    )


def timeline_rate(timeline: otio.schema.Timeline) -> Fraction:
    """The timeline's exact frame rate (23.976 read as 24000/1001)."""
    if timeline.global_start_time is not None:
        return exact_rate(timeline.global_start_time.rate)
    return exact_rate(timeline.duration().rate)
