"""A cut version back out as a timeline file (OTIO, OTIOZ bundle, CMX 3600 EDL).

The export is built from the cut's shots, as the pipeline worked them out: one video track of
its shots at their record places (gaps between), each naming its exact source range, starting
at the timeline's start timecode. Re-ingesting an export gives the same shots. With
`media="proxies"` every shot points at its latest review proxy instead of its source media
(the proxy's own timecode track names the same source frames).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import opentimelineio as otio
import sqlalchemy as sa
from sqlalchemy.orm import Session

from media_pipeline.core.files import atomic_path
from media_pipeline.db.models import CutVersion, MediaStatus, Render, RenderStatus, Shot
from media_pipeline.editorial.timecodes import cut_drop_frame, cut_rate, record_origin
from media_pipeline.editorial.timeline import EDL_ADAPTER, METADATA_KEY

ExportFormat = Literal["otio", "otioz", "edl"]
ExportMedia = Literal["source", "proxies"]
FORMATS: dict[str, tuple[str, str]] = {  # format -> (OTIO adapter, media type)
    "otio": ("otio_json", "application/json"),
    "otioz": ("otioz", "application/zip"),
    "edl": (EDL_ADAPTER, "text/plain; charset=utf-8"),
}


class ExportError(ValueError):
    """The cut cannot be exported as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Exported:
    path: Path
    filename: str
    media_type: str


def _rt(frames: int, rate: Fraction) -> otio.opentime.RationalTime:
    return otio.opentime.RationalTime(frames, float(rate))


def _range(start: int, duration: int, rate: Fraction) -> otio.opentime.TimeRange:
    return otio.opentime.TimeRange(_rt(start, rate), _rt(duration, rate))


def latest_proxies(session: Session, cut_id: int) -> dict[int, Render]:
    renders = session.scalars(
        sa.select(Render)
        .where(Render.cut_version_id == cut_id, Render.kind == "proxy", Render.status == RenderStatus.SUCCEEDED)
        .order_by(Render.id)
    )
    return {render.shot_id: render for render in renders if render.shot_id is not None and render.output_path}


def _source_reference(shot: Shot) -> otio.core.MediaReference:
    if shot.media_status == MediaStatus.GENERATOR:
        return otio.schema.GeneratorReference(generator_kind=str((shot.details or {}).get("generator_kind", "")))
    if shot.media_status != MediaStatus.LINKED or not shot.media_path:
        return otio.schema.MissingReference(name=Path(shot.media_url or shot.name).name)
    rate = Fraction(shot.source_rate)
    reference = otio.schema.ExternalReference(target_url=Path(shot.media_path).as_uri())
    reference.name = Path(shot.media_path).name
    if shot.media_kind == "movie" and shot.media_frame is not None and shot.media_rate == shot.source_rate:
        # Where the media starts in the timeline's source frames, so a reader finds the same frame.
        reference.available_range = _range(
            shot.source_start - shot.media_frame, shot.media_frame_count or shot.source_duration, rate
        )
    return reference


def _proxy_reference(shot: Shot, proxy: Render, artifact_root: Path) -> otio.schema.ExternalReference:
    details = proxy.details or {}
    path = artifact_root / (proxy.output_path or "")
    reference = otio.schema.ExternalReference(target_url=path.as_uri())
    reference.name = path.name
    reference.available_range = _range(
        int(details.get("first_source_frame", shot.source_start)),
        int(details.get("frames", shot.source_duration)),
        Fraction(shot.source_rate),
    )
    return reference


def cut_as_timeline(
    session: Session, cut: CutVersion, artifact_root: Path, media: ExportMedia = "source"
) -> otio.schema.Timeline:
    shots = list(session.scalars(sa.select(Shot).where(Shot.cut_version_id == cut.id).order_by(Shot.index)))
    rate = cut_rate(cut)
    proxies = latest_proxies(session, cut.id) if media == "proxies" else {}
    if media == "proxies":
        lacking = [shot.name for shot in shots if shot.media_status == MediaStatus.LINKED and shot.id not in proxies]
        if lacking:
            raise ExportError(
                f"{len(lacking)} shot(s) have no review proxy yet ({', '.join(lacking[:5])}); render the cut's "
                "proxies first, or export with media=source"
            )
    timeline = otio.schema.Timeline(name=f"{cut.name} v{cut.version:03d}")
    timeline.global_start_time = _rt(record_origin(cut), rate)
    timeline.metadata[METADATA_KEY] = {
        "drop_frame": cut_drop_frame(cut),
        "partition_key": cut.partition_key,
        "media": media,
    }
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    position = 0
    for shot in shots:
        if shot.record_start > position:
            track.append(otio.schema.Gap(source_range=_range(0, shot.record_start - position, rate)))
        source_rate = Fraction(shot.source_rate)
        # Missing media and generators keep what they were: their proxies are slates.
        proxy = proxies.get(shot.id) if shot.media_status == MediaStatus.LINKED else None
        reference = _proxy_reference(shot, proxy, artifact_root) if proxy else _source_reference(shot)
        clip = otio.schema.Clip(
            name=shot.name,
            media_reference=reference,
            source_range=_range(shot.source_start, shot.source_duration, source_rate),
        )
        track.append(clip)
        position = max(position, shot.record_start + shot.record_duration)
    return timeline


def export_cut(
    session: Session, cut: CutVersion, artifact_root: Path, fmt: ExportFormat, media: ExportMedia = "source"
) -> Exported:
    """Write the export under the cut's folder (atomically) and say where it is."""
    adapter, media_type = FORMATS[fmt]
    timeline = cut_as_timeline(session, cut, artifact_root, media)
    filename = f"{cut.partition_key}{'.proxies' if media == 'proxies' else ''}.{fmt}"
    output = artifact_root / "cuts" / cut.partition_key / "exports" / filename
    kwargs: dict[str, object] = {}
    if fmt == "edl":
        kwargs["rate"] = float(cut_rate(cut))
        # The EDL writer ignores global_start_time; it counts record timecode from a track's
        # negative source start, the shape its reader produces.
        for track in timeline.video_tracks():
            start = timeline.global_start_time or _rt(0, cut_rate(cut))
            track.source_range = otio.opentime.TimeRange(-start, track.duration())
    if fmt == "otioz":
        # Bundles the media files it can; shots whose media is missing stay references.
        kwargs["media_policy"] = otio.adapters.file_bundle_utils.MediaReferencePolicy.MissingIfNotFile
    with atomic_path(output) as tmp:
        otio.adapters.write_to_file(timeline, str(tmp), adapter_name=adapter, **kwargs)
    return Exported(path=output, filename=filename, media_type=media_type)
