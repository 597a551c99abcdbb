"""The extraction asset on a real Dagster instance: a batch's items in one run, bad items failing
alone, progress that never goes back, manifests, the asset check."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import dagster as dg
import pytest
from PIL import Image

from media_pipeline.extraction.assets import CHECK, extraction_frames, frames_check
from media_pipeline.extraction.job_kinds import FRAME_EXTRACTION
from media_pipeline.extraction.partitions import extraction_batches
from media_pipeline.extraction.request import ExtractionRequest
from media_pipeline.extraction.resources import ExtractionSources
from media_pipeline.platform.progress import ProgressEvent, decode
from media_pipeline.resources import ArtifactStore, DatabaseResource, FFmpegResource
from media_pipeline.samples import make_indexed_movie, read_index


def resources(artifact_root: Path, media_root: Path, item_timeout: int = 600) -> dict[str, object]:
    return {
        "artifacts": ArtifactStore(root=str(artifact_root)),
        "ffmpeg": FFmpegResource(concurrency=2),
        "extraction_sources": ExtractionSources(media_roots=str(media_root), item_timeout=item_timeout),
        "database": DatabaseResource(url=f"sqlite:///{artifact_root / 'domain.db'}"),
    }


def run_batch(
    instance: dg.DagsterInstance, batch: str, body: dict, artifact_root: Path, media_root: Path
) -> dg.ExecuteInProcessResult:
    request = ExtractionRequest.model_validate(body)
    instance.add_dynamic_partitions(extraction_batches.name, [batch])
    return dg.materialize(
        [extraction_frames],
        instance=instance,
        partition_key=batch,
        resources=resources(artifact_root, media_root),
        run_config=FRAME_EXTRACTION.config_for(request),
        raise_on_error=False,
    )


def progress_events(instance: dg.DagsterInstance, run_id: str) -> list[ProgressEvent]:
    # Each record holds a batch of events (media_pipeline/platform/progress.py).
    return [event for entry in instance.all_logs(run_id) for event in decode(entry.user_message)]


def test_a_batch_with_bad_items_succeeds_for_the_good_ones(instance, artifact_root, media_dir, tmp_path):
    good = [
        make_indexed_movie(media_dir / "a.mp4", frames=50, rate=Fraction(25)),
        make_indexed_movie(media_dir / "b.mov", frames=48, rate=Fraction(24000, 1001)),
    ]
    corrupt = media_dir / "corrupt.mp4"
    corrupt.write_bytes(good[0].read_bytes()[:2000])
    outside = tmp_path / "elsewhere.mp4"
    outside.write_bytes(good[0].read_bytes())
    body = {
        "items": [
            {"source": good[0].as_uri()},
            {"source": corrupt.as_uri()},
            {"source": good[1].as_uri(), "frames": {"mode": "timestamps", "timestamps": ["00:00:01:00", 0.5]}},
            {"source": outside.as_uri()},
            {"media_id": 4},
        ],
        "frames": {"mode": "frames", "frames": [0, 24, 49]},
        "crop": {"aspect": "1:1"},
        "format": "png",
        "width": 90,
    }
    result = run_batch(instance, "ex_partial", body, artifact_root, media_dir)
    assert result.success

    manifest = json.loads((artifact_root / "extractions/ex_partial/manifest.json").read_text())
    assert manifest["counts"] == {"items": 5, "succeeded": 2, "failed": 3, "frames": 5}
    assert manifest["status"] == "partial"
    items = manifest["items"]
    assert [i["status"] for i in items] == ["succeeded", "failed", "succeeded", "failed", "failed"]
    assert "corrupt.mp4 is not a readable video file" in items[1]["error"]
    assert "MEDIA_PIPELINE_MEDIA_ROOTS" in items[3]["error"]
    assert "there is no media with id 4 in the library" in items[4]["error"]
    for failed in (items[1], items[3], items[4]):
        assert str(tmp_path) not in failed["error"]

    assert [f["index"] for f in items[0]["frames"]] == [0, 24, 49]
    assert [f["index"] for f in items[2]["frames"]] == [11, 24]  # 0.5 s at 23.976 is frame 11
    for item in (items[0], items[2]):
        assert item["sha256"] and item["provenance"]["kind"] == "file"
        for frame in item["frames"]:
            assert frame["crop"] == {"x": 70, "y": 0, "width": 180, "height": 180}
            with Image.open(artifact_root / frame["path"]) as image:
                assert image.size == (90, 90)
    # The square crop keeps the middle bars only; the full-width index is checked elsewhere.
    item_manifest = json.loads((artifact_root / "extractions/ex_partial/items/item-000/manifest.json").read_text())
    assert item_manifest == items[0]

    materialization = result.asset_materializations_for_node("extraction_frames")[0]
    assert materialization.metadata["frames"].value == 5
    assert materialization.metadata["failed"].value == 3
    assert "preview" in materialization.metadata
    assert "| item-001 | " in materialization.metadata["table"].value
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == CHECK and check.passed

    events = progress_events(instance, result.run_id)
    plan = next(e for e in events if e.type == "plan")
    assert plan.total == 3 + 2 and plan.unit == "frames"
    # The count moves on `advance` events and on the item event that ends an item (one event both
    # finishes the item and counts its last frames).
    advances = [e for e in events if e.type in ("advance", "item") and e.done is not None]
    done = [e.done for e in advances]
    assert done == sorted(done) and done[-1] == plan.total
    assert all(d < plan.total for d in done[:-1])  # 100 % only at the very end
    statuses = {e.item: e.status for e in events if e.type == "item" and e.status in ("succeeded", "failed")}
    assert statuses == {
        "item-000": "succeeded",
        "item-001": "failed",
        "item-002": "succeeded",
        "item-003": "failed",
        "item-004": "failed",
    }
    logs = [e for e in events if e.type == "log"]
    assert {e.item for e in logs if e.level == "error"} == {"item-001", "item-003", "item-004"}


def test_full_frames_in_the_run_are_the_named_frames(instance, artifact_root, media_dir):
    movie = make_indexed_movie(media_dir / "c.mp4", frames=60, rate=Fraction(30000, 1001))
    body = {"items": [{"source": movie.as_uri()}], "frames": {"mode": "interval", "every_frames": 15}}
    result = run_batch(instance, "ex_full", body, artifact_root, media_dir)
    assert result.success
    manifest = json.loads((artifact_root / "extractions/ex_full/manifest.json").read_text())
    frames = manifest["items"][0]["frames"]
    assert [f["index"] for f in frames] == [0, 15, 30, 45]
    for frame in frames:
        with Image.open(artifact_root / frame["path"]) as image:
            assert read_index(image) == frame["index"]
        assert frame["timecode"] == f"00:00:{frame['index'] // 30:02d}:{frame['index'] % 30:02d}"


def test_the_run_fails_only_when_every_item_failed(instance, artifact_root, media_dir):
    body = {"items": [{"media_id": 1}, {"source": (media_dir / "missing.mp4").as_uri()}]}
    result = run_batch(instance, "ex_none", body, artifact_root, media_dir)
    assert not result.success
    failure = result.get_step_failure_events()[0]
    assert "every item of the batch failed" in failure.step_failure_data.user_failure_data.description
    manifest = json.loads((artifact_root / "extractions/ex_none/manifest.json").read_text())
    assert manifest["status"] == "failed"


def test_an_item_past_its_time_limit_fails_alone(instance, artifact_root, media_dir):
    movie = make_indexed_movie(media_dir / "d.mp4", frames=20)
    request = ExtractionRequest.model_validate({"items": [{"source": movie.as_uri()}]})
    instance.add_dynamic_partitions(extraction_batches.name, ["ex_slow"])
    result = dg.materialize(
        [extraction_frames],
        instance=instance,
        partition_key="ex_slow",
        resources=resources(artifact_root, media_dir, item_timeout=0),
        run_config=FRAME_EXTRACTION.config_for(request),
        raise_on_error=False,
    )
    assert not result.success
    manifest = json.loads((artifact_root / "extractions/ex_slow/manifest.json").read_text())
    assert "took longer than its time limit" in manifest["items"][0]["error"]


def test_the_item_limit(monkeypatch):
    monkeypatch.setenv("MEDIA_PIPELINE_MAX_VIDEOS_PER_REQUEST", "3")
    items = [{"media_id": n} for n in range(1, 5)]
    with pytest.raises(ValueError, match="4 videos is more than one request may hold"):
        ExtractionRequest.model_validate({"items": items})
    assert len(ExtractionRequest.model_validate({"items": items[:3]}).items) == 3


def test_the_check_fails_when_a_listed_frame_is_missing_or_unexplained(artifact_root):
    store = ArtifactStore(root=str(artifact_root))
    (artifact_root / "f.jpg").write_bytes(b"x")
    frame = {"path": "f.jpg", "requested": ["frame 0"]}
    ok = {"item": "item-000", "status": "succeeded", "mode": "frames", "planned": 1, "frames": [frame], "warnings": []}
    assert frames_check([ok, {"item": "item-001", "status": "failed", "error": "a sentence"}], store).passed
    gone = {**ok, "frames": [{"path": "gone.jpg", "requested": ["frame 0"]}]}
    short = {**ok, "planned": 2}
    explained = {**short, "warnings": ["frames 7 do not exist: the video has 5 frames (0..4)"]}
    assert not frames_check([gone], store).passed
    assert not frames_check([short], store).passed
    assert frames_check([explained], store).passed
    assert not frames_check([{"item": "item-002", "status": "failed", "error": None}], store).passed
