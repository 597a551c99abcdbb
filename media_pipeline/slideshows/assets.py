"""The slideshow render as one asset per render partition; scenes are items inside the run."""

import contextlib

import dagster as dg

from media_pipeline.core.ffmpeg import FFmpegError
from media_pipeline.platform.executors import FFMPEG_STEP_TAGS
from media_pipeline.platform.progress import ProgressReporter
from media_pipeline.resources import ArtifactStore, FFmpegResource
from media_pipeline.slideshows.config import SlideshowRenderConfig
from media_pipeline.slideshows.partitions import slideshow_renders, split_render_key
from media_pipeline.slideshows.render import RenderError, RenderResult, render
from media_pipeline.slideshows.spec import SceneList

GROUP = "slideshows"
CHECKS = {
    "frame_count": "The video has exactly the planned number of frames",
    "av_duration": "Audio and video durations are equal within one AAC frame",
    "loudness": "Integrated loudness within 1 LU of the target, true peak at most -1 dBTP",
    "ducking_depth": "With ducking, the music is at least 10 dB quieter under speech",
}


class _Hooks:
    """Render stages and scenes reported as structured progress, warnings also as Dagster warnings."""

    def __init__(self, context: dg.AssetExecutionContext, progress: ProgressReporter):
        self.context = context
        self.progress = progress

    def stage(self, name: str) -> None:
        self.progress.stage(name)

    def scene(self, index: int, status: str) -> None:
        item = f"scene_{index + 1:02d}"
        if status in ("succeeded", "reused"):
            self.progress.item_done(item, reused=status == "reused")
        elif status == "failed":
            self.progress.item_failed(item, "its segments failed to encode")
        else:
            self.progress.item_started(item)

    def log(self, level: str, message: str) -> None:
        self.progress.log("warning" if level == "warning" else "info", message)  # type: ignore[arg-type]
        if level == "warning":
            self.context.log.warning(message)


@dg.asset(
    partitions_def=slideshow_renders,
    group_name=GROUP,
    pool="ffmpeg",
    op_tags=FFMPEG_STEP_TAGS,
    kinds={"ffmpeg", "mp4"},
    check_specs=[
        dg.AssetCheckSpec(name, asset="slideshow_video", description=d, blocking=True) for name, d in CHECKS.items()
    ],
    description="A narrated slideshow rendered from its scene spec: frame-exact scenes and crossfades, voiceovers "
    "to the sample, ducked music, loudness-normalised AAC; only changed scenes are re-encoded.",
)
def slideshow_video(
    context: dg.AssetExecutionContext,
    config: SlideshowRenderConfig,
    artifacts: ArtifactStore,
    ffmpeg: FFmpegResource,
) -> dg.MaterializeResult:
    slideshow_id, render_id = split_render_key(context.partition_key)
    folder = artifacts.path(f"slideshows/{slideshow_id}")
    spec = config.spec()
    fetch_inputs(artifacts, f"slideshows/{slideshow_id}", spec.music)
    progress = ProgressReporter.for_context(context, unit="scenes")
    hooks = _Hooks(context, progress)
    try:
        result = render(folder, spec, hooks, render_id=render_id, concurrency=ffmpeg.concurrency, on_plan=progress.plan)
    except RenderError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    except FFmpegError as exc:
        raise dg.Failure(description=f"the render failed: {exc.summary}; intermediates are kept under work/") from exc
    finally:
        progress.flush()  # the reporter batches: what is still waiting goes out now
    records = folder / "renders"
    artifacts.publish(result.video, *result.scene_files, records / f"{render_id}.json", records / "latest.json")
    return dg.MaterializeResult(metadata=_metadata(artifacts, result), check_results=_checks(result))


def fetch_inputs(artifacts: ArtifactStore, prefix: str, music: str | None) -> None:
    """The scenes and the files they name, from the store into this machine's working copy
    (the API that stored them may be elsewhere). What the store lacks is left for VALIDATE to name."""
    try:
        scenes = SceneList.model_validate_json(artifacts.localize(f"{prefix}/scenes.json").read_text())
    except (FileNotFoundError, ValueError):
        return
    names = [f"images/{name}" for scene in scenes.scenes for name in scene.images]
    names += [f"voiceovers/{scene.voiceover}" for scene in scenes.scenes if scene.voiceover]
    names += [f"music/{music}"] if music else []
    for name in dict.fromkeys(names):
        with contextlib.suppress(FileNotFoundError):
            artifacts.localize(f"{prefix}/{name}")


def _checks(result: RenderResult) -> list[dg.AssetCheckResult]:
    checks = dict(result.checks)
    checks.setdefault("ducking_depth", (True, "ducking not requested"))
    return [
        dg.AssetCheckResult(check_name=name, passed=ok, metadata={"detail": detail})
        for name, (ok, detail) in checks.items()
    ]


def _metadata(artifacts: ArtifactStore, result: RenderResult) -> dict[str, object]:
    rows = ["| scene | first frame | frames | from | reused |", "|---|---|---|---|---|"]
    for scene in result.plan.scenes:
        reused = "yes" if scene.index in result.reused_scenes else ""
        source = scene.source + (" (clamped)" if scene.clamped else "")
        rows.append(f"| {scene.index + 1} | {scene.start} | {scene.frames} | {source} | {reused} |")
    metadata: dict[str, object] = {
        "video": dg.MetadataValue.path(artifacts.relative(result.video)),
        "frames": result.frames,
        "planned_frames": result.plan.total_frames,
        "fps": f"{result.plan.rate.numerator}/{result.plan.rate.denominator}",
        "video_seconds": result.video_seconds,
        "audio_seconds": result.audio_seconds,
        "reused_scenes": [i + 1 for i in result.reused_scenes],
        "encoded_segments": result.encoded_segments,
        "reused_segments": result.reused_segments,
        "scenes": dg.MetadataValue.md("\n".join(rows)),
        "scene_files": [artifacts.relative(p) for p in result.scene_files],
    }
    if result.loudness is not None:
        metadata["loudness_lufs"] = result.loudness
        metadata["true_peak_dbtp"] = result.true_peak
    if result.ducking_depth is not None:
        metadata["ducking_depth_db"] = result.ducking_depth
    if result.warnings:
        metadata["warnings"] = dg.MetadataValue.md("\n".join(f"- {w}" for w in result.warnings))
    return metadata
