"""bench/conform: the final_video conform of a 50-shot 1080p cut against one plain ffmpeg command.

In one run:
  baseline     one ffmpeg command: 50 input-seeked inputs, trim + concat filter, one x264 encode,
               silent AAC track, +faststart (the same output the pipeline makes)
  pipeline     the final_video asset on a real Dagster instance, no cached segments
  incremental  final_video for a second version where one shot's head is trimmed
Prints pipeline/baseline (target <= 1.2x) and what the incremental render saves.

Usage: .venv/bin/python bench/conform.py [--shots 50] [--preset veryfast] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import dagster as dg
import opentimelineio as otio

from media_pipeline import db
from media_pipeline.core import ffmpeg
from media_pipeline.editorial.assets.cuts import cut_shots, cut_timeline
from media_pipeline.editorial.assets.final_video import final_video
from media_pipeline.editorial.conform import EncodeOptions, encoder_args
from media_pipeline.editorial.partitions import cut_versions
from media_pipeline.editorial.publish import publish_cut
from media_pipeline.resources import ArtifactStore, DatabaseResource, FFmpegResource, MediaSearchResource
from media_pipeline.samples import make_indexed_movie

RATE = Fraction(24)
SPACING = 60


def shots_for(count: int, changed: int | None = None) -> list[tuple[int, int]]:
    shots = []
    for number in range(count):
        offset, duration = number * SPACING + 5, 30 + (number * 7) % 25
        if number == changed:
            offset, duration = offset + 3, duration - 3
        shots.append((offset, duration))
    return shots


def write_cut(path: Path, source: Path, shots: list[tuple[int, int]]) -> Path:
    fr = float(RATE)
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    for number, (offset, duration) in enumerate(shots):
        track.append(
            otio.schema.Clip(
                name=f"sh{number:03d}",
                media_reference=otio.schema.ExternalReference(target_url=source.as_uri()),
                source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(offset, fr), otio.opentime.RationalTime(duration, fr)
                ),
            )
        )
    timeline = otio.schema.Timeline(name=path.stem)
    timeline.tracks.append(track)
    path.parent.mkdir(parents=True, exist_ok=True)
    otio.adapters.write_to_file(timeline, str(path))
    return path


def baseline(source: Path, shots: list[tuple[int, int]], options: EncodeOptions, output: Path) -> float:
    args: list[str] = []
    chains = []
    for number, (offset, duration) in enumerate(shots):
        args += ["-ss", ffmpeg.format_seconds(ffmpeg.seek_seconds(offset, RATE)), "-i", str(source)]
        chains.append(
            f"[{number}:v]trim=end_frame={duration},setpts=PTS-STARTPTS,"
            f"scale={options.width}:{options.height},setsar=1,format=yuv420p[v{number}]"
        )
    total = sum(d for _, d in shots)
    labels = "".join(f"[v{n}]" for n in range(len(shots)))
    chains.append(f"{labels}concat=n={len(shots)}:v=1:a=0[v]")
    seconds = ffmpeg.format_seconds(Fraction(total) / RATE)
    args += ["-f", "lavfi", "-t", seconds, "-i", "anullsrc=r=48000:cl=stereo"]
    args += ["-filter_complex", ";".join(chains), "-map", "[v]", "-map", f"{len(shots)}:a", "-frames:v", str(total)]
    args += [*encoder_args(options), "-c:a", "aac", "-b:a", "192k", "-movflags", "+faststart"]
    started = time.perf_counter()
    ffmpeg.run(args, output, what="baseline conform")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shots", type=int, default=50)
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "media_pipeline_bench_conform")
    args = parser.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    source = work / "source_1080p.mp4"
    if not source.exists():
        print("generating the 1080p source ...", flush=True)
        make_indexed_movie(source, frames=args.shots * SPACING + 60, rate=RATE, size=(1920, 1080), gop=48)
    options = EncodeOptions(1920, 1080, RATE, 18, args.preset, True)
    shots = shots_for(args.shots)
    base = baseline(source, shots, options, work / "baseline.mp4")

    url = f"sqlite:///{work}/bench.db"
    artifacts = work / "artifacts"
    shutil.rmtree(artifacts / "segments", ignore_errors=True)
    db.migrate(url)
    stamp = time.time_ns()
    keys = []
    for version, changed in ((1, None), (2, args.shots // 2)):
        cut = write_cut(work / f"v{version}" / f"conform{stamp}.otio", source, shots_for(args.shots, changed))
        with db.session_scope(url) as session:
            keys.append(publish_cut(session, artifacts, project="bench", name=cut.stem, source=cut).cut.partition_key)
    resources = {
        "database": DatabaseResource(url=url),
        "artifacts": ArtifactStore(root=str(artifacts)),
        "ffmpeg": FFmpegResource(concurrency=args.workers),
        "media_search": MediaSearchResource(media_roots=""),
    }
    config = {"ops": {"final_video": {"config": {"preset": args.preset, "crf": 18}}}}
    timings = []
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(cut_versions.name, keys)
        for key in keys:
            dg.materialize([cut_timeline, cut_shots], instance=instance, partition_key=key, resources=resources)
            started = time.perf_counter()
            result = dg.materialize(
                [final_video],
                instance=instance,
                partition_key=key,
                resources=resources,
                run_config=config,
                selection=[final_video],
            )
            timings.append(time.perf_counter() - started)
            assert result.success
    full, incremental = timings
    print(f"shots: {args.shots}  1080p 24 fps  preset {args.preset}  crf 18  workers {args.workers}")
    print(f"baseline (one plain ffmpeg command): {base:.2f}s")
    print(f"pipeline final_video, nothing cached: {full:.2f}s")
    print(f"ratio pipeline/baseline:             {full / base:.2f}x  (target <= 1.20x)")
    print(
        f"one shot changed (v2, incremental):  {incremental:.2f}s  = {incremental / full:.0%} of a full render, "
        f"saves {full - incremental:.2f}s"
    )


if __name__ == "__main__":
    main()
