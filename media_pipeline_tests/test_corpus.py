"""Every real-world timeline in the shared corpus either ingests or fails with a sentence saying why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from media_pipeline.db.models import CutVersion, Render, Shot
from media_pipeline.resources import DatabaseResource
from media_pipeline_tests.conftest import CORPUS, ingest, make_resources, publish

# file -> (publish options, expected shot count)
INGESTS = {
    "25fps.edl": ({"rate": 25}, 4),
    "avid_example.edl": ({}, 2),
    "cdl.edl": ({}, 2),
    "clip_example.otio": ({}, 1),
    "dissolve_test.edl": ({}, 3),
    "dissolve_test_2.edl": ({}, 3),
    "dissolve_test_4.edl": ({}, 6),
    "effects.otio": ({}, 4),
    "gap_test.edl": ({}, 3),
    "generator_reference_test.otio": ({}, 1),
    "hiero_xml_export.xml": ({}, 2),
    "multiple_track.otio": ({}, 2),
    "multitrack.otio": ({}, 5),
    "nested_example.otio": ({}, 7),
    "nucoda_example.edl": ({}, 2),
    "preflattened.otio": ({}, 5),
    # 7 clips on 3 video tracks; 3 disabled clips and the disabled third track are left out.
    "premiere_enable_property.xml": ({}, 3),
    "premiere_example.edl": ({}, 2),
    "premiere_example.otio": ({}, 4),
    "premiere_example.xml": ({}, 4),
    "premiere_generators.xml": ({}, 6),
    "screening_example.edl": ({}, 9),
    "screening_example.otio": ({}, 9),
    "simple_cut.otio": ({}, 4),
    "speed_effects_small.edl": ({}, 5),
    "timecode_mismatch.edl": ({"rate": 25, "ignore_timecode_mismatch": True}, 20),
    "transition_duration.edl": ({}, 4),
    "transition_test.otio": ({}, 3),
    "wipe_test.edl": ({}, 3),
}
# file -> (publish options, words the failure sentence must contain)
FAILS = {
    "25fps.edl": ({}, ["do not fit 24 fps", "rate=25"]),
    "timecode_mismatch.edl": ({"rate": 25}, ["source and record durations disagree", "ignore_timecode_mismatch"]),
    "dissolve_test_fail.edl": ({}, ["is not a valid CMX 3600 EDL"]),
    "sample_just_track.xml": ({}, ["no video track", "no shots to extract"]),
    "multi_audio.edl": ({}, ["no video track", "audio track(s) only"]),
}


def test_the_corpus_is_fully_covered():
    on_disk = {p.name for p in CORPUS.iterdir() if p.name != "README.md"}
    assert on_disk == set(INGESTS) | set(FAILS)


@pytest.mark.parametrize("name", sorted(INGESTS))
def test_corpus_file_ingests(name, tmp_path, domain_url, artifact_root, instance):
    options, shot_count = INGESTS[name]
    source = tmp_path / name
    shutil.copy(CORPUS / name, source)  # never read the shared corpus in place: publish copies anyway
    key = publish(domain_url, artifact_root, source, **options)
    result = ingest(
        instance,
        key,
        make_resources(domain_url, artifact_root),
        run_config={"ops": {"shot_thumbnails": {"config": {"width": 96}}}},
    )
    assert result.success
    with DatabaseResource(url=domain_url).session() as session:
        cut = session.scalar(sa.select(CutVersion))
        shots = session.scalars(sa.select(Shot).order_by(Shot.index)).all()
        thumbnails = session.scalars(sa.select(Render).where(Render.kind == "thumbnail")).all()
        assert cut.status == "ingested" and cut.shot_count == shot_count == len(shots)
        assert [shot.index for shot in shots] == list(range(shot_count))
        # Corpus media lives on other machines: every missing shot says why, and still gets a slate.
        for shot in shots:
            if shot.media_status == "missing":
                assert shot.notes and ("not found" in shot.notes[-1] or "no media" in shot.notes[-1])
        assert len(thumbnails) == shot_count
        assert all((artifact_root / t.output_path).is_file() for t in thumbnails)
    assert (artifact_root / "cuts" / key / "contact_sheet.jpg").is_file()
    metadata = result.asset_materializations_for_node("cut_shots")[0].metadata
    assert metadata["shot_count"].value == shot_count


@pytest.mark.parametrize("name", sorted(FAILS))
def test_corpus_file_fails_with_a_reason(name, tmp_path, domain_url, artifact_root, instance):
    options, words = FAILS[name]
    source = tmp_path / name
    shutil.copy(CORPUS / name, source)
    key = publish(domain_url, artifact_root, source, **options)
    result = ingest(instance, key, make_resources(domain_url, artifact_root), raise_on_error=False)
    assert not result.success
    with DatabaseResource(url=domain_url).session() as session:
        cut = session.scalar(sa.select(CutVersion))
        assert cut.status == "failed"
        for word in words:
            assert word in cut.error
        assert "Traceback" not in cut.error
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert words[0] in failure.step_failure_data.user_failure_data.description


def test_unknown_format_is_refused_before_anything_is_stored(tmp_path, domain_url, artifact_root):
    source = tmp_path / "cut.prproj"
    source.write_bytes(b"not really")
    with pytest.raises(ValueError, match=r"no installed OTIO adapter reads '\.prproj' files; export the timeline as"):
        publish(domain_url, artifact_root, source)
    assert not any(Path(artifact_root).rglob("*.prproj"))
