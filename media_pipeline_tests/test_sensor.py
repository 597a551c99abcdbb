"""The watch-folder sensor: partial copies, duplicate drops, cursor that cannot skip a file."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from media_pipeline.db.models import CutVersion, Project
from media_pipeline.editorial.sensors import WatchCursor, watch_folder_sensor
from media_pipeline.resources import ArtifactStore, DatabaseResource
from media_pipeline_tests.conftest import CORPUS


@pytest.fixture
def watch(tmp_path: Path) -> Path:
    folder = tmp_path / "watch"
    folder.mkdir()
    return folder


class Harness:
    def __init__(self, folder: Path, url: str, artifacts: Path, instance: dg.DagsterInstance):
        self.sensor = watch_folder_sensor(folder, interval_seconds=1, settle_seconds=0, default_edl_rate=24)
        self.resources = {"database": DatabaseResource(url=url), "artifacts": ArtifactStore(root=str(artifacts))}
        self.instance = instance
        self.cursor: str | None = None
        self.url = url

    def tick(self) -> list[dg.RunRequest]:
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor, resources=self.resources)
        result = self.sensor(context)
        if isinstance(result, dg.SkipReason):
            return []
        self.cursor = result.cursor
        for request in result.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        return list(result.run_requests or [])

    def cuts(self) -> list[tuple[str, str, int]]:
        with DatabaseResource(url=self.url).session() as session:
            rows = session.execute(
                sa.select(Project.name, CutVersion.name, CutVersion.version).join(Project).order_by(CutVersion.id)
            ).all()
        return [tuple(row) for row in rows]


@pytest.fixture
def harness(watch, db_url, artifact_root, instance) -> Harness:
    return Harness(watch, db_url, artifact_root, instance)


def test_file_is_published_only_after_two_identical_observations(harness, watch):
    data = (CORPUS / "screening_example.otio").read_bytes()
    target = watch / "reel1.otio"
    with target.open("wb") as fh:
        fh.write(data[: len(data) // 2])
        fh.flush()
        assert harness.tick() == []  # first sighting: settling
        fh.write(data[len(data) // 2 :])
    assert harness.tick() == []  # size changed since last look: still settling
    requests = harness.tick()
    assert len(requests) == 1
    assert requests[0].partition_key == "default.reel1.v001"
    assert harness.cuts() == [("default", "reel1", 1)]
    assert harness.tick() == []  # never twice


def test_duplicate_drop_is_deduplicated_by_content(harness, watch):
    shutil.copy(CORPUS / "simple_cut.otio", watch / "a.otio")
    harness.tick()
    assert len(harness.tick()) == 1
    shutil.copy(CORPUS / "simple_cut.otio", watch / "renamed_copy.otio")  # same bytes, new name
    (watch / "a.otio").unlink()
    shutil.copy(CORPUS / "simple_cut.otio", watch / "a.otio")  # same name again, same bytes
    harness.tick()
    assert harness.tick() == []
    assert harness.cuts() == [("default", "a", 1)]


def test_changed_content_under_the_same_name_is_a_new_version(harness, watch):
    target = watch / "edit.otio"
    shutil.copy(CORPUS / "simple_cut.otio", target)
    harness.tick()
    assert len(harness.tick()) == 1
    shutil.copy(CORPUS / "transition_test.otio", target)
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 5_000_000_000))
    harness.tick()
    assert [r.partition_key for r in harness.tick()] == ["default.edit.v002"]


def test_cursor_cannot_skip_files_with_old_or_equal_mtimes(harness, watch):
    first, second, old = watch / "one.otio", watch / "two.otio", watch / "old.otio"
    shutil.copy(CORPUS / "simple_cut.otio", first)
    shutil.copy(CORPUS / "transition_test.otio", second)
    same = first.stat().st_mtime_ns
    os.utime(second, ns=(same, same))  # equal mtimes
    harness.tick()
    assert len(harness.tick()) == 2
    # Copied in later with a preserved, older mtime (cp -p / rsync -t): still found.
    shutil.copy2(CORPUS / "nested_example.otio", old)
    os.utime(old, ns=(same - 10**12, same - 10**12))
    harness.tick()
    assert [r.partition_key for r in harness.tick()] == ["default.old.v001"]
    cursor = WatchCursor.parse(harness.cursor)
    assert set(cursor.handled) == {str(first), str(second), str(old)}


def test_subfolder_is_the_project_and_watch_json_sets_the_edl_rate(harness, watch):
    project = watch / "showA"
    project.mkdir()
    (project / "watch.json").write_text(json.dumps({"rate": 25}))
    shutil.copy(CORPUS / "25fps.edl", project / "25fps.edl")
    (watch / "notes.txt").write_text("ignored: not a timeline")
    (watch / ".hidden.otio").write_text("ignored: hidden")
    harness.tick()
    requests = harness.tick()
    assert [r.partition_key for r in requests] == ["showA.25fps.v001"]
    with DatabaseResource(url=harness.url).session() as session:
        cut = session.scalar(sa.select(CutVersion))
        assert cut.options["rate"] == "25"  # exact text, as 24000/1001 would be
        assert cut.rate == "25"


def test_missing_folder_is_a_skip_with_a_reason(tmp_path, domain_url, artifact_root, instance):
    harness = Harness(tmp_path / "nope", domain_url, artifact_root, instance)
    context = dg.build_sensor_context(instance=instance, resources=harness.resources)
    result = harness.sensor(context)
    assert isinstance(result, dg.SkipReason)
    assert "does not exist" in (result.skip_message or "")
