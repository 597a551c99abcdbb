"""bench/thumbnails: the pipeline's thumbnail run against a plain parallel ffmpeg loop.

Builds a 200-shot cut over a generated 1080p H.264 source (2 s GOP, start timecode
01:00:00:00), then, in one run, times
  baseline  - a thread pool of the same size running `ffmpeg -ss T -i src -frames:v 1 -vf scale` per shot
  pipeline  - the real `ingest_cut` job (read timeline, extract shots, probe media, render
              thumbnails in parallel, contact sheet) executed on a real Dagster instance
and prints pipeline / baseline. Target: at most 1.3x.

Usage: .venv/bin/python bench/thumbnails.py [--shots 200] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import dagster as dg
import opentimelineio as otio

from media_pipeline import db
from media_pipeline.core import ffmpeg
from media_pipeline.editorial.assets.cuts import editorial_assets
from media_pipeline.editorial.partitions import cut_versions
from media_pipeline.editorial.publish import publish_cut
from media_pipeline.resources import ArtifactStore, DatabaseResource, FFmpegResource, MediaSearchResource
from media_pipeline.samples import make_indexed_movie

RATE = Fraction(24)
SPACING = 36  # source frames between shot starts
WIDTH = 480


def build(workdir: Path, shots: int) -> tuple[Path, Path, list[int]]:
    source = workdir / "source_1080p.mp4"
    if not source.exists():
        print(f"generating {shots * SPACING} frames of 1080p H.264 ...", flush=True)
        make_indexed_movie(
            source, frames=shots * SPACING, rate=RATE, size=(1920, 1080), start_timecode="01:00:00:00", gop=48
        )
    start = otio.opentime.from_timecode("01:00:00:00", float(RATE)).value
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    middles = []
    for number in range(shots):
        offset, duration = number * SPACING + (number % 7), 12 + number % 17
        middles.append(offset + duration // 2)
        track.append(
            otio.schema.Clip(
                name=f"sh{number:04d}",
                media_reference=otio.schema.ExternalReference(target_url=source.as_uri()),
                source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(start + offset, float(RATE)),
                    otio.opentime.RationalTime(duration, float(RATE)),
                ),
            )
        )
    timeline = otio.schema.Timeline(name="bench")
    timeline.tracks.append(track)
    cut = workdir / f"bench_{shots}.otio"
    otio.adapters.write_to_file(timeline, str(cut))
    return source, cut, middles


def baseline(source: Path, frames: list[int], out: Path, workers: int) -> float:
    out.mkdir(parents=True, exist_ok=True)
    exe = ffmpeg.ffmpeg_exe()

    def grab(item: tuple[int, int]) -> None:
        number, frame = item
        seek = f"{float((Fraction(frame) - Fraction(1, 2)) / RATE):.6f}"
        import subprocess

        subprocess.run(
            [
                exe,
                "-v",
                "error",
                "-y",
                "-ss",
                seek,
                "-i",
                str(source),
                "-frames:v",
                "1",
                "-vf",
                f"scale={WIDTH}:-2",
                "-q:v",
                "2",
                str(out / f"{number:04d}.jpg"),
            ],
            check=True,
        )

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(grab, enumerate(frames)))
    return time.perf_counter() - started


def pipeline(cut: Path, workdir: Path, workers: int) -> float:
    url = f"sqlite:///{workdir}/bench.db"
    artifacts = workdir / "artifacts"
    db.migrate(url)
    with db.session_scope(url) as session:
        key = publish_cut(
            session, artifacts, project="bench", name=f"run{time.time_ns()}", source=cut
        ).cut.partition_key
    resources = {
        "database": DatabaseResource(url=url),
        "artifacts": ArtifactStore(root=str(artifacts)),
        "ffmpeg": FFmpegResource(concurrency=workers),
        "media_search": MediaSearchResource(media_roots=""),
    }
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(cut_versions.name, [key])
        started = time.perf_counter()
        result = dg.materialize(
            editorial_assets,
            instance=instance,
            partition_key=key,
            resources=resources,
            run_config={"ops": {"shot_thumbnails": {"config": {"width": WIDTH, "force": True}}}},
        )
        elapsed = time.perf_counter() - started
    assert result.success
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shots", type=int, default=200)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "media_pipeline_bench")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    source, cut, middles = build(args.workdir, args.shots)
    base_before = baseline(source, middles, args.workdir / "baseline", args.workers)
    ours = pipeline(cut, args.workdir, args.workers)
    base_after = baseline(source, middles, args.workdir / "baseline", args.workers)
    base = (base_before + base_after) / 2
    print(f"shots: {args.shots}  workers: {args.workers}  source: 1080p H.264 24 fps, GOP 48")
    print(f"baseline (plain parallel ffmpeg): {base_before:.2f}s / {base_after:.2f}s  mean {base:.2f}s")
    print(f"pipeline (ingest_cut job):        {ours:.2f}s")
    print(f"ratio pipeline/baseline:          {ours / base:.2f}x  (target <= 1.30x)")


if __name__ == "__main__":
    main()
