"""A simple cut diff: shots matched by name.

Deliberately small and self-contained: a full editorial diff (moves, trims, media changes
across renamed shots) replaces this module later, behind the same `diff_cuts` signature.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from api.schemas import CutDiff, DiffShot, DiffSummary
from media_pipeline.db.models import Shot

# What makes a shot with the same name "changed".
COMPARED_FIELDS = (
    "record_start",
    "record_duration",
    "source_start",
    "source_duration",
    "source_rate",
    "media_path",
    "media_status",
)


def _keyed(shots: Sequence[Shot]) -> dict[tuple[str, int], Shot]:
    # Two shots may share a name (the same clip used twice); the n-th of a name in one cut is
    # matched with the n-th in the other.
    seen: dict[str, int] = defaultdict(int)
    keyed = {}
    for shot in sorted(shots, key=lambda s: s.index):
        keyed[(shot.name, seen[shot.name])] = shot
        seen[shot.name] += 1
    return keyed


def diff_cuts(cut_id: int, shots: Sequence[Shot], against: int, against_shots: Sequence[Shot]) -> CutDiff:
    """What changed from cut `against` to cut `cut_id`."""
    new, old = _keyed(shots), _keyed(against_shots)
    added, removed, changed, unchanged = [], [], [], []
    for key, shot in new.items():
        before = old.get(key)
        if before is None:
            added.append(_entry(shot, None, []))
            continue
        changes = [name for name in COMPARED_FIELDS if getattr(shot, name) != getattr(before, name)]
        (changed if changes else unchanged).append(_entry(shot, before, changes))
    for key, shot in old.items():
        if key not in new:
            removed.append(_entry(None, shot, []))
    removed.sort(key=lambda entry: entry.against_index or 0)
    return CutDiff(
        cut_id=cut_id,
        against=against,
        method="shot_name",
        summary=DiffSummary(added=len(added), removed=len(removed), changed=len(changed), unchanged=len(unchanged)),
        added=added,
        removed=removed,
        changed=changed,
        unchanged=unchanged,
    )


def _entry(shot: Shot | None, before: Shot | None, changes: list[str]) -> DiffShot:
    named = shot or before
    assert named is not None
    return DiffShot(
        name=named.name,
        shot_id=shot.id if shot else None,
        against_shot_id=before.id if before else None,
        index=shot.index if shot else None,
        against_index=before.index if before else None,
        changes=changes,
    )
