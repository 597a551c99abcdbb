"""The editorial cut diff (media_pipeline.editorial.cut_diff) as the API answers it.

The matching and the categories are the editorial module's, the same the `cut_diff` asset
writes at ingest; this module only picks the versions to compare and maps positions to shot ids.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.schemas import CutDiff, DiffEntry, DiffSummary, FrameRange
from api.views import frame_range
from media_pipeline.db.models import CutVersion
from media_pipeline.editorial import cut_diff
from media_pipeline.editorial.cut_diff import ShotFacts, SourceRange, cut_facts, ingested_versions_before


def _source(source: SourceRange | None) -> FrameRange | None:
    return frame_range(source.start, source.duration, source.rate) if source is not None else None


def diff_view(session: Session, cut: CutVersion, against: CutVersion, handles: int) -> CutDiff:
    """What happened to each shot from cut `against` to cut `cut`.

    A shot absent from `against` is `reinstated` when an ingested version of `against`'s cut older
    than `against` had it, else `new`. `cut` itself never counts as such an earlier version (when
    it is the older of the two).
    """
    shots, against_shots = list(cut.shots), list(against.shots)
    earlier = [cut_facts(version) for version in ingested_versions_before(session, against) if version.id != cut.id]
    diff = cut_diff.diff_cuts(
        previous=[ShotFacts.from_shot(shot) for shot in against_shots],
        current=[ShotFacts.from_shot(shot) for shot in shots],
        earlier=earlier,
        handles=handles,
    )
    ids = {shot.index: shot.id for shot in shots}
    against_ids = {shot.index: shot.id for shot in against_shots}
    entries = [
        DiffEntry(
            status=entry.status,  # type: ignore[arg-type]
            categories=entry.categories,  # type: ignore[arg-type]
            name=entry.name,
            old_name=entry.old_name,
            shot_id=ids.get(entry.new_index) if entry.new_index is not None else None,
            against_shot_id=against_ids.get(entry.old_index) if entry.old_index is not None else None,
            index=entry.new_index,
            against_index=entry.old_index,
            changes=entry.changes,
            old_source=_source(entry.old_source),
            new_source=_source(entry.new_source),
        )
        for entry in diff.entries
    ]
    return CutDiff(
        cut_id=cut.id,
        against=against.id,
        handles=diff.handles,
        summary=DiffSummary(**diff.summary()),
        entries=entries,
    )
