"""bench/compositions: 8 segments of 3 s at 1080p from the local generator.

In one run:
  full        the render_composition assets on a real Dagster instance, nothing cached: 8 clips
              generated, conformed, joined
  re-render   the same composition after one segment's seed changed (1 clip generated, 1 conformed)
  compose     the composition step alone (conform every clip to the exact frame, join by stream
              copy), the clips cached, against
  baseline    one plain ffmpeg concat command over the same clips (fps, scale, crop, the concat
              filter, x264 at the same settings): the same video
Prints re-render/full (target <= 0.3x) and compose/baseline (target <= 1.2x).

Usage: .venv/bin/python bench/compositions.py [--segments 8] [--seconds 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import dagster as dg

from media_pipeline.compositions import render
from media_pipeline.compositions.assets import ASSETS
from media_pipeline.compositions.config import CompositionRenderConfig, SegmentConfig
from media_pipeline.compositions.partitions import composition_renders
from media_pipeline.core import ffmpeg, segments
from media_pipeline.resources import ArtifactStore, DatabaseResource, FFmpegResource

RATE = Fraction(24)
WIDTH, HEIGHT = 1920, 1080
SOURCES = ("testsrc2", "gradients", "color", "title")


class Quiet:
    def stage(self, name: str) -> None:
        pass

    def item(self, item: str, status: str, **details: Any) -> None:
        pass

    def log(self, level: str, message: str) -> None:
        pass


def config(count: int, frames: int, changed: int | None = None) -> CompositionRenderConfig:
    segs = [
        SegmentConfig(
            id=n + 1, generator="local", prompt=f"Segment {n + 1}", seed=n + (1000 if n == changed else 0),
            params_json=json.dumps({"source": SOURCES[n % len(SOURCES)]}), frames=frames,
        )
        for n in range(count)
    ]  # fmt: skip
    return CompositionRenderConfig(composition_id=1, rate="24", width=WIDTH, height=HEIGHT, segments=segs)


def materialize(instance: dg.DagsterInstance, root: Path, key: str, run_config: CompositionRenderConfig) -> float:
    instance.add_dynamic_partitions(composition_renders.name, [key])
    started = time.perf_counter()
    result = dg.materialize(
        ASSETS, instance=instance, partition_key=key,
        resources={"artifacts": ArtifactStore(root=str(root)), "ffmpeg": FFmpegResource(concurrency=2),
                   "database": DatabaseResource(url=f"sqlite:///{root}/domain.db")},
        run_config={"ops": {"composition_plan": {"config": run_config.model_dump()}}},
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    assert result.success
    return elapsed


def baseline(plan: render.Plan, cache: render.GenerationCache, output: Path) -> float:
    look = plan.look
    args: list[str] = []
    chains = []
    for number, segment in enumerate(plan.segments):
        args += ["-i", str(cache.clip(segment.key))]
        chains.append(
            f"[{number}:v]fps={ffmpeg.rate_arg(look.rate)},scale={look.width}:{look.height}:"
            f"force_original_aspect_ratio=increase,crop={look.width}:{look.height},setsar=1,format=yuv420p,"
            f"trim=end_frame={segment.frames}[v{number}]"
        )
    joined = "".join(f"[v{n}]" for n in range(len(plan.segments)))
    chains.append(f"{joined}concat=n={len(plan.segments)}:v=1:a=0[v]")
    args += ["-filter_complex", ";".join(chains), "-map", "[v]"]
    args += segments.encoder_args(look, plan.total_frames)
    started = time.perf_counter()
    ffmpeg.run(args, output, what="baseline concat")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--segments", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-compositions-"))
    frames = int(args.seconds * RATE)
    with dg.instance_for_test() as instance:
        full = materialize(instance, work, "1.full", config(args.segments, frames))
        again = materialize(instance, work, "1.changed", config(args.segments, frames, changed=args.segments // 2))

    cache = render.cache_for(ArtifactStore(root=str(work)))
    plan = render.Plan.from_json((work / "compositions/1/renders/full/plan.json").read_text())
    shutil.rmtree(cache.root / "pieces")  # the clips stay cached: this times conform + join alone
    started = time.perf_counter()
    render.compose(plan, cache, work / "bench", work / "bench" / "compose.mp4", Quiet(), concurrency=2)
    compose = time.perf_counter() - started
    plain = baseline(plan, cache, work / "bench" / "baseline.mp4")
    assert segments.count_frames(work / "bench" / "baseline.mp4") == plan.total_frames

    print(f"{args.segments} segments x {args.seconds} s at {WIDTH}x{HEIGHT}, {RATE} fps, local generator")
    print(f"full render           {full:7.2f} s")
    print(f"re-render, 1 changed  {again:7.2f} s   {again / full:.2f}x of full (target <= 0.3x)")
    print(f"compose (conform+join){compose:7.2f} s")
    print(f"plain ffmpeg concat   {plain:7.2f} s   compose is {compose / plain:.2f}x (target <= 1.2x)")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
