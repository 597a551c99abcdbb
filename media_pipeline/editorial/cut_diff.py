"""Cut-to-cut change tracking: what happened to each shot between two versions of a cut.

The categories are the ones editorial and VFX departments already read in ShotGrid's Import Cut
and Avid change lists:

- `new`: in this version, never in an earlier one.
- `reinstated`: in this version, not in the previous one, but in some earlier version.
- `omitted`: in the previous version, not in this one.
- `rescan`: the source range now reaches past the handles of the previous range, so the plate
  pulled for the previous version is too short.
- `cut_change`: trimmed, or extended within the handles.
- `media_changed`: same shot, different media file or reel.
- `moved`: same shot, different place in the edit order.
- `no_change`.

A shot can have several of these at once (moved and trimmed); its `status` is the first in
`PRECEDENCE` (ShotGrid's order) and `categories` lists them all. `changes` says each in a sentence.
Source ranges are compared in whole frames at the new shot's source rate; a previous range at
another rate is converted exactly (by time, with Fraction). Positions in sentences count from 1
as editors do; `old_index` / `new_index` are 0-based like `Shot.index`.

Matching, in this order: by name (duplicate names pair up in order of occurrence), then the
remaining shots by media identity and overlapping source range (a renamed shot).
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from media_pipeline.db.models import CutStatus, CutVersion, Shot
from media_pipeline.editorial.media import file_name, url_to_path

NEW = "new"
REINSTATED = "reinstated"
OMITTED = "omitted"
RESCAN = "rescan"
CUT_CHANGE = "cut_change"
MEDIA_CHANGED = "media_changed"
MOVED = "moved"
NO_CHANGE = "no_change"
PRECEDENCE = (NEW, REINSTATED, OMITTED, RESCAN, CUT_CHANGE, MEDIA_CHANGED, MOVED, NO_CHANGE)

DEFAULT_HANDLES = 8


def media_identity(media_path: str | None, media_url: str | None) -> str | None:
    """The media's file name, as the timeline recorded it where it did.

    The recorded URL comes first because it does not depend on whether this machine found the
    file: a shot whose media went missing, or was relinked, is still on the same reel.
    """
    for location in (media_url, media_path):
        if location:
            name = file_name(url_to_path(location).rstrip("/\\"))
            if name:
                return name
    return None


@dataclass(frozen=True)
class ShotFacts:
    """What the diff needs to know about one shot of one cut version."""

    name: str
    index: int  # 0-based position in the cut
    record_start: int
    record_duration: int
    source_start: int  # frames at source_rate
    source_duration: int
    source_rate: str = "24"  # exact rational, "24000/1001"
    media: str | None = None  # media identity: see media_identity()

    @classmethod
    def from_shot(cls, shot: Shot) -> ShotFacts:
        return cls(
            name=shot.name,
            index=shot.index,
            record_start=shot.record_start,
            record_duration=shot.record_duration,
            source_start=shot.source_start,
            source_duration=shot.source_duration,
            source_rate=shot.source_rate,
            media=media_identity(shot.media_path, shot.media_url),
        )

    @property
    def rate(self) -> Fraction:
        return Fraction(self.source_rate)

    def source_range(self) -> SourceRange:
        return SourceRange(self.source_start, self.source_duration, self.source_rate)


@dataclass(frozen=True)
class SourceRange:
    start: int
    duration: int
    rate: str


@dataclass
class DiffEntry:
    status: str
    name: str
    old_index: int | None
    new_index: int | None
    changes: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)  # every category that applies; status first
    old_source: SourceRange | None = None
    new_source: SourceRange | None = None
    old_name: str | None = None  # set when the shot was matched under another name


@dataclass
class CutDiff:
    entries: list[DiffEntry]
    handles: int

    def summary(self) -> dict[str, int]:
        counts = Counter(entry.status for entry in self.entries)
        return {status: counts[status] for status in PRECEDENCE}

    def changed(self) -> list[DiffEntry]:
        return [entry for entry in self.entries if entry.status != NO_CHANGE or entry.changes]

    def as_dict(self) -> dict[str, Any]:
        return {"handles": self.handles, "summary": self.summary(), "entries": [asdict(e) for e in self.entries]}


def diff_cuts(
    previous: Sequence[ShotFacts],
    current: Sequence[ShotFacts],
    earlier: Sequence[Sequence[ShotFacts]] = (),
    handles: int = DEFAULT_HANDLES,
) -> CutDiff:
    """Compare `current` against `previous`; `earlier` are the versions before `previous`."""
    if handles < 0:
        raise ValueError(f"handles must be 0 or more frames, not {handles}")
    previous = sorted(previous, key=lambda shot: shot.index)
    current = sorted(current, key=lambda shot: shot.index)
    pairs = _match(previous, current)
    moved = _moved(pairs)
    matched_old = {old.index: new.index for old, new in pairs}
    matched_new = {new.index: old for old, new in pairs}

    entries: list[tuple[tuple[int, int, int], DiffEntry]] = []
    occurrence: Counter[str] = Counter()
    earlier_counts = [Counter(shot.name for shot in version) for version in earlier]
    for shot in current:
        occurrence[shot.name] += 1
        old = matched_new.get(shot.index)
        if old is not None:
            entry = _compare(old, shot, handles, shot.index in moved)
        elif any(counts[shot.name] >= occurrence[shot.name] for counts in earlier_counts):
            # Unmatched, so this occurrence of the name is beyond the previous version's count;
            # it is reinstated only if some earlier version had at least this many.
            entry = _entry(
                REINSTATED, shot.name, None, shot, "back in the cut after being omitted from the previous version"
            )
        else:
            entry = _entry(NEW, shot.name, None, shot, "new shot")
        entries.append(((shot.index, 0, 0), entry))

    last_new = -1  # omitted shots are listed after the shot that preceded them, as change lists read
    for shot in previous:
        if shot.index in matched_old:
            last_new = matched_old[shot.index]
            continue
        entries.append(((last_new, 1, shot.index), _entry(OMITTED, shot.name, shot, None, "omitted from the cut")))
    entries.sort(key=lambda item: item[0])
    return CutDiff(entries=[entry for _, entry in entries], handles=handles)


def _entry(status: str, name: str, old: ShotFacts | None, new: ShotFacts | None, sentence: str) -> DiffEntry:
    return DiffEntry(
        status=status,
        name=name,
        old_index=old.index if old else None,
        new_index=new.index if new else None,
        changes=[sentence],
        categories=[status],
        old_source=old.source_range() if old else None,
        new_source=new.source_range() if new else None,
    )


def _match(previous: list[ShotFacts], current: list[ShotFacts]) -> list[tuple[ShotFacts, ShotFacts]]:
    by_name: dict[str, list[ShotFacts]] = defaultdict(list)
    for shot in previous:
        by_name[shot.name].append(shot)
    pairs: list[tuple[ShotFacts, ShotFacts]] = []
    unmatched: list[ShotFacts] = []
    for shot in current:
        if by_name[shot.name]:
            pairs.append((by_name[shot.name].pop(0), shot))
        else:
            unmatched.append(shot)
    leftover = [shot for shots in by_name.values() for shot in shots]
    for shot in unmatched:
        candidates = [old for old in leftover if old.media is not None and old.media == shot.media]
        overlaps = [(_overlap(old, shot), -old.index, old) for old in candidates]
        best = max(overlaps, default=None, key=lambda item: item[:2])
        if best is not None and best[0] > 0:
            leftover.remove(best[2])
            pairs.append((best[2], shot))
    return pairs


def _in_rate(frames: int, rate: Fraction, target: Fraction) -> Fraction:
    return frames * target / rate


def _overlap(old: ShotFacts, new: ShotFacts) -> Fraction:
    start = _in_rate(old.source_start, old.rate, new.rate)
    end = _in_rate(old.source_start + old.source_duration, old.rate, new.rate)
    return min(end, Fraction(new.source_start + new.source_duration)) - max(start, Fraction(new.source_start))


def _moved(pairs: list[tuple[ShotFacts, ShotFacts]]) -> set[int]:
    """New indices of the matched shots that changed place in the edit order.

    The shots that keep their relative order are the longest run of old positions that still
    increases in the new order; only the others moved. Comparing raw positions instead would call
    every shot after an inserted or omitted one "moved".
    """
    ordered = sorted(pairs, key=lambda pair: pair[1].index)
    olds = [old.index for old, _ in ordered]
    tails: list[int] = []  # tails[k]: position in `olds` ending the best increasing run of length k+1
    tail_values: list[int] = []
    back: list[int] = [-1] * len(olds)
    for position, value in enumerate(olds):
        k = bisect.bisect_left(tail_values, value)
        back[position] = tails[k - 1] if k else -1
        if k == len(tails):
            tails.append(position)
            tail_values.append(value)
        else:
            tails[k], tail_values[k] = position, value
    keep: set[int] = set()
    position = tails[-1] if tails else -1
    while position >= 0:
        keep.add(position)
        position = back[position]
    return {ordered[position][1].index for position in range(len(ordered)) if position not in keep}


def _frames(count: Fraction) -> str:
    text = str(count.numerator) if count.denominator == 1 else f"{float(count):.3f}".rstrip("0").rstrip(".")
    return f"{text} frame" if count == 1 else f"{text} frames"


def _compare(old: ShotFacts, new: ShotFacts, handles: int, moved: bool) -> DiffEntry:
    found: set[str] = set()
    changes: list[str] = []
    if old.name != new.name:
        changes.append(f"renamed from {old.name!r} (matched by media and source range)")
    if old.rate != new.rate:
        changes.append(f"source rate changed from {old.source_rate} to {new.source_rate}; frames compared by time")

    def convert(frames: int) -> Fraction:
        return _in_rate(frames, old.rate, new.rate)

    old_start, old_end = convert(old.source_start), convert(old.source_start + old.source_duration)
    # The plate pulled for the previous version: its range plus handles, counted at its own rate.
    plate_start, plate_end = (
        convert(old.source_start - handles),
        convert(old.source_start + old.source_duration + handles),
    )
    new_start, new_end = Fraction(new.source_start), Fraction(new.source_start + new.source_duration)
    for end, grown, past in (
        ("head", old_start - new_start, plate_start - new_start),
        ("tail", new_end - old_end, new_end - plate_end),
    ):
        if grown < 0:
            found.add(CUT_CHANGE)
            changes.append(f"{end} trimmed {_frames(-grown)}")
        elif past > 0:
            found.add(RESCAN)
            changes.append(
                f"{end} extended {_frames(grown)}, {_frames(past)} past the {handles}-frame handles: rescan needed"
            )
        elif grown > 0:
            found.add(CUT_CHANGE)
            changes.append(f"{end} extended {_frames(grown)}")
    if old.media != new.media:
        found.add(MEDIA_CHANGED)
        changes.append(f"media changed from {old.media or '(none)'} to {new.media or '(none)'}")
    if moved:
        found.add(MOVED)
        changes.append(f"moved from position {old.index + 1} to {new.index + 1} in the edit order")
    categories = [status for status in PRECEDENCE if status in found] or [NO_CHANGE]
    return DiffEntry(
        status=categories[0],
        name=new.name,
        old_index=old.index,
        new_index=new.index,
        changes=changes,
        categories=categories,
        old_source=old.source_range(),
        new_source=new.source_range(),
        old_name=old.name if old.name != new.name else None,
    )


def cut_facts(cut: CutVersion) -> list[ShotFacts]:
    return [ShotFacts.from_shot(shot) for shot in cut.shots]


def ingested_versions_before(session: Session, cut: CutVersion) -> list[CutVersion]:
    """Ingested versions of the same cut (project and name) with lower version numbers, oldest first."""
    return list(
        session.scalars(
            sa.select(CutVersion)
            .where(
                CutVersion.project_id == cut.project_id,
                CutVersion.name == cut.name,
                CutVersion.version < cut.version,
                CutVersion.status == CutStatus.INGESTED,
            )
            .order_by(CutVersion.version)
            .options(selectinload(CutVersion.shots))
        )
    )


def load_cut_history(session: Session, cut_version: CutVersion) -> tuple[list[ShotFacts] | None, list[list[ShotFacts]]]:
    """The previous ingested version's shots (None for a first version) and those of the versions
    before it, oldest first: the arguments `diff_cuts` takes."""
    versions = [cut_facts(version) for version in ingested_versions_before(session, cut_version)]
    if not versions:
        return None, []
    return versions[-1], versions[:-1]
