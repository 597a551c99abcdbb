"""Review proxies per shot (H.264 with burn-ins) and a filmstrip per shot."""

import re
from fractions import Fraction
from pathlib import Path, PurePosixPath

import dagster as dg
from pydantic import Field

from media_pipeline.core.ffmpeg import X264_PRESETS, crf_problem
from media_pipeline.editorial.assets.cuts import (
    RenderRecorder,
    ffmpeg_render,
    link_or_copy,
    load_cut,
    preview_markdown,
    reusable_render,
    select_shots,
    succeeded_render,
)
from media_pipeline.editorial.proxies import (
    BURN_INS,
    ProxyOptions,
    ProxyPlan,
    plan_proxy,
    render_filmstrip,
    render_proxy,
)
from media_pipeline.editorial.requests import ShotSelection
from media_pipeline.editorial.timecodes import source_drop_frame
from media_pipeline.platform.job_kinds import RequestConfig
from media_pipeline.platform.progress import ProgressReporter
from media_pipeline.resources import ArtifactStore, DatabaseResource, FFmpegResource

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class ProxyConfig(RequestConfig, ShotSelection):
    """The shot_proxies config, and the body of `POST /v1/cuts/{id}/proxies` (strict: "480" is not a
    width, and an unknown option is a typo worth reporting)."""

    width: int = Field(default=1280, description="Proxy width; height follows the media's display aspect")
    crf: int = Field(default=23, description="H.264 constant rate factor")
    preset: str = Field(default="veryfast", description="x264 preset")
    gop: int = Field(default=12, description="Keyframe interval in frames: short, for scrubbing")
    handles: int = Field(default=0, description="Frames before and after the shot, clamped to the media")
    burn_ins: list[str] = Field(
        default=["shot_name", "source_timecode", "frame_number"],
        description=f"Any of {', '.join(BURN_INS)}",
    )
    filmstrip_frames: int = Field(default=8, description="Frames in each shot's filmstrip")
    force: bool = Field(default=False, description="Encode even where an identical proxy can be reused")

    def problems(self) -> list[tuple[str, str]]:
        """(field, what is wrong) for each option out of range: the API answers them as a 422, a
        launchpad run fails with them."""
        problems = [("burn_ins", f"unknown burn-in {item!r} (choose from {', '.join(BURN_INS)})")
                    for item in self.burn_ins if item not in BURN_INS]  # fmt: skip
        if self.width < 16 or self.width > 7680:
            problems.append(("width", f"width must be between 16 and 7680, not {self.width}"))
        if self.handles < 0:
            problems.append(("handles", f"handles must be 0 or more, not {self.handles}"))
        if self.gop < 1:
            problems.append(("gop", f"gop must be 1 or more, not {self.gop}"))
        if crf := crf_problem(self.crf):
            problems.append(("crf", crf))
        if self.preset not in X264_PRESETS:
            problems.append(("preset", f"preset must be one of {', '.join(X264_PRESETS)}, not {self.preset!r}"))
        if not 1 <= self.filmstrip_frames <= 64:
            problems.append(
                ("filmstrip_frames", f"filmstrip_frames must be between 1 and 64, not {self.filmstrip_frames}")
            )
        return problems

    def options(self) -> ProxyOptions:
        self.check()
        return ProxyOptions(self.width, self.crf, self.preset, self.gop, self.handles, tuple(self.burn_ins),
                            self.filmstrip_frames)  # fmt: skip


def _aspect(details: dict) -> Fraction:
    return Fraction(details["display_aspect"]) if details.get("display_aspect") else Fraction(16, 9)


@ffmpeg_render(
    kind="mp4",
    description="A review proxy per shot (H.264, bt709, short GOP, +faststart, burn-ins, optional handles) "
    "and a filmstrip per shot; unchanged shots reuse earlier proxies.",
)
def shot_proxies(
    context: dg.AssetExecutionContext,
    config: ProxyConfig,
    database: DatabaseResource,
    artifacts: ArtifactStore,
    ffmpeg: FFmpegResource,
) -> dg.MaterializeResult:
    key = context.partition_key
    options = config.options()
    folder = artifacts.cut_dir(key) / "proxies"
    run_id = context.run.run_id
    todo: list[tuple[ProxyPlan, str, Path, Fraction]] = []
    reused: list[ProxyPlan] = []
    rows: list[str] = []
    with database.session() as session:
        cut = load_cut(session, key)
        cut_id = cut.id
        label = f"{cut.name} v{cut.version:03d}"
        shots = select_shots(session, cut, config)
        names = {str(shot.id): shot.name for shot in shots}
        for shot in shots:
            plan = plan_proxy(shot, options, label, drop_frame=source_drop_frame(shot, cut))
            cache_key = plan.cache_key(options)
            stem = _UNSAFE_NAME.sub("_", plan.name).strip("_")[:60] or "shot"
            output = folder / f"{plan.index:04d}_{stem}_{cache_key[:10]}.mp4"
            earlier = None if config.force else reusable_render(session, artifacts, "proxy", cache_key)
            if earlier is not None and earlier.output_path:
                earlier_strip = str(PurePosixPath(earlier.output_path).with_suffix(".filmstrip.jpg"))
                link_or_copy(artifacts.localize(earlier.output_path), output)
                link_or_copy(artifacts.localize(earlier_strip), output.with_suffix(".filmstrip.jpg"))
                artifacts.publish(output, output.with_suffix(".filmstrip.jpg"))
                session.add(succeeded_render(cut_id, plan.shot_id, "proxy", config.model_dump(), cache_key,
                                        artifacts.relative(output), run_id, earlier.id, _details(plan)))  # fmt: skip
                reused.append(plan)
                rows.append(_row(plan, "reused"))
            else:
                todo.append((plan, cache_key, output, _aspect(shot.details or {})))

    with ProgressReporter.for_context(context, unit="shots") as progress:
        progress.plan(total=len(shots), items=names)
        for plan in reused:
            progress.item_done(str(plan.shot_id), reused=True)
        progress.log("info", f"{len(shots)} shot(s): {len(reused)} reused, {len(todo)} to encode")
        recorder = RenderRecorder(database, progress)

        def encode(item: tuple[ProxyPlan, str, Path, Fraction]) -> None:
            plan, _, output, aspect = item
            progress.item_started(str(plan.shot_id))
            render_proxy(plan, options, output, aspect)
            render_filmstrip(output, plan.frames, options.filmstrip_frames, output.with_suffix(".filmstrip.jpg"))
            artifacts.publish(output, output.with_suffix(".filmstrip.jpg"))

        def finished(item: tuple[ProxyPlan, str, Path, Fraction], outcome: object) -> None:
            plan, cache_key, output, _ = item
            row = succeeded_render(cut_id, plan.shot_id, "proxy", config.model_dump(), cache_key,
                              artifacts.relative(output), run_id, None, _details(plan))  # fmt: skip
            recorder.record(row, str(plan.shot_id), plan.name, outcome)
            if not isinstance(outcome, BaseException):
                rows.append(_row(plan, "encoded"))

        ffmpeg.map_parallel(encode, todo, finished)
        recorder.finish("proxy")
    metadata = {
        "shots": len(shots),
        "encoded": len(todo),
        "reused": len(reused),
        "folder": dg.MetadataValue.path(str(folder)),
        "proxies": dg.MetadataValue.md(
            "| shot | start timecode | frames | handles | |\n|---|---|---|---|---|\n" + "\n".join(sorted(rows))
        ),
    }
    strips = sorted(folder.glob("*.filmstrip.jpg"))
    if strips:
        metadata["preview"] = preview_markdown(strips[0])
    return dg.MaterializeResult(metadata=metadata)


def _details(plan: ProxyPlan) -> dict:
    return {"index": plan.index, "name": plan.name, "frames": plan.frames, "head": plan.head, "tail": plan.tail,
            "first_source_frame": plan.first_source_frame, "timecode": plan.timecode,
            "slate": bool(plan.slate)}  # fmt: skip


def _row(plan: ProxyPlan, state: str) -> str:
    name = plan.name.replace("|", "/")
    return f"| {plan.index:04d} {name} | {plan.timecode} | {plan.frames} | {plan.head}+{plan.tail} | {state} |"
