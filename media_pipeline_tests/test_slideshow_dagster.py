"""The slideshow render on a real Dagster instance: partitions, stages, items, metadata, checks."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from media_pipeline.platform import job_kinds
from media_pipeline.platform.progress import ProgressEvent, decode
from media_pipeline.resources import ArtifactStore, FFmpegResource
from media_pipeline.slideshows.assets import slideshow_video
from media_pipeline.slideshows.partitions import slideshow_renders
from media_pipeline_tests.slideshow_media import COLOURS, make_image, make_tone, slideshow, video_frames

SMALL = {"resolution": "320x180", "preset": "veryfast", "fps": "25", "min_shot": 1.0, "max_shot": 3.0, "xfade": 0.2}


def run(instance: dg.DagsterInstance, root: Path, key: str, config: dict[str, object]) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions(slideshow_renders.name, [key])
    return dg.materialize(
        [slideshow_video],
        instance=instance,
        partition_key=key,
        resources={"artifacts": ArtifactStore(root=str(root)), "ffmpeg": FFmpegResource(concurrency=2)},
        run_config={"ops": {"slideshow_video": {"config": config}}},
        raise_on_error=False,
    )


def progress_events(instance: dg.DagsterInstance, run_id: str) -> list[ProgressEvent]:
    # Each record holds a batch of events (media_pipeline/platform/progress.py).
    return [event for entry in instance.all_logs(run_id) for event in decode(entry.user_message)]


def test_render_partition_reports_stages_items_metadata_and_checks(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    folder = slideshow(tmp_path, [{"images": ["a.png"], "voiceover": "v.wav"}, {"images": ["b.png"], "duration": 1.5}])
    make_image(folder / "images" / "a.png", COLOURS[0])
    make_image(folder / "images" / "b.png", COLOURS[1])
    make_tone(folder / "voiceovers" / "v.wav", frequency=1000, seconds=1.2)
    make_tone(folder / "music" / "m.wav", frequency=150, seconds=2.0)
    result = run(instance, tmp_path, "demo.r1", {**SMALL, "music": "m.wav", "ducking": True})
    assert result.success
    materialization = result.asset_materializations_for_node("slideshow_video")[0]
    metadata = materialization.metadata
    assert metadata["frames"].value == metadata["planned_frames"].value == 30 + 38 - 5
    assert metadata["video"].value == "slideshows/demo/output/video.mp4"
    assert metadata["ducking_depth_db"].value >= 10 and -17 <= metadata["loudness_lufs"].value <= -15
    assert video_frames(folder / "output" / "video.mp4") == 63
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"frame_count": True, "av_duration": True, "loudness": True, "ducking_depth": True}

    progress = progress_events(instance, result.run_id)
    stages = [e.stage for e in progress if e.type == "stage"]
    assert stages[0] == "VALIDATE" and stages[1] == "AUDIO_PREP" and stages[-2:] == ["CONCAT", "FINALIZE"]
    assert {"SCENE_BUILD[1]", "SCENE_BUILD[2]"} <= set(stages)
    plan = next(e for e in progress if e.type == "plan")
    assert plan.total == 2 and plan.items == ["scene_01", "scene_02"] and plan.unit == "scenes"
    done = {e.item: e.status for e in progress if e.type == "item" and e.status != "running"}
    assert done == {"scene_01": "succeeded", "scene_02": "succeeded"}

    again = run(instance, tmp_path, "demo.r2", {**SMALL, "music": "m.wav", "ducking": True})
    assert again.success
    meta = again.asset_materializations_for_node("slideshow_video")[0].metadata
    assert meta["reused_scenes"].value == [1, 2] and meta["encoded_segments"].value == 0
    statuses = {e.item: e.status for e in progress_events(instance, again.run_id) if e.type == "item"}
    assert statuses == {"scene_01": "reused", "scene_02": "reused"}


def test_bad_input_fails_the_run_with_a_sentence_and_nothing_in_output(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    folder = slideshow(tmp_path, [{"images": ["nope.png"]}])
    result = run(instance, tmp_path, "demo.r1", {**SMALL, "xfade": 5.0})
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    description = failure.step_failure_data.user_failure_data.description  # type: ignore[union-attr]
    assert "nope.png was not uploaded (POST it with subdir=images)" in description
    assert "xfade (5.0 s) must be at most half of minShot" in description
    assert not (folder / "output").exists()


def test_the_job_kind_is_registered() -> None:
    kind = job_kinds.get("slideshow_render")
    assert kind.area == "slideshows" and kind.dagster_job == "render_slideshow" and kind.progress_unit == "scenes"
    from media_pipeline.definitions import defs

    assert defs.resolve_job_def("render_slideshow") is not None
    config = kind.config_for(kind.request_model(fps="30000/1001"))
    assert config["ops"]["slideshow_video"]["config"]["fps"] == "30000/1001"
