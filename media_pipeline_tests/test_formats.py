"""FCP X XML, AAF and ALE through their OTIO adapter plugins; disabled clips in FCP 7 XML.

The shared corpus holds no FCP X, AAF or ALE file, so these are written here by hand (FCP X
XML and ALE as text, in the shape Final Cut Pro and Avid write them; AAF with pyaaf2, the
library the AAF adapter reads with, as Media Composer links media: composition -> master mob ->
file source mob with a locator).
"""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import aaf2
import pytest
import sqlalchemy as sa
from PIL import Image

from media_pipeline.db.models import CutVersion, Render, Shot
from media_pipeline.editorial.assets.cuts import cut_shots, cut_timeline, shot_thumbnails
from media_pipeline.editorial.timeline import ReadOptions, read_timeline
from media_pipeline.resources import DatabaseResource
from media_pipeline.samples import make_indexed_movie, read_index
from media_pipeline_tests.conftest import CORPUS, ingest, make_resources, publish

THUMBS = {"ops": {"shot_thumbnails": {"config": {"frame": "first", "width": 160}}}}


def fcp_time(frames: int, frame_duration: Fraction) -> str:
    """`frames` frames as FCP X writes a time: exact seconds, `num/dens` or `Ns`."""
    value = frames * frame_duration
    return f"{value.numerator}s" if value.denominator == 1 else f"{value.numerator}/{value.denominator}s"


def fcpxml(path: Path, media: Path, rate: Fraction, start: int, tc_format: str = "NDF") -> Path:
    """A project at `rate`, as Final Cut Pro writes one, whose sequence and media both start at
    frame `start` (their timecode); sh010 uses media frames 34..43, sh020 frames 48..53, one after
    the other on the record side."""
    d = 1 / rate
    t = lambda frames: fcp_time(frames, d)  # noqa: E731
    path.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE fcpxml>
<fcpxml version="1.9">
  <resources>
    <format id="r1" name="FFVideoFormat1080p2398" frameDuration="{d.numerator}/{d.denominator}s" width="1920"
      height="1080"/>
    <asset id="r2" name="A001C003" start="{t(start)}" duration="{t(120)}" hasVideo="1" format="r1"
      videoSources="1" src="{media.as_uri()}"/>
  </resources>
  <library>
    <event name="dailies">
      <project name="reel1">
        <sequence duration="{t(16)}" format="r1" tcStart="{t(start)}" tcFormat="{tc_format}" audioLayout="stereo"
          audioRate="48k">
          <spine>
            <asset-clip name="sh010" ref="r2" offset="{t(start)}" start="{t(start + 34)}" duration="{t(10)}"
              format="r1" tcFormat="{tc_format}"/>
            <asset-clip name="sh020" ref="r2" offset="{t(start + 10)}" start="{t(start + 48)}" duration="{t(6)}"
              format="r1" tcFormat="{tc_format}"/>
          </spine>
        </sequence>
      </project>
    </event>
  </library>
</fcpxml>
""")
    return path


def aaf(path: Path, media: Path) -> Path:
    """A 25 fps composition of two clips of one master clip (frames 34..43 and 48..53)."""
    with aaf2.open(str(path), "w") as f:
        file_mob = f.create.SourceMob()
        file_mob.name = media.name
        descriptor = f.create.ImportDescriptor()
        locator = f.create.NetworkLocator()
        locator["URLString"].value = media.as_uri()
        descriptor["Locator"].append(locator)
        file_mob.descriptor = descriptor
        file_slot = file_mob.create_empty_sequence_slot("25", media_kind="picture")
        file_slot.segment.components.append(f.create.SourceClip(media_kind="picture", length=120))
        f.content.mobs.append(file_mob)
        master = f.create.MasterMob("A001C003")
        f.content.mobs.append(master)
        master_slot = master.create_timeline_slot("25")
        master_slot.segment = file_mob.create_source_clip(slot_id=file_slot.slot_id, start=0, length=120)
        composition = f.create.CompositionMob("reel1")
        composition.usage = "Usage_TopLevel"
        f.content.mobs.append(composition)
        sequence = f.create.Sequence(media_kind="picture")
        composition.create_timeline_slot("25").segment = sequence
        for start, length in ((34, 10), (48, 6)):
            clip = master.create_source_clip(slot_id=master_slot.slot_id, start=start, length=length)
            sequence.components.append(clip)
    return path


def ingested(domain_url: str, key: str) -> tuple[CutVersion, list[Shot], dict[int, str]]:
    """The cut, its shots, and each shot's thumbnail by shot index."""
    with DatabaseResource(url=domain_url).session() as session:
        cut = session.scalar(sa.select(CutVersion).where(CutVersion.partition_key == key))
        assert cut is not None
        session.expunge(cut)
        shots = list(session.scalars(sa.select(Shot).order_by(Shot.index)))
        for shot in shots:
            session.expunge(shot)
        renders = session.scalars(sa.select(Render).where(Render.kind == "thumbnail")).all()
        by_shot = {render.shot_id: render.output_path for render in renders}
    return cut, shots, {shot.index: by_shot[shot.id] for shot in shots if shot.id in by_shot}


def thumbnail_index(artifact_root: Path, relative: str) -> int:
    with Image.open(artifact_root / relative) as image:
        return read_index(image)


@pytest.fixture
def plate_25(tmp_path: Path) -> Path:
    return make_indexed_movie(
        tmp_path / "media" / "A001C003.mov", frames=120, rate=Fraction(25), start_timecode="01:00:00:00"
    )


def test_fcpx_xml_ingests_with_exact_frames_and_its_start_timecode(tmp_path, domain_url, artifact_root, instance,
                                                                   plate_25):  # fmt: skip
    timeline = fcpxml(tmp_path / "reel1.fcpxml", plate_25, Fraction(25), 90000)  # starts at 01:00:00:00
    key = publish(domain_url, artifact_root, timeline)
    result = ingest(instance, key, make_resources(domain_url, artifact_root), run_config=THUMBS,
                    selection=[cut_timeline, cut_shots, shot_thumbnails])  # fmt: skip
    # In the Dagster UI the thumbnails come first, inline, one image per shot.
    metadata = result.asset_materializations_for_node("shot_thumbnails")[0].metadata
    assert next(iter(metadata)) == "preview" and metadata["preview"].value.count("data:image/jpeg;base64,") == 2
    cut, shots, thumbnails = ingested(domain_url, key)
    assert cut.rate == "25" and cut.options["global_start_frame"] == 90000  # 01:00:00:00 at 25
    assert [(s.name, s.record_start, s.record_duration, s.source_start, s.source_duration) for s in shots] == [
        ("sh010", 0, 10, 90034, 10),
        ("sh020", 10, 6, 90048, 6),
    ]
    assert [s.media_frame for s in shots] == [34, 48]
    assert [thumbnail_index(artifact_root, thumbnails[index]) for index in (0, 1)] == [34, 48]


@pytest.mark.parametrize(
    ("rate", "timecode", "start", "tc_format", "drop_frame"),
    [
        (Fraction(24000, 1001), "01:00:00:00", 86400, "NDF", False),  # 23.976 counts 24 a second
        (Fraction(30000, 1001), "01:00:00;00", 107892, "DF", True),  # drop-frame: 108 numbers skipped an hour
        (Fraction(60000, 1001), "00:59:59:00", 215940, "NDF", False),  # 3599 s of 60 numbered frames
    ],
)
def test_fcpx_xml_at_ntsc_rates_reads_exact_frames(
    tmp_path, domain_url, artifact_root, instance, rate, timecode, start, tc_format, drop_frame
):  # fmt: skip
    plate = make_indexed_movie(tmp_path / "media" / "A001C003.mov", frames=120, rate=rate, start_timecode=timecode)
    path = fcpxml(tmp_path / "reel1.fcpxml", plate, rate, start, tc_format)
    timeline = read_timeline(path).timeline
    clip = next(iter(timeline.find_clips()))
    assert clip.source_range.start_time.to_frames() == start + 34  # not 23 or 29 a second, nor truncated
    key = publish(domain_url, artifact_root, path)
    ingest(instance, key, make_resources(domain_url, artifact_root), run_config=THUMBS,
           selection=[cut_timeline, cut_shots, shot_thumbnails])  # fmt: skip
    cut, shots, thumbnails = ingested(domain_url, key)
    assert Fraction(cut.rate) == rate and cut.options["global_start_frame"] == start
    assert cut.options["drop_frame"] is drop_frame
    assert [(s.name, s.record_start, s.record_duration, s.source_start, s.source_duration) for s in shots] == [
        ("sh010", 0, 10, start + 34, 10),
        ("sh020", 10, 6, start + 48, 6),
    ]
    assert [Fraction(s.source_rate) for s in shots] == [rate, rate]
    assert [s.media_frame for s in shots] == [34, 48]
    assert [thumbnail_index(artifact_root, thumbnails[index]) for index in (0, 1)] == [34, 48]


def test_aaf_ingests_and_links_its_media(tmp_path, domain_url, artifact_root, instance, plate_25):
    key = publish(domain_url, artifact_root, aaf(tmp_path / "reel1.aaf", plate_25))
    ingest(instance, key, make_resources(domain_url, artifact_root), run_config=THUMBS,
           selection=[cut_timeline, cut_shots, shot_thumbnails])  # fmt: skip
    cut, shots, thumbnails = ingested(domain_url, key)
    assert cut.rate == "25"
    assert [(s.record_start, s.record_duration, s.source_start, s.source_duration) for s in shots] == [
        (0, 10, 34, 10),
        (10, 6, 48, 6),
    ]
    assert [s.media_status for s in shots] == ["linked", "linked"]
    assert [thumbnail_index(artifact_root, thumbnails[index]) for index in (0, 1)] == [34, 48]


def test_ale_clip_list_becomes_one_shot_per_clip(tmp_path, domain_url, artifact_root, instance):
    ale = tmp_path / "dailies.ale"
    ale.write_text(
        "Heading\nFIELD_DELIM\tTABS\nVIDEO_FORMAT\t1080\nAUDIO_FORMAT\t48khz\nFPS\t23.976\n\n"
        "Column\nName\tTape\tStart\tEnd\tSource File\n\n"
        "Data\n"
        "A001C003\tA001\t01:00:01:10\t01:00:01:20\tA001C003.mov\n"
        "A001C004\tA001\t01:00:02:00\t01:00:02:06\tA001C004.mov\n"
    )
    key = publish(domain_url, artifact_root, ale)
    ingest(instance, key, make_resources(domain_url, artifact_root), selection=[cut_timeline, cut_shots])
    cut, shots, _ = ingested(domain_url, key)
    # 23.976 counts 24 a second: 01:00:01:10 is 3601 * 24 + 10 = 86434.
    assert cut.rate == "24000/1001"
    assert [(s.name, s.record_start, s.source_start, s.source_duration, s.source_rate) for s in shots] == [
        ("A001C003", 0, 86434, 10, "24000/1001"),
        ("A001C004", 10, 86448, 6, "24000/1001"),
    ]
    assert any("clip list (ALE)" in note for note in cut.options["notes"])


def test_disabled_premiere_clips_and_tracks_are_skipped_with_a_note(tmp_path, domain_url, artifact_root, instance):
    source = tmp_path / "premiere_enable_property.xml"
    shutil.copy(CORPUS / "premiere_enable_property.xml", source)
    assert read_timeline(source, ReadOptions()).timeline.video_tracks()[2].enabled is False
    key = publish(domain_url, artifact_root, source)
    ingest(instance, key, make_resources(domain_url, artifact_root), selection=[cut_timeline, cut_shots])
    cut, shots, _ = ingested(domain_url, key)
    assert [s.name for s in shots] == ["source.mp4", "source.mp4", "source3.mp4"]
    assert not any("disabled" in s.name for s in shots)
    notes = cut.options["notes"]
    assert "clip 'video_track_1_disabled_1' is disabled and was left out" in notes
    assert any("track" in note and "disabled" in note for note in notes)
