"""ORM rows to response bodies."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path, PurePosixPath

import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.job_service import as_utc
from api.schemas import Cut, FrameRange
from api.schemas import Shot as ShotOut
from media_pipeline.core.timecode import DROP_FRAME_RATES, to_timecode
from media_pipeline.db.models import CutVersion, Render, RenderStatus, Shot
from media_pipeline.editorial.assets.cuts import latest_renders, latest_thumbnails
from media_pipeline.editorial.timecodes import cut_drop_frame, record_origin, source_drop_frame
from media_pipeline.platform.urls import artifact_url, artifact_url_for


def frame_range(
    start: int, duration: int, rate: str | None, tc_origin: int = 0, drop_frame: bool = False
) -> FrameRange:
    """`tc_origin`: the frame number timecode counts from (a timeline's start timecode)."""
    exact = Fraction(rate or "24")
    drop_frame = drop_frame and exact in DROP_FRAME_RATES
    return FrameRange(
        start=start,
        duration=duration,
        end=start + duration,
        rate=rate or "24",
        start_tc=to_timecode(tc_origin + start, exact, drop_frame),
        end_tc=to_timecode(tc_origin + start + duration, exact, drop_frame),
        drop_frame=drop_frame,
    )


def cut_out(session: Session, cut: CutVersion, artifact_root: Path) -> Cut:
    sheet = session.scalar(
        sa.select(Render.output_path)
        .where(
            Render.cut_version_id == cut.id,
            Render.kind == "contact_sheet",
            Render.status == RenderStatus.SUCCEEDED,
            Render.output_path.is_not(None),
        )
        .order_by(Render.id.desc())
        .limit(1)
    )
    return Cut(
        id=cut.id,
        project=cut.project.name,
        name=cut.name,
        version=cut.version,
        partition_key=cut.partition_key,
        status=cut.status,
        error=cut.error,
        rate=cut.rate,
        drop_frame=cut_drop_frame(cut),
        start_tc=to_timecode(record_origin(cut), Fraction(cut.rate or "24"), cut_drop_frame(cut)),
        notes=[str(note) for note in (cut.options or {}).get("notes", [])],
        source_filename=cut.source_filename,
        source_url=artifact_url_for(cut.source_path, artifact_root),
        media_roots=[str(root) for root in (cut.options or {}).get("media_roots", [])],
        shot_count=cut.shot_count,
        missing_count=cut.missing_count,
        contact_sheet_url=artifact_url(sheet) if sheet else None,
        created_at=as_utc(cut.created_at),
        updated_at=as_utc(cut.updated_at),
    )


def shots_out(session: Session, cut: CutVersion, shots: list[Shot]) -> list[ShotOut]:
    thumbnails = latest_thumbnails(session, cut.id)
    proxies = latest_renders(session, cut.id, "proxy")
    origin, drop_frame = record_origin(cut), cut_drop_frame(cut)
    out = []
    for shot in shots:
        thumbnail = thumbnails.get(shot.id)
        proxy = proxies.get(shot.id)
        proxy_path = proxy.output_path if proxy is not None else None
        out.append(
            ShotOut(
                id=shot.id,
                cut_id=cut.id,
                index=shot.index,
                name=shot.name,
                track=shot.track,
                rate=cut.rate,
                record=frame_range(shot.record_start, shot.record_duration, cut.rate, origin, drop_frame),
                source=frame_range(
                    shot.source_start, shot.source_duration, shot.source_rate, 0, source_drop_frame(shot, cut)
                ),
                media_path=shot.media_path,
                media_status=shot.media_status,
                media_kind=shot.media_kind,
                notes=[str(note) for note in shot.notes or []],
                thumbnail_url=artifact_url(thumbnail.output_path)
                if thumbnail is not None and thumbnail.output_path
                else None,
                proxy_url=artifact_url(proxy_path) if proxy_path else None,
                # Written next to its proxy (see editorial/assets/proxies.py).
                filmstrip_url=artifact_url(str(PurePosixPath(proxy_path).with_suffix(".filmstrip.jpg")))
                if proxy_path
                else None,
            )
        )
    return out
