"""FCP X XML, AAF and ALE through their OTIO adapter plugins; disabled clips in FCP 7 XML.

The shared corpus holds no FCP X, AAF or ALE file. Files exported by Final Cut Pro X and Avid
Media Composer (`media_pipeline_tests/timelines/`, see its README) are ingested as they are; files
written here by hand (FCP X XML and ALE as text, in the shape Final Cut Pro and Avid write them;
AAF with pyaaf2, the library the AAF adapter reads with, as Media Composer links media:
composition -> master mob -> file source mob with a locator) add what those lack: media to link
and thumbnails to check, and every NTSC rate.
"""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import aaf2
import dagster as dg
import pytest
import sqlalchemy as sa
from PIL import Image

from media_pipeline.db.models import CutVersion, Render, Shot
from media_pipeline.editorial.assets.cuts import cut_shots, cut_timeline, shot_thumbnails
from media_pipeline.editorial.timecodes import record_timecode
from media_pipeline.editorial.timeline import ReadOptions, read_timeline
from media_pipeline.resources import DatabaseResource
from media_pipeline.samples import make_indexed_movie, read_index
from media_pipeline_tests.conftest import CORPUS, REPO, ingest, make_resources, publish

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


REAL_EXPORTS = REPO / "media_pipeline_tests" / "timelines"


def ingest_real_export(
    tmp_path: Path, domain_url: str, artifact_root: Path, instance: dg.DagsterInstance, name: str
) -> tuple[CutVersion, list[Shot]]:
    """Publish and ingest (timeline and shots) a copy of a real tool's export (or the variant a
    test wrote as `tmp_path / name`); its media were on
    the editor's machine, so every shot is `missing` (and ingested all the same)."""
    source = tmp_path / name
    if not source.exists():
        shutil.copy(REAL_EXPORTS / name, source)
    key = publish(domain_url, artifact_root, source)
    ingest(instance, key, make_resources(domain_url, artifact_root), selection=[cut_timeline, cut_shots])
    cut, shots, _ = ingested(domain_url, key)
    assert {s.media_status for s in shots} == {"missing"}
    return cut, shots


def test_final_cut_pro_x_project_flattens_to_the_shots_seen(tmp_path, domain_url, artifact_root, instance):
    """Final Cut Pro X's own export: the primary storyline, clips connected above it (lane 1 and 2),
    a secondary storyline, transitions and compound clips, at 30 fps (frameDuration 100/3000s).
    Each shot is what is on screen: a higher lane covers a lower one, a compound clip plays its
    inner clips from its `start`. Expected values from the XML's offsets, starts and durations
    (seconds x 30), e.g. IMG_0740 (lane 1, from 9.5 s into its storyline at 50 s, start 0.5 s) is
    on screen from 59.5 s until IMG_0857 (lane 2, offset 3604.5667 s - 3600 s + 60 s) covers it."""
    cut, shots = ingest_real_export(tmp_path, domain_url, artifact_root, instance, "fcpx_project.fcpxml")
    assert cut.rate == "30" and cut.options["global_start_frame"] == 0 and cut.options["drop_frame"] is False
    assert cut.options["duration"] == 4500  # sequence duration 21602243/144000 s, 150 s of whole frames
    assert [(s.name, s.record_start, s.record_duration, s.source_start) for s in shots] == [
        ("IMG_0715", 0, 300, 0),  # primary storyline, 0-10 s
        ("IMG_0513", 600, 300, 0),  # lane 1 over the gap at 20 s
        ("IMG_0268", 1500, 285, 0),  # secondary storyline at 50 s: 9.5 s
        ("IMG_0740", 1785, 152, 15),  # start 1500/3000 s; until IMG_0857 covers it at 1937
        ("IMG_0857", 1937, 300, 0),  # lane 2, 10 s
        ("IMG_0233", 2400, 191, 109),  # compound_clip_1 at 80 s, start 10900/3000 s into its first clip
        ("IMG_0268", 2891, 300, 0),  # the compound's lane-1 clip at its 20 s
        ("IMG_0233", 3300, 300, 0),  # primary storyline at 110 s
        ("IMG_0687", 3600, 300, 376),  # start 37600/3000 s
        ("IMG_0268", 3900, 300, 232),  # start 23200/3000 s
        ("IMG_0233", 4200, 243, 57),  # compound_clip_1 again at 140 s, start 5700/3000 s
    ]
    assert {s.source_rate for s in shots} == {"30"}


def test_media_composer_aaf_gives_its_five_clips_at_one_hour(tmp_path, domain_url, artifact_root, instance):
    """Media Composer's export; the expected clips are the AAF adapter's own test of this file
    (names, and every source range 01:00:00:00 for 00:00:30:00, 20:00, 30:02, 26:16, 30:00)."""
    cut, shots = ingest_real_export(tmp_path, domain_url, artifact_root, instance, "simple.aaf")
    assert cut.rate == "24" and cut.options["global_start_frame"] == 86400 and cut.options["drop_frame"] is False
    assert [(s.name, s.record_start, s.record_duration, s.source_start) for s in shots] == [
        ("tech.fux (loop)-HD.mp4", 0, 720, 86400),
        ("t-hawk (loop)-HD.mp4", 720, 480, 86400),
        ("out-b (loop)-HD.mp4", 1200, 722, 86400),
        ("KOLL-HD.mp4", 1922, 640, 86400),
        ("brokchrd (loop)-HD.mp4", 2562, 720, 86400),
    ]
    assert [record_timecode(s, cut) for s in shots] == [
        "01:00:00:00", "01:00:30:00", "01:00:50:00", "01:01:20:02", "01:01:46:18"
    ]  # fmt: skip


def test_media_composer_drop_frame_aaf_keeps_its_drop_frame_timecode(tmp_path, domain_url, artifact_root, instance):
    """A 29.97 drop-frame sequence at 05:00:00;00 (frame 539460: 5 x 107892). The AAF adapter keeps
    the start but not the drop flag of the composition's timecode track; the pipeline reads it, so
    the record timecode is 05:00:00;00, not the non-drop 04:59:42:00 of the same frame number."""
    cut, shots = ingest_real_export(tmp_path, domain_url, artifact_root, instance, "2997fps-DFTC.aaf")
    assert cut.rate == "30000/1001" and cut.options["global_start_frame"] == 539460
    assert cut.options["drop_frame"] is True
    (shot,) = shots
    assert (shot.record_start, shot.record_duration, shot.source_rate) == (0, 2989, "30000/1001")
    assert record_timecode(shot, cut) == "05:00:00;00"
    # 2989 frames on: 1800 in minute 0, then 1189 into minute 1, whose numbers start at ;02.
    assert record_timecode(shot, cut, shot.record_duration) == "05:01:39;21"


def test_media_composer_ale_at_23_98_reads_exact_ntsc_frames(tmp_path, domain_url, artifact_root, instance):
    """An Avid bin export with `FPS 23.98`; expected clips from the ALE adapter's own test of this
    file (04:00:00:00 for 00:00:46:16, and 04:00:46:16 for 00:00:50:16, counting 24 a second)."""
    cut, shots = ingest_real_export(tmp_path, domain_url, artifact_root, instance, "sample2.ale")
    assert cut.rate == "24000/1001"  # not 23.98, nor 24
    assert [(s.name, s.record_start, s.record_duration, s.source_start, s.source_rate) for s in shots] == [
        ("19A-1xa", 0, 1120, 4 * 3600 * 24, "24000/1001"),
        ("19A-2xa", 1120, 1216, 4 * 3600 * 24 + 1120, "24000/1001"),
    ]


def test_fcpx_timecode_is_the_projects_not_a_compound_clips(tmp_path, domain_url, artifact_root, instance):
    """A compound clip's own sequence (tcStart 0s, non-drop), inside the resources, comes before the
    project's in the file, as Final Cut Pro writes them (see fcpx_project.fcpxml); the cut's start
    timecode and drop-frame are the project's: 01:00:00;00 drop-frame at 29.97."""
    rate = Fraction(30000, 1001)
    plate = make_indexed_movie(tmp_path / "media" / "A001C003.mov", frames=120, rate=rate, start_timecode="01:00:00;00")
    path = fcpxml(tmp_path / "reel1.fcpxml", plate, rate, 107892, "DF")
    compound = (
        '<media id="r9" name="compound_clip_1"><sequence duration="1001/30000s" format="r1" tcStart="0s" '
        'tcFormat="NDF"><spine><gap name="Gap" offset="0s" duration="1001/30000s"/></spine></sequence></media>'
    )
    path.write_text(path.read_text().replace("<resources>", "<resources>" + compound, 1))
    key = publish(domain_url, artifact_root, path)
    ingest(instance, key, make_resources(domain_url, artifact_root), selection=[cut_timeline, cut_shots])
    cut, shots, _ = ingested(domain_url, key)
    assert cut.options["global_start_frame"] == 107892 and cut.options["drop_frame"] is True
    assert [record_timecode(s, cut) for s in shots] == ["01:00:00;00", "01:00:00;10"]
