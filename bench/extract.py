"""bench/extract: the extraction pipeline against one plain ffmpeg command per video.

Generates a 1080p H.264 movie (25 fps, GOP 50) once, cached under the work folder, and copies it
to `--videos` files. Then, in one invocation, times
  baseline  - a thread pool of `--workers` running, per video, one
              `ffmpeg -i v.mp4 -vf select='not(mod(n,50))',crop=1280:720:320:180 -fps_mode passthrough
              -q:v 2 frame_%04d.jpg` (a frame every 2 s, cropped, JPEG)
  pipeline  - the real `extraction_frames` asset on a real Dagster instance, one batch of all the
              videos, `interval` every_seconds=2, the same crop box, JPEG, `--workers` items at once
and prints the decoded frames per second of each, their ratio (target: at most 1.2x) and the
pipeline's overhead per item. The baseline runs before and after the pipeline; its mean is used.

Usage: .venv/bin/python bench/extract.py [--videos 10] [--seconds 60] [--workers 2] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import dagster as dg

from media_pipeline.core import ffmpeg
from media_pipeline.extraction.assets import extraction_frames
from media_pipeline.extraction.job_kinds import FRAME_EXTRACTION
from media_pipeline.extraction.partitions import extraction_batches
from media_pipeline.extraction.request import ExtractionRequest
from media_pipeline.extraction.resources import ExtractionSources
from media_pipeline.resources import ArtifactStore, DatabaseResource, FFmpegResource
from media_pipeline.samples import make_indexed_movie

RATE = Fraction(25)
EVERY = 2  # seconds
CROP = {"x": 320, "y": 180, "width": 1280, "height": 720}


def build(workdir: Path, videos: int, seconds: int) -> list[Path]:
    media = workdir / "media"
    media.mkdir(parents=True, exist_ok=True)
    master = workdir / f"master_{seconds}s_1080p.mp4"
    if not master.exists():
        print(f"generating {seconds} s of 1080p H.264 ...", flush=True)
        make_indexed_movie(master, frames=seconds * 25, rate=RATE, size=(1920, 1080), gop=50)
    paths = []
    for number in range(videos):
        path = media / f"video_{number:02d}.mp4"
        if not path.exists() or path.stat().st_size != master.stat().st_size:
            shutil.copyfile(master, path)
        paths.append(path)
    return paths


def baseline(paths: list[Path], out: Path, workers: int) -> tuple[float, int]:
    shutil.rmtree(out, ignore_errors=True)
    step = EVERY * 25
    crop = f"crop={CROP['width']}:{CROP['height']}:{CROP['x']}:{CROP['y']}"

    def one(path: Path) -> None:
        folder = out / path.stem
        folder.mkdir(parents=True)
        vf = f"select='not(mod(n\\,{step}))',{crop}"
        ffmpeg.run(["-i", str(path), "-vf", vf, "-fps_mode", "passthrough", "-q:v", "2", str(folder / "f_%04d.jpg")])

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, paths))
    elapsed = time.perf_counter() - started
    return elapsed, sum(1 for _ in out.rglob("*.jpg"))


def pipeline(paths: list[Path], workdir: Path, workers: int, run_number: int) -> tuple[float, int]:
    artifacts = workdir / "artifacts"
    request = ExtractionRequest.model_validate(
        {
            "items": [{"source": path.as_uri()} for path in paths],
            "frames": {"mode": "interval", "every_seconds": EVERY},
            "crop": CROP,
            "format": "jpg",
        }
    )
    batch = f"ex_bench{run_number:08d}"
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(extraction_batches.name, [batch])
        started = time.perf_counter()
        result = dg.materialize(
            [extraction_frames],
            instance=instance,
            partition_key=batch,
            resources={
                "artifacts": ArtifactStore(root=str(artifacts)),
                "ffmpeg": FFmpegResource(concurrency=workers),
                "extraction_sources": ExtractionSources(media_roots=str(paths[0].parent)),
                "database": DatabaseResource(url=f"sqlite:///{artifacts / 'domain.db'}"),
            },
            run_config=FRAME_EXTRACTION.config_for(request),
        )
        elapsed = time.perf_counter() - started
    assert result.success
    manifest = json.loads((artifacts / "extractions" / batch / "manifest.json").read_text())
    return elapsed, manifest["counts"]["frames"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "media_pipeline_bench_extract")
    args = parser.parse_args()
    paths = build(args.workdir, args.videos, args.seconds)
    decoded = args.videos * args.seconds * 25

    before, base_frames = baseline(paths, args.workdir / "baseline", args.workers)
    print(f"baseline (before): {before:.2f} s, {base_frames} images", flush=True)
    piped, pipe_frames = pipeline(paths, args.workdir, args.workers, int(time.time()))
    print(f"pipeline:          {piped:.2f} s, {pipe_frames} images", flush=True)
    after, _ = baseline(paths, args.workdir / "baseline", args.workers)
    print(f"baseline (after):  {after:.2f} s", flush=True)
    base = (before + after) / 2
    if base_frames != pipe_frames:
        print(f"warning: the baseline wrote {base_frames} images, the pipeline {pipe_frames}")
    print()
    print(f"{args.videos} videos x {args.seconds} s 1080p25, a frame every {EVERY} s, crop 1280x720, JPEG, "
          f"{args.workers} workers")  # fmt: skip
    print(f"baseline: {decoded / base:8.1f} decoded frames/s  ({base:.2f} s, mean of before and after)")
    print(f"pipeline: {decoded / piped:8.1f} decoded frames/s  ({piped:.2f} s, the whole Dagster run)")
    print(f"ratio (pipeline time / baseline time): {piped / base:.2f}x   (target <= 1.2x)")
    print(f"overhead per item: {(piped - base) * args.workers / args.videos:+.2f} s of a worker")


if __name__ == "__main__":
    main()
