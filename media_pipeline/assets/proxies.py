"""Review proxies per shot (H.264 with burn-ins) and a filmstrip per shot."""

import re
import time
from fractions import Fraction
from pathlib import Path

import dagster as dg
from pydantic import Field

from media_pipeline.assets.editorial import (
    GROUP,
    ShotSelection,
    cut_shots,
    link_or_copy,
    load_cut,
    preview_markdown,
    reusable_render,
    select_shots,
    shot_render,
)
from media_pipeline.db.models import RenderStatus
from media_pipeline.editorial.proxies import (
    BURN_INS,
    ProxyOptions,
    ProxyPlan,
    plan_proxy,
    render_filmstrip,
    render_proxy,
)
from media_pipeline.partitions import cut_versions
from media_pipeline.resources import ArtifactStore, DatabaseResource, FFmpegResource

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class ProxyConfig(ShotSelection):
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

    def options(self) -> ProxyOptions:
        problems = [f"unknown burn-in {item!r} (choose from {', '.join(BURN_INS)})" for item in self.burn_ins
                    if item not in BURN_INS]  # fmt: skip
        if self.width < 16 or self.width > 7680:
            problems.append(f"width must be between 16 and 7680, not {self.width}")
        if self.handles < 0 or self.gop < 1 or not 0 <= self.crf <= 51:
            problems.append("handles must be >= 0, gop >= 1 and crf between 0 and 51")
        if problems:
            raise dg.Failure(description="; ".join(problems), allow_retries=False)
        return ProxyOptions(self.width, self.crf, self.preset, self.gop, self.handles, tuple(self.burn_ins),
                            self.filmstrip_frames)  # fmt: skip


def _aspect(details: dict) -> Fraction:
    return Fraction(details["display_aspect"]) if details.get("display_aspect") else Fraction(16, 9)


@dg.asset(
    partitions_def=cut_versions,
    group_name=GROUP,
    deps=[cut_shots],
    pool="ffmpeg",
    kinds={"ffmpeg", "mp4"},
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
    reused = 0
    rows: list[str] = []
    with database.session() as session:
        cut = load_cut(session, key)
        cut_id = cut.id
        label = f"{cut.name} v{cut.version:03d}"
        shots = select_shots(session, cut, config)
        for shot in shots:
            plan = plan_proxy(shot, options, label)
            cache_key = plan.cache_key(options)
            stem = _UNSAFE_NAME.sub("_", plan.name).strip("_")[:60] or "shot"
            output = folder / f"{plan.index:04d}_{stem}_{cache_key[:10]}.mp4"
            earlier = None if config.force else reusable_render(session, artifacts, "proxy", cache_key)
            if earlier is not None and earlier.output_path:
                link_or_copy(artifacts.path(earlier.output_path), output)
                link_or_copy(artifacts.path(earlier.output_path).with_suffix(".filmstrip.jpg"),
                             output.with_suffix(".filmstrip.jpg"))  # fmt: skip
                session.add(shot_render(cut_id, plan.shot_id, "proxy", config.model_dump(), cache_key,
                                        artifacts.relative(output), run_id, earlier.id, _details(plan)))  # fmt: skip
                reused += 1
                rows.append(_row(plan, "reused"))
            else:
                todo.append((plan, cache_key, output, _aspect(shot.details or {})))
    context.log.info(f"{len(shots)} shot(s): {reused} reused, {len(todo)} to encode")

    def encode(item: tuple[ProxyPlan, str, Path, Fraction]) -> None:
        plan, _, output, aspect = item
        render_proxy(plan, options, output, aspect)
        render_filmstrip(output, plan.frames, options.filmstrip_frames, output.with_suffix(".filmstrip.jpg"))

    done, failures = reused, []
    pending = []
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal last_flush
        with database.session() as session:
            session.add_all(pending)
        pending.clear()
        last_flush = time.monotonic()
        context.log.info(f"proxy {done}/{len(shots)} done")

    def finished(item: tuple[ProxyPlan, str, Path, Fraction], outcome: object) -> None:
        nonlocal done
        plan, cache_key, output, _ = item
        done += 1
        row = shot_render(cut_id, plan.shot_id, "proxy", config.model_dump(), cache_key,
                          artifacts.relative(output), run_id, None, _details(plan))  # fmt: skip
        if isinstance(outcome, BaseException):
            row.status, row.error, row.output_path = RenderStatus.FAILED, str(outcome), None
            failures.append(f"{plan.name}: {outcome}")
        else:
            rows.append(_row(plan, "encoded"))
        pending.append(row)
        if time.monotonic() - last_flush >= 1.0:
            flush()

    ffmpeg.map_parallel(encode, todo, finished)
    flush()
    if failures:
        raise dg.Failure(
            description=f"{len(failures)} proxy/proxies failed; the others are saved and reused on re-run",
            metadata={"failures": dg.MetadataValue.md("\n".join(f"- {line}" for line in failures))},
        )
    metadata = {
        "shots": len(shots),
        "encoded": len(todo),
        "reused": reused,
        "folder": dg.MetadataValue.path(str(folder)),
        "proxies": dg.MetadataValue.md("| shot | frames | handles | |\n|---|---|---|---|\n" + "\n".join(sorted(rows))),
    }
    strips = sorted(folder.glob("*.filmstrip.jpg"))
    if strips:
        metadata["preview"] = preview_markdown(strips[0])
    return dg.MaterializeResult(metadata=metadata)


def _details(plan: ProxyPlan) -> dict:
    return {"index": plan.index, "name": plan.name, "frames": plan.frames, "head": plan.head, "tail": plan.tail,
            "first_source_frame": plan.first_source_frame, "slate": bool(plan.slate)}  # fmt: skip


def _row(plan: ProxyPlan, state: str) -> str:
    return f"| {plan.index:04d} {plan.name.replace('|', '/')} | {plan.frames} | {plan.head}+{plan.tail} | {state} |"
