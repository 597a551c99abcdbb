"""A composition render as assets of one render partition: the plan, the clips of each provider
pool (one step per pool, so Dagster's pool limits hold across every render), the video.
Segments are items inside the run, each with its cache hit or miss and its provider's task id."""

import json
from pathlib import Path
from typing import Any

import dagster as dg

from media_pipeline.compositions import inputs, render
from media_pipeline.compositions.config import CompositionRenderConfig
from media_pipeline.compositions.generators import registry
from media_pipeline.compositions.generators.base import InputMedia
from media_pipeline.compositions.partitions import composition_renders, split_render_key
from media_pipeline.compositions.render import Plan, RenderError
from media_pipeline.core.ffmpeg import FFmpegError
from media_pipeline.library.store import LibraryStore
from media_pipeline.platform.executors import FFMPEG_QUEUE, FFMPEG_STEP_TAGS, GENERATORS_QUEUE, QUEUE_TAG
from media_pipeline.platform.progress import ProgressReporter
from media_pipeline.resources import ArtifactStore, DatabaseResource, FFmpegResource
from media_pipeline.settings import load_settings

GROUP = "compositions"
PROVIDER_CONCURRENCY = 4  # tasks one step keeps open at a provider; the pool limits steps on top


class _Hooks:
    def __init__(self, progress: ProgressReporter) -> None:
        self.progress = progress

    def stage(self, name: str) -> None:
        self.progress.stage(name)

    def item(self, item: str, status: str, **details: Any) -> None:
        if status in ("succeeded", "reused"):
            self.progress.item_done(item, reused=status == "reused", cache=details.get("cache"))
        elif status == "failed":
            self.progress.item_failed(item, details.get("error") or "failed", cache=details.get("cache"))
        else:
            self.progress.item(item, status, progress=details.get("progress"), cache=details.get("cache"),
                               task_id=details.get("task_id"))  # type: ignore[arg-type]  # fmt: skip

    def log(self, level: str, message: str) -> None:
        self.progress.log("warning" if level == "warning" else "info", message)


def _folder(artifacts: ArtifactStore, partition_key: str) -> tuple[Path, Path, str]:
    composition_id, render_id = split_render_key(partition_key)
    root = artifacts.root_path
    return root / "compositions" / str(composition_id), render.render_dir(root, composition_id, render_id), render_id


def _failure(exc: Exception) -> dg.Failure:
    if isinstance(exc, FFmpegError):
        return dg.Failure(description=f"the render failed: {exc.summary}", allow_retries=False)
    return dg.Failure(description=str(exc), allow_retries=False)


@dg.asset(
    partitions_def=composition_renders,
    group_name=GROUP,
    kinds={"json"},
    description="VALIDATE and PLAN: every segment's generation cache key, and whether it is cached, to generate "
    "(new, edited or forced) or, against the previous render, removed.",
)
def composition_plan(
    context: dg.AssetExecutionContext, config: CompositionRenderConfig, artifacts: ArtifactStore,
    database: DatabaseResource,
) -> dg.MaterializeResult:  # fmt: skip
    folder, staging, _ = _folder(artifacts, context.partition_key)
    progress = ProgressReporter.for_context(context, unit="segments")
    progress.stage("VALIDATE")
    spec = config.spec()
    latest = folder / "latest_plan.json"
    previous = Plan.from_json(latest.read_text()) if latest.is_file() else None
    generators = registry.generators(load_settings())
    wanted = {media_id for segment in spec.segments for media_id in segment.inputs}
    if spec.soundtrack is not None:
        wanted.add(spec.soundtrack)
    media: dict[int, InputMedia] = {}
    if wanted:
        with database.session() as session:
            media = inputs.resolve(session, wanted)
    try:
        plan = render.plan(spec, generators, render.cache_for(artifacts), media, previous)
    except RenderError as exc:
        raise _failure(exc) from exc
    progress.plan(len(plan.segments), {s.item: f"segment {s.index + 1} ({s.generator})" for s in plan.segments})
    for segment in plan.segments:
        progress.item(segment.item, "queued", cache="hit" if segment.decision == "cached" else "miss")
        progress.advance(item=segment.item)
    if plan.removed:
        progress.log("info", f"removed since the previous render: segments {', '.join(map(str, plan.removed))}")
    progress.flush()
    render.write_json(staging / "plan.json", json.loads(plan.to_json()))
    generate = [s.id for s in plan.segments if s.decision == "generate"]
    return dg.MaterializeResult(
        metadata={
            "plan": dg.MetadataValue.path(artifacts.relative(staging / "plan.json")),
            "cached": len(plan.segments) - len(generate),
            "to_generate": generate,
            "removed": plan.removed,
            "planned_frames": plan.total_frames,
        }
    )


def clips_asset(pool: str) -> dg.AssetsDefinition:
    """The generation step of one provider pool."""

    @dg.asset(
        name=f"composition_clips_{pool}",
        partitions_def=composition_renders,
        group_name=GROUP,
        deps=[composition_plan],
        pool=pool,
        # Celery: ffmpeg clips on the encoders' queue, provider calls on the generators' one.
        op_tags={QUEUE_TAG: FFMPEG_QUEUE if pool == "ffmpeg" else GENERATORS_QUEUE},
        kinds={"video"},
        description=f"GENERATE the plan's missing clips of the generators in the `{pool}` pool, concurrently; "
        "each is stored in the generation cache at once.",
    )
    def clips(
        context: dg.AssetExecutionContext, artifacts: ArtifactStore, ffmpeg: FFmpegResource
    ) -> dg.MaterializeResult:
        _, staging, _ = _folder(artifacts, context.partition_key)
        plan = Plan.from_json((staging / "plan.json").read_text())
        settings = load_settings()
        generators = registry.generators(settings)
        # A plug-in whose pool had no step when the code location loaded runs in the catch-all one.
        for segment in plan.segments:
            if segment.pool not in POOLS:
                segment.pool = FALLBACK_POOL
        progress = ProgressReporter.for_context(context, unit="segments")
        todo = [s for s in plan.segments if s.decision == "generate" and s.pool == pool]
        progress.plan(len(todo))
        concurrency = ffmpeg.concurrency if pool == "ffmpeg" else PROVIDER_CONCURRENCY
        try:
            results = render.generate(
                plan, pool, generators, render.cache_for(artifacts), staging / "work", _Hooks(progress),
                LibraryStore(artifacts).local_path, concurrency=concurrency, timeout=settings.generator_timeout,
            )  # fmt: skip
        except (RenderError, FFmpegError) as exc:
            raise _failure(exc) from exc
        finally:
            progress.flush()
        return dg.MaterializeResult(
            metadata={
                "generated": [r.segment for r in results],
                "tasks": {str(r.segment): r.task_id or "" for r in results},
            }
        )

    return clips


def video_asset(clip_assets: list[dg.AssetsDefinition]) -> dg.AssetsDefinition:
    @dg.asset(
        name="composition_video",
        partitions_def=composition_renders,
        group_name=GROUP,
        deps=clip_assets,
        pool="ffmpeg",
        op_tags=FFMPEG_STEP_TAGS,
        kinds={"ffmpeg", "mp4"},
        check_specs=[
            dg.AssetCheckSpec(
                "frame_count",
                asset="composition_video",
                blocking=True,
                description="The video has exactly the planned number of frames",
            )
        ],
        description="COMPOSE: every clip conformed to the composition's rate, size, pixel format and exact frame "
        "count, crossfades encoded as their own pieces, joined by stream copy; only new pieces are encoded.",
    )
    def composition_video(
        context: dg.AssetExecutionContext, artifacts: ArtifactStore, ffmpeg: FFmpegResource
    ) -> dg.MaterializeResult:
        folder, staging, render_id = _folder(artifacts, context.partition_key)
        plan = Plan.from_json((staging / "plan.json").read_text())
        progress = ProgressReporter.for_context(context, unit="segments")
        progress.plan(len(plan.segments))
        cache = render.cache_for(artifacts)
        output = folder / "output" / f"{render_id}.mp4"
        try:
            composed = render.compose(plan, cache, staging, output, _Hooks(progress), concurrency=ffmpeg.concurrency,
                                      localize=LibraryStore(artifacts).local_path)  # fmt: skip
        except (RenderError, FFmpegError) as exc:
            raise _failure(exc) from exc
        finally:
            progress.flush()
        for segment_id in composed.short_clips:
            progress.log(
                "warning", f"segment {segment_id}: its clip was shorter than the segment; its last frame is held"
            )
        progress.flush()
        segments = []
        for s in plan.segments:
            info = cache.info(s.key)
            segments.append({"id": s.id, "generator": s.generator, "version": s.payload["version"], "frames": s.frames,
                             "cache": "hit" if s.decision == "cached" else "miss", "key": s.key,
                             "task_id": info.get("task_id")})  # fmt: skip
        result = {
            "render_id": render_id, "composition_id": plan.composition_id, "video": artifacts.relative(composed.video),
            "frames": composed.frames, "planned_frames": composed.planned_frames, "rate": plan.rate,
            "size": [plan.width, plan.height], "segments": segments, "removed": plan.removed,
            "encoded_pieces": composed.encoded_pieces, "reused_pieces": composed.reused_pieces,
            "soundtrack": plan.soundtrack_media, "audio_samples": composed.audio_samples,
        }  # fmt: skip
        render.write_json(staging / "result.json", result)
        render.write_json(folder / "latest.json", result)
        render.write_json(folder / "latest_plan.json", json.loads(plan.to_json()))
        # The finished files go to the artifact store (a bucket with MEDIA_PIPELINE_STORAGE=s3);
        # the generation cache is the working copy's.
        artifacts.publish(composed.video, staging / "result.json", folder / "latest.json")
        rows = ["| segment | generator | frames | cache | task |", "|---|---|---|---|---|"]
        rows += [f"| {s['id']} | {s['generator']} v{s['version']} | {s['frames']} | {s['cache']} | "
                 f"{s['task_id'] or ''} |" for s in segments]  # fmt: skip
        return dg.MaterializeResult(
            metadata={
                "video": dg.MetadataValue.path(result["video"]),
                "frames": composed.frames,
                "planned_frames": composed.planned_frames,
                "encoded_pieces": composed.encoded_pieces,
                "reused_pieces": composed.reused_pieces,
                "segments": dg.MetadataValue.md("\n".join(rows)),
                **(
                    {"soundtrack": plan.soundtrack_media, "audio_samples": composed.audio_samples}
                    if plan.soundtrack_media is not None
                    else {}
                ),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name="frame_count",
                    passed=composed.frames == composed.planned_frames,
                    metadata={"detail": f"{composed.frames} frames, planned {composed.planned_frames}"},
                )
            ],
        )

    return composition_video


FALLBACK_POOL = "generators"


def pools() -> list[str]:
    """One generation step per provider pool of the generators installed when the code loads."""
    found = {g.capabilities.pool for g in registry.generators(load_settings()).values()}
    return sorted(found | {FALLBACK_POOL})


POOLS = pools()
CLIP_ASSETS = [clips_asset(pool) for pool in POOLS]
composition_video = video_asset(CLIP_ASSETS)
ASSETS = [composition_plan, *CLIP_ASSETS, composition_video]
