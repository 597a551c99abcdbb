"""Media resolution, slates, reuse across cut versions, single-shot re-render, image sequences."""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest
import sqlalchemy as sa
from PIL import Image

from media_pipeline.db.models import Render, Shot
from media_pipeline.resources import DatabaseResource
from media_pipeline.samples import make_indexed_movie, make_indexed_sequence, read_index
from media_pipeline_tests.conftest import CORPUS, ingest, make_resources, publish

RATE = 24.0


def clip(name: str, url: str | None, start: int, duration: int, available: int | None = None) -> otio.schema.Clip:
    reference: otio.core.MediaReference = (
        otio.schema.ExternalReference(target_url=url) if url else otio.schema.MissingReference()
    )
    if url and available is not None:
        reference.available_range = otio.opentime.TimeRange(
            otio.opentime.RationalTime(available, RATE), otio.opentime.RationalTime(1000, RATE)
        )
    return otio.schema.Clip(
        name=name,
        media_reference=reference,
        source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(start, RATE), otio.opentime.RationalTime(duration, RATE)
        ),
    )


def write_cut(path: Path, clips: list[otio.schema.Clip]) -> Path:
    timeline = otio.schema.Timeline(name=path.stem)
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    for item in clips:
        track.append(item)
    timeline.tracks.append(track)
    path.parent.mkdir(parents=True, exist_ok=True)
    otio.adapters.write_to_file(timeline, str(path))
    return path


def shots_and_renders(url: str) -> list[tuple[Shot, Render]]:
    with DatabaseResource(url=url).session() as session:
        return list(
            session.execute(sa.select(Shot, Render).join(Render, Render.shot_id == Shot.id).order_by(Render.id))
        )


THUMBS = {"ops": {"shot_thumbnails": {"config": {"frame": "first", "width": 128}}}}


def test_relinks_windows_and_file_localhost_paths(tmp_path, domain_url, artifact_root, instance):
    library = tmp_path / "library"
    make_indexed_movie(library / "sc01_sh010_anim.mov", frames=120, rate=Fraction(30))
    make_indexed_movie(library / "sub" / "sc01_master_layerA_sh030_temp.mov", frames=600, rate=Fraction(30))
    source = tmp_path / "premiere_example.xml"
    shutil.copy(CORPUS / "premiere_example.xml", source)
    key = publish(domain_url, artifact_root, source, media_roots=[library])
    ingest(instance, key, make_resources(domain_url, artifact_root), run_config=THUMBS)
    with DatabaseResource(url=domain_url).session() as session:
        shots = {s.name: s for s in session.scalars(sa.select(Shot))}
    relinked = shots["sc01_sh010_anim.mov"]
    assert relinked.media_status == "linked"
    assert relinked.media_url.startswith("file://localhost/D%3a/media/")
    assert relinked.media_path == str(library / "sc01_sh010_anim.mov")
    assert any("relinked" in note for note in relinked.notes)
    assert shots["test_title"].media_status == "generator"


def test_missing_media_is_a_slate_not_a_failed_run(tmp_path, domain_url, artifact_root, instance):
    cut = write_cut(
        tmp_path / "cut.otio",
        [
            clip("offline", "file:///nowhere/A001.mov", 0, 10),
            clip("no_reference", None, 0, 10),
        ],
    )
    key = publish(domain_url, artifact_root, cut)
    result = ingest(instance, key, make_resources(domain_url, artifact_root), run_config=THUMBS)
    assert result.success
    rows = shots_and_renders(domain_url)
    assert [shot.media_status for shot, _ in rows] == ["missing", "missing"]
    offline = next(shot for shot, _ in rows if shot.name == "offline")
    assert "not found" in offline.notes[-1] and "MEDIA_PIPELINE_MEDIA_ROOTS" in offline.notes[-1]
    for _, render in rows:
        assert render.details["slate"] is True
        image = Image.open(artifact_root / render.output_path).convert("RGB")
        assert image.width == 128
        assert image.getpixel((64, image.height - 5)) == pytest.approx((40, 40, 44), abs=8)  # slate background
    shots_md = result.asset_materializations_for_node("cut_shots")[0].metadata
    assert shots_md["missing_media_count"].value == 2


def test_corrupt_media_is_reported_and_slated(tmp_path, domain_url, artifact_root, instance):
    broken = tmp_path / "media" / "broken.mov"
    broken.parent.mkdir()
    broken.write_bytes(b"\x00\x00\x00\x18ftypqt  " + b"garbage" * 500)
    key = publish(domain_url, artifact_root, write_cut(tmp_path / "cut.otio", [clip("bad", broken.as_uri(), 0, 5)]))
    assert ingest(instance, key, make_resources(domain_url, artifact_root), run_config=THUMBS).success
    [(shot, render)] = shots_and_renders(domain_url)
    assert shot.media_status == "missing" and "unreadable media" in shot.notes[-1]
    assert render.details["slate"]


def test_source_range_outside_the_media_is_slated(tmp_path, domain_url, artifact_root, instance):
    movie = make_indexed_movie(tmp_path / "media" / "short.mov", frames=20, rate=Fraction(24))
    key = publish(domain_url, artifact_root, write_cut(tmp_path / "cut.otio", [clip("late", movie.as_uri(), 50, 5)]))
    assert ingest(instance, key, make_resources(domain_url, artifact_root), run_config=THUMBS).success
    [(shot, render)] = shots_and_renders(domain_url)
    assert "outside the media" in shot.notes[-1]
    assert render.details["slate"]


def test_unchanged_shots_are_reused_across_versions(tmp_path, db_url, artifact_root, instance):
    movie = make_indexed_movie(tmp_path / "media" / "plate.mov", frames=200, rate=Fraction(24))
    url = movie.as_uri()
    v1 = write_cut(
        tmp_path / "v1" / "edit.otio", [clip("a", url, 0, 20), clip("b", url, 40, 20), clip("c", url, 80, 20)]
    )
    v2 = write_cut(
        tmp_path / "v2" / "edit.otio", [clip("a", url, 0, 20), clip("b", url, 44, 20), clip("c", url, 80, 20)]
    )
    resources = make_resources(db_url, artifact_root)
    ingest(instance, publish(db_url, artifact_root, v1), resources, run_config=THUMBS)
    key2 = publish(db_url, artifact_root, v2)
    result = ingest(instance, key2, resources, run_config=THUMBS)
    metadata = result.asset_materializations_for_node("shot_thumbnails")[0].metadata
    assert (metadata["reused"].value, metadata["rendered"].value) == (2, 1)
    rows = [(shot, render) for shot, render in shots_and_renders(db_url) if render.run_id == result.run_id]
    by_name = {shot.name: render for shot, render in rows}
    assert by_name["a"].reused_from is not None and by_name["c"].reused_from is not None
    assert by_name["b"].reused_from is None
    assert read_index(Image.open(artifact_root / by_name["b"].output_path)) == 44
    assert read_index(Image.open(artifact_root / by_name["a"].output_path)) == 0
    assert key2 in by_name["a"].output_path  # reused files appear in the new cut's own folder too

    forced = ingest(
        instance,
        key2,
        resources,
        selection=None,
        run_config={"ops": {"shot_thumbnails": {"config": {"frame": "first", "width": 128, "force": True}}}},
    )
    assert forced.asset_materializations_for_node("shot_thumbnails")[0].metadata["rendered"].value == 3


def test_a_single_shot_can_be_rerendered(tmp_path, domain_url, artifact_root, instance):
    from media_pipeline.editorial.assets.cuts import contact_sheet, shot_thumbnails

    movie = make_indexed_movie(tmp_path / "media" / "plate.mov", frames=100, rate=Fraction(24))
    cut = write_cut(tmp_path / "edit.otio", [clip("a", movie.as_uri(), 0, 20), clip("b", movie.as_uri(), 30, 20)])
    resources = make_resources(domain_url, artifact_root)
    key = publish(domain_url, artifact_root, cut)
    ingest(instance, key, resources, run_config=THUMBS)
    shot_b = next(shot for shot, _ in shots_and_renders(domain_url) if shot.name == "b")
    result = ingest(
        instance,
        key,
        resources,
        selection=[shot_thumbnails, contact_sheet],
        run_config={"ops": {"shot_thumbnails": {"config": {"frame": "last", "width": 128, "shot_ids": [shot_b.id]}}}},
    )
    metadata = result.asset_materializations_for_node("shot_thumbnails")[0].metadata
    assert metadata["shots"].value == 1 and metadata["rendered"].value == 1
    latest = [render for shot, render in shots_and_renders(domain_url) if render.run_id == result.run_id]
    assert len(latest) == 1 and read_index(Image.open(artifact_root / latest[0].output_path)) == 49


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_image_sequence_media(tmp_path, domain_url, artifact_root, instance, suffix):
    frames = tmp_path / "render" / "sh010"
    make_indexed_sequence(frames, prefix="sh010_comp.", start=1001, frames=48, padding=4, suffix=suffix)
    reference = otio.schema.ImageSequenceReference(
        target_url_base="/old/server/renders/sh010/",  # moved since: relinked by file name
        name_prefix="sh010_comp.",
        name_suffix=suffix,
        start_frame=1001,
        frame_zero_padding=4,
        rate=RATE,
        available_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(86400, RATE), otio.opentime.RationalTime(48, RATE)
        ),
    )
    item = otio.schema.Clip(
        name="sh010",
        media_reference=reference,
        source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(86400 + 10, RATE), otio.opentime.RationalTime(20, RATE)
        ),
    )
    key = publish(
        domain_url, artifact_root, write_cut(tmp_path / "seq.otio", [item]), media_roots=[tmp_path / "render"]
    )
    ingest(
        instance,
        key,
        make_resources(domain_url, artifact_root),
        run_config={"ops": {"shot_thumbnails": {"config": {"frame": "middle", "width": 160}}}},
    )
    [(shot, render)] = shots_and_renders(domain_url)
    assert shot.media_kind == "sequence" and shot.media_frame == 1011
    assert read_index(Image.open(artifact_root / render.output_path)) == 1021


def test_a_frame_offset_outside_the_shot_is_a_slate_saying_so(tmp_path, domain_url, artifact_root, instance):
    movie = make_indexed_movie(tmp_path / "media" / "plate.mov", frames=100, rate=Fraction(24))
    key = publish(domain_url, artifact_root, write_cut(tmp_path / "e.otio", [clip("a", movie.as_uri(), 0, 5)]))
    ingest(
        instance,
        key,
        make_resources(domain_url, artifact_root),
        run_config={"ops": {"shot_thumbnails": {"config": {"frame": "12", "width": 128}}}},
    )
    [(_, render)] = shots_and_renders(domain_url)
    assert render.details["slate"]


def test_a_thumbnail_past_the_medias_real_end_is_the_slate_with_the_reason_on_the_shot(
    tmp_path, domain_url, artifact_root, instance
):
    from media_pipeline.editorial.assets.cuts import shot_thumbnails

    movie = make_indexed_movie(tmp_path / "media" / "plate.mov", frames=96, rate=Fraction(24))
    key = publish(domain_url, artifact_root, write_cut(tmp_path / "e.otio", [clip("a", movie.as_uri(), 40, 20)]))
    resources = make_resources(domain_url, artifact_root)
    ingest(instance, key, resources, run_config=THUMBS)
    # The file now holds less than it did when probed (re-copied short, or a container whose
    # header over-states its length): the middle frame, 50, is past its last picture.
    make_indexed_movie(movie, frames=24, rate=Fraction(24))
    run = {"ops": {"shot_thumbnails": {"config": {"frame": "middle", "width": 128}}}}
    result = ingest(instance, key, resources, selection=[shot_thumbnails], run_config=run)
    assert result.success  # not "1 thumbnail render(s) failed"
    shot, render = shots_and_renders(domain_url)[-1]
    assert render.details["slate"] and render.details["media_frame"] == 50
    with Image.open(artifact_root / render.output_path) as image:
        grey = image.convert("L")
        assert 25 < sum(grey.getdata()) / (grey.width * grey.height) < 90  # the slate, not a frame
    assert "thumbnail: media frame 50 requested; plate.mov holds only 24 picture(s)" in shot.notes
    forced = {"ops": {"shot_thumbnails": {"config": {"frame": "middle", "width": 128, "force": True}}}}
    ingest(instance, key, resources, selection=[shot_thumbnails], run_config=forced)
    assert sum(note.startswith("thumbnail:") for note in shots_and_renders(domain_url)[-1][0].notes) == 1


def test_an_invalid_frame_option_fails_the_run_with_a_sentence(tmp_path, domain_url, artifact_root, instance):
    movie = make_indexed_movie(tmp_path / "media" / "plate.mov", frames=100, rate=Fraction(24))
    key = publish(domain_url, artifact_root, write_cut(tmp_path / "e.otio", [clip("a", movie.as_uri(), 0, 5)]))
    result = ingest(
        instance,
        key,
        make_resources(domain_url, artifact_root),
        raise_on_error=False,
        run_config={"ops": {"shot_thumbnails": {"config": {"frame": "centre"}}}},
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "frame must be 'first', 'middle', 'last'" in failure.step_failure_data.user_failure_data.description
