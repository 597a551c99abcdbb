"""Each thumbnail decodes to exactly the frame the timeline names, at 24, 25, 23.976 and 29.97 fps,
with non-zero start timecodes taken from OTIO's available_range or from the file itself."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest
import sqlalchemy as sa
from PIL import Image

from media_pipeline.db.models import Render, Shot
from media_pipeline.resources import DatabaseResource
from media_pipeline.samples import make_indexed_movie, read_index
from media_pipeline_tests.conftest import ingest, make_resources, publish

RATES = {
    "24": (Fraction(24), "01:00:00:00"),
    "25": (Fraction(25), "10:00:00:00"),
    "23.976": (Fraction(24000, 1001), "00:59:50:00"),
    "29.97": (Fraction(30000, 1001), "01:00:00:00"),
}
# (source offset into the media in frames, duration): odd lengths, shots that end on the last frame
CLIPS = [(0, 7), (13, 24), (101, 50), (37, 1), (199, 41)]
MEDIA_FRAMES = 240


def thumbnail_index(url: str, artifact_root: Path, key: str) -> dict[str, int]:
    with DatabaseResource(url=url).session() as session:
        rows = session.execute(
            sa.select(Shot.name, Render.output_path).join(Render, Render.shot_id == Shot.id).order_by(Render.id)
        ).all()
    return {name: read_index(Image.open(artifact_root / path)) for name, path in rows}


def build_otio(media: Path, rate: Fraction, start_tc: str, *, with_available_range: bool) -> otio.schema.Timeline:
    float_rate = float(rate)
    start = otio.opentime.from_timecode(start_tc, float_rate)
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    for number, (offset, duration) in enumerate(CLIPS):
        reference = otio.schema.ExternalReference(target_url=media.as_uri())
        if with_available_range:
            reference.available_range = otio.opentime.TimeRange(
                start, otio.opentime.RationalTime(MEDIA_FRAMES, float_rate)
            )
        track.append(
            otio.schema.Clip(
                name=f"sh{number:03d}",
                media_reference=reference,
                source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(start.value + offset, float_rate),
                    otio.opentime.RationalTime(duration, float_rate),
                ),
            )
        )
    timeline = otio.schema.Timeline(name="accuracy")
    timeline.tracks.append(track)
    return timeline


@pytest.mark.media_cases
@pytest.mark.parametrize("rate_name", list(RATES))
@pytest.mark.parametrize("available_range", [True, False], ids=["available_range", "embedded_timecode"])
@pytest.mark.parametrize("frame", ["first", "middle", "last", "3"])
def test_thumbnail_is_the_named_frame(tmp_path, domain_url, instance, rate_name, available_range, frame):
    rate, start_tc = RATES[rate_name]
    media = make_indexed_movie(
        tmp_path / "media" / "plate.mov", frames=MEDIA_FRAMES, rate=rate, start_timecode=start_tc, gop=25
    )
    timeline_file = tmp_path / "cut.otio"
    otio.adapters.write_to_file(
        build_otio(media, rate, start_tc, with_available_range=available_range), str(timeline_file)
    )
    url, artifacts = domain_url, tmp_path / "artifacts"
    key = publish(url, artifacts, timeline_file)
    ingest(
        instance,
        key,
        make_resources(url, artifacts),
        run_config={"ops": {"shot_thumbnails": {"config": {"frame": frame, "width": 160}}}},
    )

    decoded = thumbnail_index(url, artifacts, key)
    for number, (offset, duration) in enumerate(CLIPS):
        expected = {"first": offset, "middle": offset + duration // 2, "last": offset + duration - 1}.get(
            frame, offset + min(3, duration - 1)
        )
        if frame == "3" and duration <= 3:
            continue  # offset outside this shot: a slate, covered elsewhere
        assert decoded[f"sh{number:03d}"] == expected, f"{rate_name} shot {number} frame {frame}"


@pytest.mark.parametrize("rate_name", ["23.976", "29.97"])
def test_edl_with_timecode_and_relinked_media(tmp_path, domain_url, instance, rate_name):
    """An EDL (no rate of its own) at an NTSC rate, its media recorded on another machine."""
    rate, start_tc = RATES[rate_name]
    media_root = tmp_path / "library"
    make_indexed_movie(media_root / "deep" / "A001C003.mov", frames=MEDIA_FRAMES, rate=rate, start_timecode=start_tc)
    float_rate = float(rate)
    start = otio.opentime.from_timecode(start_tc, float_rate)

    def tc(frames: int) -> str:
        return otio.opentime.to_timecode(otio.opentime.RationalTime(frames, float_rate), float_rate, drop_frame=False)

    lines, record = ["TITLE: accuracy", ""], otio.opentime.from_timecode("01:00:00:00", float_rate).value
    for number, (offset, duration) in enumerate(CLIPS):
        src_in = start.value + offset
        lines.append(
            f"{number + 1:03d}  A001C003 V     C        {tc(src_in)} {tc(src_in + duration)} "
            f"{tc(record)} {tc(record + duration)}"
        )
        lines.append(f"* FROM CLIP NAME:  sh{number:03d}")
        lines.append("* FROM CLIP: D:\\Projects\\show\\A001C003.mov")
        record += duration
    edl = tmp_path / "cut.edl"
    edl.write_text("\n".join(lines) + "\n")
    url, artifacts = domain_url, tmp_path / "artifacts"
    key = publish(url, artifacts, edl, rate=float_rate, media_roots=[media_root])
    ingest(
        instance,
        key,
        make_resources(url, artifacts),
        run_config={"ops": {"shot_thumbnails": {"config": {"frame": "last", "width": 160}}}},
    )
    decoded = thumbnail_index(url, artifacts, key)
    for number, (offset, duration) in enumerate(CLIPS):
        assert decoded[f"sh{number:03d}"] == offset + duration - 1
    with DatabaseResource(url=url).session() as session:
        notes = session.scalars(sa.select(Shot.notes)).all()
    assert all(any("relinked" in n for n in shot_notes) for shot_notes in notes)
