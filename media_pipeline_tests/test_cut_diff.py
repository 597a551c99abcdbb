"""Cut-to-cut change tracking: every category on hand-made versions, then the asset on real ingests."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy.orm import Session

from media_pipeline.db.models import CutStatus, CutVersion, Project, Shot
from media_pipeline.editorial.assets.cut_diff import cut_diff
from media_pipeline.editorial.assets.cuts import cut_shots, cut_timeline
from media_pipeline.editorial.cut_diff import (
    PRECEDENCE,
    CutDiff,
    DiffEntry,
    ShotFacts,
    diff_cuts,
    load_cut_history,
    media_identity,
)
from media_pipeline.resources import DatabaseResource
from media_pipeline_tests.conftest import ingest, make_resources, publish
from media_pipeline_tests.test_editorial import clip, write_cut


def shot(name: str, start: int, duration: int = 20, media: str | None = "A001.mov", rate: str = "24") -> ShotFacts:
    return ShotFacts(name, 0, 0, duration, start, duration, rate, media)


def cut(*shots: ShotFacts) -> list[ShotFacts]:
    """Number the shots and lay them end to end, as a timeline would."""
    placed, record = [], 0
    for index, item in enumerate(shots):
        placed.append(replace(item, index=index, record_start=record))
        record += item.record_duration
    return placed


def by_name(diff: CutDiff) -> dict[str, DiffEntry]:
    return {entry.name: entry for entry in diff.entries}


def statuses(diff: CutDiff) -> list[tuple[str, str]]:
    return [(entry.name, entry.status) for entry in diff.entries]


A, B, C, D = shot("a", 0), shot("b", 100), shot("c", 200), shot("d", 300)


def test_identical_versions_are_no_change():
    diff = diff_cuts(cut(A, B, C), cut(A, B, C))
    assert statuses(diff) == [("a", "no_change"), ("b", "no_change"), ("c", "no_change")]
    assert all(entry.changes == [] and entry.categories == ["no_change"] for entry in diff.entries)
    assert diff.changed() == []


def test_without_a_previous_version_every_shot_is_new():
    diff = diff_cuts([], cut(A, B))
    assert statuses(diff) == [("a", "new"), ("b", "new")]
    assert diff.entries[0].changes == ["new shot"] and diff.entries[0].old_source is None


def test_new_and_omitted_shots_are_listed_where_they_are_in_the_edit():
    diff = diff_cuts(cut(A, B, C, D), cut(A, shot("x", 500), C, D))
    # The omitted shot is listed after the shot it followed, so a replacement reads in place.
    assert statuses(diff) == [
        ("a", "no_change"),
        ("b", "omitted"),
        ("x", "new"),
        ("c", "no_change"),
        ("d", "no_change"),
    ]
    omitted = by_name(diff)["b"]
    assert (omitted.old_index, omitted.new_index, omitted.changes) == (1, None, ["omitted from the cut"])
    assert diff.summary() == {
        "new": 1,
        "reinstated": 0,
        "omitted": 1,
        "rescan": 0,
        "cut_change": 0,
        "media_changed": 0,
        "moved": 0,
        "no_change": 3,
    }
    # Shots after the insertion shift in record time and position, but none of them moved.
    assert by_name(diff)["c"].new_index == 2 and by_name(diff)["c"].old_index == 2


def test_an_omitted_first_shot_is_listed_first():
    assert statuses(diff_cuts(cut(A, B), cut(B))) == [("a", "omitted"), ("b", "no_change")]


def test_a_shot_back_after_an_omission_is_reinstated():
    v1, v2, v3 = cut(A, B, C), cut(A, C), cut(A, B, C, shot("x", 400))
    diff = diff_cuts(v2, v3, earlier=[v1])
    assert statuses(diff) == [("a", "no_change"), ("b", "reinstated"), ("c", "no_change"), ("x", "new")]
    assert by_name(diff)["b"].changes == ["back in the cut after being omitted from the previous version"]
    # Without the history the same shot is simply new.
    assert by_name(diff_cuts(v2, v3))["b"].status == "new"


def test_reinstated_looks_back_past_several_versions():
    v1, v2, v3, v4 = cut(A, B), cut(A), cut(A, C), cut(A, B, C)
    assert by_name(diff_cuts(v3, v4, earlier=[v1, v2]))["b"].status == "reinstated"


@pytest.mark.parametrize(
    ("new_start", "new_duration", "sentences"),
    [
        (104, 16, ["head trimmed 4 frames"]),
        (100, 23, ["tail extended 3 frames"]),
        (99, 21, ["head extended 1 frame"]),
        (100, 12, ["tail trimmed 8 frames"]),
        (92, 36, ["head extended 8 frames", "tail extended 8 frames"]),  # exactly the handles: still fits
        (105, 20, ["head trimmed 5 frames", "tail extended 5 frames"]),  # a slip
    ],
)
def test_trims_and_extensions_within_handles_are_cut_changes(new_start, new_duration, sentences):
    entry = by_name(diff_cuts(cut(A, B, C), cut(A, shot("b", new_start, new_duration), C)))["b"]
    assert (entry.status, entry.categories, entry.changes) == ("cut_change", ["cut_change"], sentences)
    assert (entry.old_source.start, entry.old_source.duration) == (100, 20)
    assert (entry.new_source.start, entry.new_source.duration) == (new_start, new_duration)


def test_an_extension_past_the_handles_needs_a_rescan():
    entry = by_name(diff_cuts(cut(A, B), cut(A, shot("b", 100, 30))))["b"]
    assert entry.status == "rescan"
    assert entry.changes == ["tail extended 10 frames, 2 frames past the 8-frame handles: rescan needed"]
    head = by_name(diff_cuts(cut(A, B), cut(A, shot("b", 88, 20))))["b"]
    assert head.status == "rescan" and head.categories == ["rescan", "cut_change"]
    assert head.changes == [
        "head extended 12 frames, 4 frames past the 8-frame handles: rescan needed",
        "tail trimmed 12 frames",
    ]


def test_handles_are_configurable():
    previous, current = cut(A, B), cut(A, shot("b", 100, 30))
    assert by_name(diff_cuts(previous, current, handles=10))["b"].status == "cut_change"
    assert by_name(diff_cuts(previous, current, handles=0))["b"].changes == [
        "tail extended 10 frames, 10 frames past the 0-frame handles: rescan needed"
    ]
    with pytest.raises(ValueError, match="handles"):
        diff_cuts(previous, current, handles=-1)


def test_a_shot_moved_in_the_edit_order():
    diff = diff_cuts(cut(A, B, C, D), cut(B, C, D, A))
    assert statuses(diff) == [("b", "no_change"), ("c", "no_change"), ("d", "no_change"), ("a", "moved")]
    assert by_name(diff)["a"].changes == ["moved from position 1 to 4 in the edit order"]


def test_moved_and_trimmed_is_a_cut_change_that_also_moved():
    entry = by_name(diff_cuts(cut(A, B, C), cut(shot("c", 202, 18), A, B)))["c"]
    assert entry.status == "cut_change" and entry.categories == ["cut_change", "moved"]
    assert entry.changes == ["head trimmed 2 frames", "moved from position 3 to 1 in the edit order"]


def test_different_media_under_the_same_name():
    entry = by_name(diff_cuts(cut(A, B), cut(A, shot("b", 100, media="B007.mov"))))["b"]
    assert entry.status == "media_changed"
    assert entry.changes == ["media changed from A001.mov to B007.mov"]
    lost = by_name(diff_cuts(cut(A, B), cut(A, shot("b", 100, media=None))))["b"]
    assert lost.changes == ["media changed from A001.mov to (none)"]


def test_duplicate_names_pair_up_in_order_of_occurrence():
    previous = cut(shot("a", 0), B, shot("a", 500))
    current = cut(shot("a", 0), B, shot("a", 504, 16), shot("a", 900))
    diff = diff_cuts(previous, current)
    assert statuses(diff) == [("a", "no_change"), ("b", "no_change"), ("a", "cut_change"), ("a", "new")]
    assert [(entry.old_index, entry.new_index) for entry in diff.entries] == [(0, 0), (1, 1), (2, 2), (None, 3)]
    # A name used more often than ever before is new; used as often as in an earlier version, reinstated.
    v1 = cut(shot("a", 0), shot("a", 500), B)
    diff = diff_cuts(cut(shot("a", 0), B), cut(shot("a", 0), shot("a", 500), B), earlier=[v1])
    assert statuses(diff) == [("a", "no_change"), ("a", "reinstated"), ("b", "no_change")]
    omitted = diff_cuts(previous, cut(shot("a", 0), B))
    assert statuses(omitted) == [("a", "no_change"), ("b", "no_change"), ("a", "omitted")]


def test_a_renamed_shot_is_matched_by_media_and_overlapping_source_range():
    previous = cut(A, shot("b", 100, media="B007.mov"), C)
    current = cut(A, shot("sh020", 104, 20, media="B007.mov"), C)
    entry = by_name(diff_cuts(previous, current))["sh020"]
    assert (entry.status, entry.old_name, entry.old_index, entry.new_index) == ("cut_change", "b", 1, 1)
    assert entry.changes == [
        "renamed from 'b' (matched by media and source range)",
        "head trimmed 4 frames",
        "tail extended 4 frames",
    ]
    # Same media but no overlap is another shot: new and omitted.
    apart = diff_cuts(previous, cut(A, shot("sh020", 130, 20, media="B007.mov"), C))
    assert {entry.name: entry.status for entry in apart.entries} == {
        "a": "no_change",
        "sh020": "new",
        "b": "omitted",
        "c": "no_change",
    }
    # Of several candidates the one overlapping most wins.
    both = cut(shot("x", 100, media="B007.mov"), shot("y", 110, media="B007.mov"))
    renamed = diff_cuts(both, cut(shot("z", 112, media="B007.mov")))
    assert by_name(renamed)["z"].old_name == "y" and by_name(renamed)["x"].status == "omitted"


def test_source_ranges_at_different_rates_are_converted_exactly():
    previous = cut(shot("a", 100, 20, rate="24"))
    assert diff_cuts(previous, cut(shot("a", 200, 40, rate="48"))).entries[0].categories == ["no_change"]
    entry = diff_cuts(previous, cut(shot("a", 204, 36, rate="48"))).entries[0]
    assert entry.status == "cut_change"
    assert entry.changes == ["source rate changed from 24 to 48; frames compared by time", "head trimmed 4 frames"]
    ntsc = diff_cuts(cut(shot("a", 1000, 50, rate="30000/1001")), cut(shot("a", 800, 40, rate="24000/1001")))
    assert ntsc.entries[0].categories == ["no_change"]
    # A range that falls between frames at the new rate says so rather than rounding it away.
    half = diff_cuts(cut(shot("a", 201, 40, rate="48")), cut(shot("a", 100, 21, rate="24"))).entries[0]
    assert half.changes[1:] == ["head extended 0.5 frames", "tail extended 0.5 frames"]
    # Handles count at the previous version's own rate: 8 frames at 24 are 16 at 48.
    assert diff_cuts(previous, cut(shot("a", 184, 56, rate="48"))).entries[0].status == "cut_change"
    assert diff_cuts(previous, cut(shot("a", 183, 57, rate="48"))).entries[0].status == "rescan"


def test_every_category_at_once_and_json():
    previous = cut(A, B, C, D, shot("e", 400), shot("f", 500))
    current = cut(
        shot("x", 900),  # new
        A,  # no_change
        shot("b", 100, media="B007.mov"),  # media_changed
        shot("e", 380, 40),  # rescan
        shot("g", 700),  # reinstated
        shot("f", 500),
        shot("c", 204, 16),  # cut_change, and moved to the end
    )
    diff = diff_cuts(previous, current, earlier=[cut(A, shot("g", 700))])
    result = {entry.name: entry.status for entry in diff.entries}
    assert result == {
        "x": "new",
        "a": "no_change",
        "c": "cut_change",
        "b": "media_changed",
        "d": "omitted",
        "e": "rescan",
        "g": "reinstated",
        "f": "no_change",
    }
    assert by_name(diff)["b"].categories == ["media_changed"]
    assert by_name(diff)["c"].categories == ["cut_change", "moved"]
    assert set(diff.summary()) == set(PRECEDENCE) and sum(diff.summary().values()) == len(diff.entries)
    data = json.loads(json.dumps(diff.as_dict()))
    assert data["handles"] == 8 and data["summary"]["rescan"] == 1
    entry = next(item for item in data["entries"] if item["name"] == "e")
    assert entry["old_source"] == {"start": 400, "duration": 20, "rate": "24"}
    assert entry["new_source"] == {"start": 380, "duration": 40, "rate": "24"}


def test_media_identity_is_the_recorded_file_name():
    assert media_identity("/mnt/relinked/A001.mov", "file://localhost/D%3a/media/A001.mov") == "A001.mov"
    assert media_identity(None, "file:///old/server/renders/sh010/sh010_comp.") == "sh010_comp."
    assert media_identity("/plates/B007.mov", None) == "B007.mov"
    assert media_identity(None, None) is None


def test_facts_from_the_orm_shot():
    row = Shot(
        index=3,
        name="sh040",
        record_start=96,
        record_duration=24,
        source_start=86410,
        source_duration=24,
        source_rate="24000/1001",
        media_path="/mnt/plates/A001C003.mov",
        media_url="file:///Volumes/show/A001C003.mov",
        media_status="linked",
    )
    facts = ShotFacts.from_shot(row)
    assert facts == ShotFacts("sh040", 3, 96, 24, 86410, 24, "24000/1001", "A001C003.mov")


def add_version(
    session: Session, project: Project, version: int, names: list[str], status: str = CutStatus.INGESTED
) -> CutVersion:
    row = CutVersion(
        project=project,
        name="edit",
        version=version,
        partition_key=f"{project.name}.edit.v{version:03d}",
        source_path="/dev/null",
        source_filename="edit.otio",
        source_sha256="0" * 64,
        status=status,
    )
    row.shots = [
        Shot(
            index=index,
            name=name,
            record_start=index,
            record_duration=1,
            source_start=0,
            source_duration=1,
            source_rate="24",
            media_status="missing",
        )
        for index, name in enumerate(names)
    ]
    session.add(row)
    session.flush()
    return row


def test_history_is_the_ingested_earlier_versions_of_the_same_cut(domain_url):
    with DatabaseResource(url=domain_url).session() as session:
        show = Project(name="show")
        other = Project(name="other")
        add_version(session, other, 1, ["other"])
        first = add_version(session, show, 1, ["v1"])
        add_version(session, show, 2, ["v2"])
        add_version(session, show, 3, ["broken"], status=CutStatus.FAILED)
        add_version(session, show, 4, ["v4"])
        current = add_version(session, show, 5, ["v5"])
        add_version(session, show, 6, ["later"])
        previous, earlier = load_cut_history(session, current)
        assert [s.name for s in previous] == ["v4"]
        assert [[s.name for s in version] for version in earlier] == [["v1"], ["v2"]]
        assert load_cut_history(session, first) == (None, [])


def test_the_asset_diffs_two_ingested_versions(tmp_path, db_url, artifact_root, instance, indexed_movie_24):
    plate = indexed_movie_24.as_uri()
    copy = shutil.copy(indexed_movie_24, tmp_path / "plate_24_v2.mov")
    tc = 86400  # the plate starts at 01:00:00:00

    def take(name: str, start: int, duration: int, url: str = plate):
        return clip(name, url, tc + start, duration)

    v1 = write_cut(
        tmp_path / "v1" / "edit.otio",
        [
            take("a", 0, 20),
            take("b", 20, 20),
            take("c", 40, 20),
            take("d", 60, 10),
            take("e", 70, 10),
            take("g", 80, 10),
        ],
    )
    v2 = write_cut(
        tmp_path / "v2" / "edit.otio",
        [
            take("a", 0, 20),
            take("b", 20, 20),
            take("e", 70, 10, Path(copy).as_uri()),
            take("g", 70, 30),
            take("c", 44, 16),
            take("f", 100, 10),
        ],
    )
    resources = make_resources(db_url, artifact_root)
    editorial = [cut_timeline, cut_shots]
    key1 = publish(db_url, artifact_root, v1)
    first = ingest(instance, key1, resources, selection=[*editorial, cut_diff])
    assert first.asset_materializations_for_node("cut_diff")[0].metadata["new"].value == 6
    key2 = publish(db_url, artifact_root, v2)
    ingest(instance, key2, resources, selection=editorial)

    result = dg.materialize([cut_diff], instance=instance, partition_key=key2, resources=resources)
    metadata = result.asset_materializations_for_node("cut_diff")[0].metadata
    assert metadata["against"].value == key1
    counts = {status: metadata[status].value for status in PRECEDENCE}
    assert counts == {
        "new": 1,
        "reinstated": 0,
        "omitted": 1,
        "rescan": 1,
        "cut_change": 1,
        "media_changed": 1,
        "moved": 0,
        "no_change": 2,
    }
    assert "head extended 10 frames, 2 frames past the 8-frame handles" in metadata["changes"].value
    path = artifact_root / "cuts" / key2 / "cut_diff.json"
    assert metadata["path"].value == str(path)
    data = json.loads(path.read_text())
    assert (data["cut"], data["against"]) == (key2, key1)
    assert [(entry["name"], entry["status"]) for entry in data["entries"]] == [
        ("a", "no_change"),
        ("b", "no_change"),
        ("e", "media_changed"),
        ("g", "rescan"),
        ("c", "cut_change"),
        ("d", "omitted"),
        ("f", "new"),
    ]
    c = next(entry for entry in data["entries"] if entry["name"] == "c")
    assert c["categories"] == ["cut_change", "moved"]
    assert c["changes"] == ["head trimmed 4 frames", "moved from position 3 to 5 in the edit order"]
    assert c["old_source"] == {"start": tc + 40, "duration": 20, "rate": "24"}
    assert next(e for e in data["entries"] if e["name"] == "e")["changes"] == [
        "media changed from plate_24.mov to plate_24_v2.mov"
    ]

    wider = dg.materialize(
        [cut_diff],
        instance=instance,
        partition_key=key2,
        resources=resources,
        run_config={"ops": {"cut_diff": {"config": {"handles": 10}}}},
    )
    counts = wider.asset_materializations_for_node("cut_diff")[0].metadata
    assert (counts["rescan"].value, counts["cut_change"].value) == (0, 2)
    assert json.loads(path.read_text())["handles"] == 10


def test_the_asset_refuses_a_cut_that_is_not_ingested(tmp_path, domain_url, artifact_root, instance):
    key = publish(domain_url, artifact_root, write_cut(tmp_path / "edit.otio", [clip("a", None, 0, 5)]))
    instance.add_dynamic_partitions("cut_versions", [key])
    result = dg.materialize(
        [cut_diff],
        instance=instance,
        partition_key=key,
        resources=make_resources(domain_url, artifact_root),
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "not ingested; materialize cut_shots first" in failure.step_failure_data.user_failure_data.description
    assert not (artifact_root / "cuts" / key / "cut_diff.json").exists()
