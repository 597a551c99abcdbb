"""From a stored timeline file to shots in the domain database."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import opentimelineio as otio
import sqlalchemy as sa
from sqlalchemy.orm import Session

from media_pipeline.core.files import atomic_path
from media_pipeline.core.timecode import rate_text
from media_pipeline.db.models import CutStatus, CutVersion, MediaStatus, Shot
from media_pipeline.editorial.media import MediaResolver
from media_pipeline.editorial.shots import ShotList, extract_shots
from media_pipeline.editorial.timeline import ReadOptions, drop_frame_of, read_timeline, timeline_rate


@dataclass
class TimelineReport:
    path: Path
    adapter: str
    rate: str
    warnings: list[str] = field(default_factory=list)


def store_timeline(cut: CutVersion, output: Path) -> TimelineReport:
    """Read the cut's source file with its options and store it as normalized OTIO JSON."""
    result = read_timeline(Path(cut.source_path), ReadOptions.from_dict(cut.options))
    with atomic_path(output) as tmp:
        otio.adapters.write_to_file(result.timeline, str(tmp), adapter_name="otio_json")
    drop_frame = drop_frame_of(result.timeline)
    cut.options = {**cut.options, "drop_frame": drop_frame, "notes": result.warnings}
    return TimelineReport(output, result.adapter, rate_text(timeline_rate(result.timeline)), result.warnings)


@dataclass
class ShotsReport:
    shot_list: ShotList
    shots: list[Shot]

    @property
    def missing(self) -> list[Shot]:
        return [shot for shot in self.shots if shot.media_status == MediaStatus.MISSING]


def store_shots(session: Session, cut: CutVersion, timeline_path: Path, resolver: MediaResolver) -> ShotsReport:
    """Extract the cut's shots, resolve their media and upsert them by index.

    Shots keep their ids when a cut version is ingested again, so API clients' ids stay valid.
    """
    timeline = otio.adapters.read_from_file(str(timeline_path), adapter_name="otio_json")
    shot_list = extract_shots(timeline)
    existing = {shot.index: shot for shot in session.scalars(sa.select(Shot).where(Shot.cut_version_id == cut.id))}
    stored: list[Shot] = []
    for clip_shot in shot_list.shots:
        media = resolver.resolve(clip_shot)
        shot = existing.pop(clip_shot.index, None) or Shot(cut_version_id=cut.id, index=clip_shot.index)
        shot.name = clip_shot.name
        shot.track = clip_shot.track
        shot.record_start = clip_shot.record_start
        shot.record_duration = clip_shot.record_duration
        shot.source_start = clip_shot.source_start
        shot.source_duration = clip_shot.source_duration
        shot.source_rate = rate_text(clip_shot.source_rate)
        shot.media_path = media.path
        shot.media_url = media.url
        shot.media_status = media.status
        shot.media_kind = media.kind
        shot.media_frame = media.frame
        shot.media_rate = rate_text(media.rate) if media.rate else None
        shot.media_frame_count = media.frame_count
        shot.notes = media.notes
        shot.details = {**clip_shot.details, **media.details}
        session.add(shot)
        stored.append(shot)
    for leftover in existing.values():
        session.delete(leftover)
    cut.rate = rate_text(shot_list.rate)
    cut.shot_count = len(stored)
    cut.missing_count = sum(1 for shot in stored if shot.media_status == MediaStatus.MISSING)
    notes = list(dict.fromkeys([*cut.options.get("notes", []), *shot_list.warnings]))
    cut.options = {
        **cut.options,
        "global_start_frame": shot_list.global_start_frame,
        "duration": shot_list.duration,
        "notes": notes,
    }
    cut.status = CutStatus.INGESTED
    cut.error = None
    session.flush()
    return ShotsReport(shot_list=shot_list, shots=stored)
