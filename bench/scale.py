"""bench/scale: the final video of a 50-shot 1080p cut with each executor, side by side.

In one run, on one Postgres database (both schemas) and one artifact folder, each render from
nothing cached (the segment cache is emptied between them), each a `dagster job execute` of
`render_final_video` (the orchestrator process, code loading included, the same for all):
  baseline     bench/conform.py's one plain ffmpeg command making the same video
  in_process   MEDIA_PIPELINE_EXECUTOR=in_process (the default): one chunk, ffmpeg threads
  celery x1    MEDIA_PIPELINE_EXECUTOR=celery, one `media-pipeline worker` (RabbitMQ broker)
  celery x2    the same with two workers (on this machine: they share its cores)
Prints each against in_process (target: celery with one worker <= 1.15x) and the baseline.

Usage: .venv/bin/python bench/scale.py [--shots 50] [--preset veryfast] [--chunk 8]
       [--broker pyamqp://guest:guest@127.0.0.1:5672//] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conform import RATE, SPACING, baseline, shots_for, write_cut

from media_pipeline import cli
from media_pipeline.editorial.conform import EncodeOptions
from media_pipeline.samples import make_indexed_movie

BIN = Path(sys.executable).parent
ADMIN = os.environ.get("MEDIA_PIPELINE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextlib.contextmanager
def database() -> Iterator[str]:
    name = f"mp_bench_scale_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{ADMIN.split('://', 1)[1].rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def workers(env: dict[str, str], count: int, logs: Path) -> Iterator[None]:
    processes = []
    for number in range(count):
        log = logs / f"worker{count}_{number}.log"
        command = [str(BIN / "media-pipeline"), "worker", "--concurrency", "1", "--name", f"bench{number}@%h"]
        processes.append((subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT), log))
    try:
        for _, log in processes:
            deadline = time.monotonic() + 120
            while "ready." not in log.read_text(errors="replace"):
                if time.monotonic() > deadline:
                    raise SystemExit(f"a worker did not start; see {log}")
                time.sleep(0.2)
        yield
    finally:
        for process, _ in processes:
            process.terminate()
        for process, _ in processes:
            process.wait(timeout=60)


def drop_queues(broker: str, prefix: str) -> None:
    from kombu import Connection

    with Connection(broker) as connection:
        for queue in ("dagster", "ffmpeg", "generators"):
            with contextlib.suppress(Exception):
                connection.channel().queue_delete(prefix + queue)


def render(env: dict[str, str], key: str, config: Path, artifacts: Path, log: Path) -> float:
    shutil.rmtree(artifacts / "segments", ignore_errors=True)  # nothing cached
    command = [str(BIN / "dagster"), "job", "execute", "-m", "media_pipeline.definitions", "-j",
               "render_final_video", "-c", str(config), "--tags", json.dumps({"dagster/partition": key})]  # fmt: skip
    started = time.perf_counter()
    with log.open("wb") as out:
        code = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    elapsed = time.perf_counter() - started
    if code:
        raise SystemExit(f"render failed; see {log}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shots", type=int, default=50)
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--chunk", type=int, default=8, help="segments per chunk step in celery mode")
    parser.add_argument("--ffmpeg", type=int, default=os.cpu_count() or 2, help="ffmpeg processes per step")
    parser.add_argument("--broker", default="pyamqp://guest:guest@127.0.0.1:5672//")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "media_pipeline_bench_scale")
    args = parser.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    source = work / "media" / "source_1080p.mp4"
    if not source.exists():
        print("generating the 1080p source ...", flush=True)
        source.parent.mkdir(parents=True, exist_ok=True)
        make_indexed_movie(source, frames=args.shots * SPACING + 60, rate=RATE, size=(1920, 1080), gop=48)
    shots = shots_for(args.shots)
    options = EncodeOptions(1920, 1080, RATE, 18, args.preset, True)
    base = baseline(source, shots, options, work / "baseline.mp4")

    with database() as url:
        home = work / f"home_{uuid.uuid4().hex[:6]}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIA_PIPELINE_")}
        env.update(
            MEDIA_PIPELINE_HOME=str(home),
            MEDIA_PIPELINE_DATABASE_URL=url,
            MEDIA_PIPELINE_DAGSTER_POSTGRES_URL=url,
            MEDIA_PIPELINE_ARTIFACT_ROOT=str(home / "artifacts"),
            MEDIA_PIPELINE_ARTIFACTS_SHARED="true",
            MEDIA_PIPELINE_MEDIA_ROOTS=str(source.parent),
            MEDIA_PIPELINE_WATCH_DIRS="",
            MEDIA_PIPELINE_FFMPEG_CONCURRENCY=str(args.ffmpeg),
            MEDIA_PIPELINE_CELERY_BROKER=args.broker,
            MEDIA_PIPELINE_CELERY_QUEUE_PREFIX=f"bench_{uuid.uuid4().hex[:6]}_",
        )
        cli.prepare(env)
        artifacts = home / "artifacts"
        cut = write_cut(work / "cuts" / f"scale{time.time_ns()}.otio", source, shots)
        from media_pipeline import db
        from media_pipeline.editorial.publish import publish_cut

        with db.session_scope(url) as session:
            key = publish_cut(session, artifacts, project="bench", name=cut.stem, source=cut).cut.partition_key
        os.environ.update(env)  # the instance config reads the Postgres URL from the environment
        import dagster as dg

        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            instance.add_dynamic_partitions("cut_versions", [key])
        config = work / "config.yaml"
        config.write_text(yaml.safe_dump({"ops": {"final_video": {"config": {"preset": args.preset, "crf": 18}}}}))
        # The cut's shots once, in-process (what is measured is the final video only).
        ingest = [str(BIN / "dagster"), "job", "execute", "-m", "media_pipeline.definitions", "-j", "ingest_cut",
                  "--tags", json.dumps({"dagster/partition": key})]  # fmt: skip
        subprocess.run(
            ingest,
            env={**env, "MEDIA_PIPELINE_EXECUTOR": "in_process"},
            stdout=subprocess.DEVNULL,
            check=True,
        )
        timings: dict[str, float] = {}
        timings["in_process"] = render(
            {**env, "MEDIA_PIPELINE_EXECUTOR": "in_process"}, key, config, artifacts, work / "in_process.log"
        )
        celery = {**env, "MEDIA_PIPELINE_EXECUTOR": "celery", "MEDIA_PIPELINE_CHUNK_SEGMENTS": str(args.chunk)}
        for count in (1, 2):
            with workers(celery, count, work):
                timings[f"celery x{count}"] = render(celery, key, config, artifacts, work / f"celery{count}.log")
        drop_queues(args.broker, env["MEDIA_PIPELINE_CELERY_QUEUE_PREFIX"])
    print(f"shots: {args.shots}  1080p 24 fps  preset {args.preset}  crf 18  ffmpeg per step {args.ffmpeg}  "
          f"chunk {args.chunk} segments  cpus {os.cpu_count()}")  # fmt: skip
    print(f"baseline (one plain ffmpeg command):   {base:7.2f}s")
    for name, seconds in timings.items():
        print(
            f"final_video, {name:<11}             {seconds:7.2f}s  {seconds / timings['in_process']:.2f}x in_process  "
            f"{seconds / base:.2f}x baseline"
        )
    print(f"target: celery x1 <= 1.15x in_process: {timings['celery x1'] / timings['in_process']:.2f}x")


if __name__ == "__main__":
    main()
