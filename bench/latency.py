"""bench/latency: from an API POST to a finished single-shot thumbnail job, on the real stack.

Starts `media-pipeline up` in a temporary home, publishes a small cut through the API and waits
for its ingest, then prints p50/p95 of:
  thumbnail  POST /v1/shots/{id}/thumbnail (force) -> job `succeeded`, polled through the API
  no-op      the `health_check` job submitted through the webserver's GraphQL API -> SUCCESS
             (the floor Dagster itself sets on this stack)
  ffmpeg     the bare ffmpeg command that grabs the same frame
each N times one after another and N at once.

Also: POST -> first non-queued status, the launch latency.

Usage: .venv/bin/python bench/latency.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import httpx
import opentimelineio as otio

from media_pipeline.core import ffmpeg
from media_pipeline.samples import make_indexed_movie

TOKEN = "bench-latency-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(name: str, values: list[float]) -> None:
    print(
        f"  {name:<44} p50 {statistics.median(values):6.2f}s   p95 {percentile(values, 0.95):6.2f}s   n={len(values)}"
    )


PHASES = (
    ("queued", "RUN_ENQUEUED", "RUN_STARTING"),
    ("launching", "RUN_STARTING", "RUN_START"),
    ("running", "RUN_START", "RUN_SUCCESS"),
)


def print_phases(dagster_home: Path, run_ids: dict[str, list[str]]) -> None:
    """Where the runs of each group spent their time, from their own event logs, so a slower
    figure above is attributed: waiting for the queue daemon, starting a run worker, the work."""
    import dagster as dg

    print("phases of those runs, from their event logs:")
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        for group, ids in run_ids.items():
            phases: dict[str, list[float]] = defaultdict(list)
            for run_id in ids:
                stamps = {
                    entry.dagster_event.event_type.name: entry.timestamp
                    for entry in instance.all_logs(run_id)
                    if entry.dagster_event is not None
                }
                for phase, start, end in PHASES:
                    if start in stamps and end in stamps:
                        phases[phase].append(stamps[end] - stamps[start])
            for phase, values in phases.items():
                report(f"  {group}: {phase}", values)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mp-latency-"))
    movie = make_indexed_movie(work / "media" / "plate.mov", frames=240, rate=Fraction(24), size=(1920, 1080))
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    for number in range(4):
        track.append(otio.schema.Clip(
            name=f"sh{number:03d}", media_reference=otio.schema.ExternalReference(target_url=movie.as_uri()),
            source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(number * 50, 24),
                                                 otio.opentime.RationalTime(40, 24))))  # fmt: skip
    timeline = otio.schema.Timeline(name="latency")
    timeline.tracks.append(track)
    cut_file = work / "latency.otio"
    otio.adapters.write_to_file(timeline, str(cut_file))

    ui, api = free_port(), free_port()
    env = {**os.environ, "MEDIA_PIPELINE_API_TOKEN": TOKEN, "MEDIA_PIPELINE_WATCH_DIRS": ""}
    command = [str(Path(sys.executable).parent / "media-pipeline"), "up", "--home", str(work / "home"),
               "--ui-port", str(ui), "--api-port", str(api), "--no-sample"]  # fmt: skip
    stack = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{api}"
    client = httpx.Client(base_url=base, headers=HEADERS, timeout=30)
    try:
        wait(lambda: client.get("/healthz").status_code == 200, 120, "the API")
        wait(lambda: httpx.get(f"http://127.0.0.1:{ui}/dagster/server_info").status_code == 200, 120, "the webserver")
        with cut_file.open("rb") as fh:
            created = client.post("/v1/cuts", files={"file": fh}, data={"project": "bench", "name": "latency"}).json()
        job_id = created["job"]["id"]
        wait(lambda: client.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded", 180, "the ingest")
        shot_ids = [shot["id"] for shot in client.get(f"/v1/cuts/{created['cut']['id']}/shots").json()["items"]]

        to_running: list[float] = []

        def thumbnail(index: int) -> float:
            started = time.perf_counter()
            body = {"frame": "middle", "width": 480, "force": True}
            job = client.post(f"/v1/shots/{shot_ids[index % len(shot_ids)]}/thumbnail", json=body).json()
            seen_running = False

            def finished() -> str | None:
                nonlocal seen_running
                status = client.get(f"/v1/jobs/{job['id']}").json()["status"]
                if status != "queued" and not seen_running:
                    seen_running = True  # POST -> running (or already done): the launch latency
                    to_running.append(time.perf_counter() - started)
                return status if status in ("succeeded", "failed") else None

            status = wait(finished, 300, "a thumbnail job")
            assert status == "succeeded", status
            elapsed = time.perf_counter() - started
            run_ids[group].append(client.get(f"/v1/jobs/{job['id']}").json()["run_id"])
            return elapsed

        def noop(_: int) -> float:
            from dagster_graphql import DagsterGraphQLClient

            graphql = DagsterGraphQLClient("127.0.0.1", port_number=ui, path_prefix="/dagster")
            started = time.perf_counter()
            run_id = graphql.submit_job_execution("health_check")
            wait(lambda: graphql.get_run_status(run_id).value in ("SUCCESS", "FAILURE"), 300, "a no-op run")
            run_ids[group].append(run_id)
            return time.perf_counter() - started

        def bare(_: int) -> float:
            started = time.perf_counter()
            seek = ffmpeg.format_seconds(ffmpeg.seek_seconds(70, Fraction(24)))
            subprocess.run([ffmpeg.ffmpeg_exe(), "-v", "error", "-y", "-ss", seek, "-i", str(movie), "-frames:v", "1",
                            "-vf", "scale=480:-2", str(work / "bare.jpg")], check=True)  # fmt: skip
            return time.perf_counter() - started

        results: dict[str, list[float]] = {}
        run_ids: dict[str, list[str]] = defaultdict(list)  # Dagster runs of each group, for print_phases
        for name, fn in (("no-op run", noop), ("single-shot thumbnail job", thumbnail), ("bare ffmpeg", bare)):
            group = f"{name}, one after another"
            results[group] = [fn(i) for i in range(args.runs)]
            group = f"{name}, {args.runs} at once"
            with ThreadPoolExecutor(args.runs) as pool:
                results[group] = list(pool.map(fn, range(args.runs)))
        results["thumbnail job POST -> running, all"] = to_running
        print(f"machine: {os.cpu_count()} cores; stack: media-pipeline up (SQLite, queued run coordinator)")
        for name, values in results.items():
            report(name, values)
        ratio = statistics.median(results["single-shot thumbnail job, one after another"]) / statistics.median(
            results["no-op run, one after another"]
        )
        print(f"thumbnail p50 / no-op p50 (one after another): {ratio:.2f}x  (target <= 1.5x)")
        print_phases(work / "home" / "dagster", run_ids)
    finally:
        client.close()
        os.killpg(stack.pid, signal.SIGINT)
        stack.wait(60)


if __name__ == "__main__":
    main()
