"""bench/media: the media library against direct store writes, direct Pillow and plain ffmpeg.

Starts the API with uvicorn on loopback (SQLite, a fresh home folder) and, in one invocation, times
  upload   - `POST /v1/media` of a generated H.264 movie (`--upload-mb` MB of noise, raw body
             with Content-Length) against writing the same bytes straight into the artifact
             store folder; each upload is new content (the item is deleted between repetitions);
             also a duplicate upload (the same bytes again: hashed, nothing stored);
  edit     - inline `POST /v1/media/{id}/edits` on a 12 MP photo (4000x3000 JPEG): resize to a new
             width each time (so never cached) + JPEG q85, against the same edit by direct Pillow
             calls (open, LANCZOS resize, save), p50/p95 of each;
  cached   - the same edit repeated (answered from the cache), p50/p95;
  trim     - a frame-exact trim of `--trim-seconds` of a 1080p25 movie to H.264 CRF 23: the
             library's render (`videos.render`) and the whole `library_edit` Dagster run, against
             the same plain `ffmpeg -ss ... -i ... -frames:v N` command.
The upload body is sent with its Content-Length in 1 MiB pieces (`--send pieces`, as curl -T
streams a file); `--send whole` hands httpx the body as one bytes object, whose sync transport then
re-slices the unsent remainder after every socket send (quadratic copying in the client: it, not
the server, then sets the pace). Both the HTTP-alone baseline and the API get the same client.
Prints each figure and its ratio against the baseline (targets: upload >= 0.8x the direct write's
MB/s; inline edit <= 1.2x + 30 ms; cached < 10 ms; trim <= 1.1x).

Usage: .venv/bin/python bench/media.py [--upload-mb 64] [--repeats 5] [--edits 20] [--trim-seconds 8]
                                       [--send pieces|whole]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import dagster as dg
import httpx
import numpy as np
import sqlalchemy as sa
from PIL import Image

from media_pipeline import db
from media_pipeline.core import ffmpeg
from media_pipeline.db.models import MediaDerivative
from media_pipeline.library import videos
from media_pipeline.library.assets import library_derivatives
from media_pipeline.library.media import Limits, add
from media_pipeline.library.recipes import Format, Trim
from media_pipeline.library.requests import EditJob
from media_pipeline.library.store import LibraryStore
from media_pipeline.resources import ArtifactStore, DatabaseResource
from media_pipeline.samples import make_indexed_movie

TOKEN = "bench-media-token"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[int(share * (len(ordered) - 1))]


def noise_movie(path: Path, megabytes: int) -> bytes:
    """An H.264 movie of noise (it does not compress), about `megabytes` large."""
    if not path.exists():
        seconds = max(2, megabytes // 6)
        make_indexed_movie(path, frames=seconds * 25, rate=Fraction(25), size=(1280, 720),
                           extra_filters="noise=alls=60:allf=t")  # fmt: skip
    return path.read_bytes()


def photo(path: Path) -> bytes:
    if not path.exists():
        rng = np.random.default_rng(7)
        small = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
        # Smooth shapes plus fine grain, like a photo: neither flat nor pure noise.
        image = Image.fromarray(small).resize((4000, 3000), Image.Resampling.BICUBIC)
        grain = rng.integers(-12, 13, (3000, 4000, 3), dtype=np.int16)
        image = Image.fromarray(np.clip(np.asarray(image, dtype=np.int16) + grain, 0, 255).astype(np.uint8))
        image.save(path, "JPEG", quality=90)
    return path.read_bytes()


async def drain_app(scope: dict, receive: Callable, send: Callable) -> None:
    """The HTTP baseline: an ASGI app on the same uvicorn that reads and hashes a body, nothing else."""
    if scope["type"] != "http":
        return
    digest, more = hashlib.sha256(), True
    while more:
        message = await receive()
        digest.update(message.get("body", b""))
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": digest.hexdigest().encode()})


def start_api(work: Path, app: str = "api.main:app") -> tuple[subprocess.Popen[bytes], httpx.Client]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    here = Path(__file__).resolve().parent
    env = {**os.environ, "MEDIA_PIPELINE_HOME": str(work), "MEDIA_PIPELINE_API_TOKEN": TOKEN,
           "DAGSTER_HOME": str(work / "dagster"), "PYTHONPATH": f"{here.parent}{os.pathsep}{here}"}  # fmt: skip
    (work / "dagster").mkdir(parents=True, exist_ok=True)
    (work / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", app, "--port", str(port),
                               "--log-level", "warning"], env=env)  # fmt: skip
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": TOKEN}, timeout=600)
    deadline = time.monotonic() + 120
    while True:
        try:
            if client.get("/healthz").status_code in (200, 405) or app != "api.main:app":
                return server, client
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.terminate()
            raise SystemExit("the API did not start")
        time.sleep(0.2)


SEND = {"mode": "pieces"}
PIECE = 1 << 20


def post_body(client: httpx.Client, url: str, data: bytes) -> httpx.Response:
    """POST `data` as the raw body with its Content-Length (as curl -T), the way `--send` says."""
    if SEND["mode"] == "whole":
        return client.post(url, content=data)
    pieces = (data[start : start + PIECE] for start in range(0, len(data), PIECE))
    return client.post(url, content=pieces, headers={"Content-Length": str(len(data))})


def drain_rate(work: Path, data: bytes, repeats: int) -> float:
    server, client = start_api(work / "drain", "media:drain_app")
    try:
        post_body(client, "/", data)  # warm-up
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            post_body(client, "/", data)
            times.append(time.perf_counter() - started)
    finally:
        server.terminate()
        server.wait(30)
    return len(data) / 1e6 / statistics.median(times)


def bench_upload(client: httpx.Client, work: Path, data: bytes, repeats: int, http_rate: float) -> None:
    mb = len(data) / 1e6
    direct, api = [], []
    target = work / "artifacts" / "direct"
    target.mkdir(parents=True, exist_ok=True)
    # Warm-up: the first request migrates the database and opens everything.
    warm = post_body(client, "/v1/media?filename=warm.mp4", data)
    assert client.delete(f"/v1/media/{warm.json()['id']}?force=true").status_code == 204
    for number in range(repeats):
        started = time.perf_counter()
        with (target / f"copy-{number}").open("wb") as out:
            for start in range(0, len(data), 1 << 20):  # in 1 MiB writes, as the store's own copy
                out.write(data[start : start + (1 << 20)])
        direct.append(time.perf_counter() - started)
        (target / f"copy-{number}").unlink()
        started = time.perf_counter()
        answer = post_body(client, "/v1/media?filename=noise.mp4", data)  # with Content-Length, as curl -T
        api.append(time.perf_counter() - started)
        assert answer.status_code == 201, answer.text
        media_id = answer.json()["id"]
        if number < repeats - 1:
            assert client.delete(f"/v1/media/{media_id}?force=true").status_code == 204
    started = time.perf_counter()
    duplicate = post_body(client, "/v1/media?filename=again.mp4", data)
    dup_time = time.perf_counter() - started
    assert duplicate.json()["duplicate"] is True
    direct_rate, api_rate = mb / statistics.median(direct), mb / statistics.median(api)
    print(f"upload  {mb:.0f} MB x {repeats}: direct write {direct_rate:7.0f} MB/s, POST /v1/media {api_rate:7.0f} MB/s")
    print(
        f"        ratio {api_rate / direct_rate:.2f}x (target >= 0.8x; the upload includes HTTP on loopback, sha-256,"
    )
    print("        the probe of the content and the row)")
    print(f"        HTTP alone (the same client and uvicorn, a body read and hashed): {http_rate:7.0f} MB/s;")
    print(f"        POST /v1/media / HTTP alone = {api_rate / http_rate:.2f}x")
    print(f"        duplicate upload (hashed, not stored): {dup_time * 1000:.0f} ms ({mb / dup_time:.0f} MB/s)")


def timed(fn: Callable[[int], object], count: int) -> list[float]:
    values = []
    for number in range(count):
        started = time.perf_counter()
        fn(number)
        values.append((time.perf_counter() - started) * 1000)
    return values


def bench_edits(client: httpx.Client, data: bytes, count: int) -> None:
    media_id = client.post("/v1/media?filename=photo.jpg", content=data).json()["id"]

    def direct(number: int) -> None:
        with Image.open(io.BytesIO(data)) as image:
            width = 1000 + number
            out = image.resize((width, round(3000 * width / 4000)), Image.Resampling.LANCZOS)
            out.save(io.BytesIO(), "JPEG", quality=85)

    def inline(number: int) -> None:
        body = {"ops": [{"op": "resize", "width": 1000 + number}, {"op": "format", "format": "jpeg", "quality": 85}]}
        answer = client.post(f"/v1/media/{media_id}/edits", json=body)
        assert answer.status_code == 200 and answer.json()["cached"] is False, answer.text

    def cached(number: int) -> None:
        body = {"ops": [{"op": "resize", "width": 1001}, {"op": "format", "format": "jpeg", "quality": 85}]}
        answer = client.post(f"/v1/media/{media_id}/edits", json=body)
        assert answer.json()["cached"] is True, answer.text

    direct(0)  # warm-up (decoder, allocations)
    base = timed(lambda n: direct(n + 1), count)
    api = timed(lambda n: inline(n + 1), count)
    repeat = timed(cached, count)
    b50, a50, a95, b95 = statistics.median(base), statistics.median(api), percentile(api, 0.95), percentile(base, 0.95)
    print(f"edit    12 MP JPEG, resize + JPEG q85, n={count}: direct Pillow p50 {b50:6.0f} ms p95 {b95:6.0f} ms;"
          f" inline API p50 {a50:6.0f} ms p95 {a95:6.0f} ms")  # fmt: skip
    print(f"        ratio p50 {a50 / b50:.2f}x, p50 - 1.2 x direct = {a50 - 1.2 * b50:+.0f} ms (target <= 30 ms)")
    print(f"cached  the same edit again: p50 {statistics.median(repeat):.1f} ms p95 {percentile(repeat, 0.95):.1f} ms"
          " (target < 10 ms; over HTTP on loopback)")  # fmt: skip


def bench_trim(work: Path, seconds: int) -> None:
    with dg.instance_for_test() as instance:  # created once, outside the timings
        _bench_trim(work, seconds, instance)


def _bench_trim(work: Path, seconds: int, instance: dg.DagsterInstance) -> None:
    movie = work / f"trim_source_{seconds}s.mp4"
    frames = (seconds + 4) * 25
    if not movie.exists():
        make_indexed_movie(movie, frames=frames, rate=Fraction(25), size=(1920, 1080), gop=50)
    first, end = 37, 37 + seconds * 25
    rate = Fraction(25)
    out = work / "trim_out"
    out.mkdir(exist_ok=True)
    seek = ffmpeg.format_seconds(ffmpeg.seek_seconds(first, rate))

    def plain() -> None:
        ffmpeg.run(["-ss", seek, "-i", str(movie), "-frames:v", str(end - first), "-c:v", "libx264", "-preset",
                    "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", "-an"], out / "plain.mp4")  # fmt: skip

    ops = [Trim(op="trim", start_frame=first, end_frame=end), Format(op="format", format="mp4", crf=23)]

    def library() -> None:
        videos.render(movie, ops, "video/mp4", out)

    url = f"sqlite:///{work}/trim.db"
    artifacts = ArtifactStore(root=str(work / "trim_artifacts"))
    store = LibraryStore(artifacts)
    db.migrate(url)
    with db.session_scope(url) as session:
        incoming = store.receive(2**40)
        incoming.write(movie.read_bytes())
        item, _ = add(session, store, incoming, movie.name, Limits(50_000_000, 3600))
        media_id = item.id

    def run() -> None:
        with db.session_scope(url) as session:
            session.execute(sa.delete(MediaDerivative))  # each run renders, never a cache hit
        request = EditJob(media_id=media_id, ops=ops)
        result = dg.materialize(
            [library_derivatives],
            instance=instance,
            resources={"database": DatabaseResource(url=url), "artifacts": artifacts},
            run_config={"ops": {"library_derivatives": {"config": {"request": request.model_dump_json()}}}},
        )
        assert result.success

    timings: dict[str, list[float]] = {"plain": [], "library": [], "run": []}
    for _ in range(2):
        for name, fn in (("plain", plain), ("library", library), ("run", run)):
            started = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - started)
    base = statistics.median(timings["plain"])
    lib = statistics.median(timings["library"])
    whole = statistics.median(timings["run"])
    print(f"trim    {seconds} s of 1080p25 to H.264 CRF 23 (frames {first}..{end}): plain ffmpeg {base:.2f} s")
    print(f"        videos.render {lib:.2f} s ({lib / base:.2f}x, target <= 1.1x)")
    print(f"        whole library_edit run {whole:.2f} s ({whole / base:.2f}x; with the probe and Dagster's run start)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upload-mb", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--trim-seconds", type=int, default=8)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--send", choices=("pieces", "whole"), default="pieces", help="how the client sends a body")
    args = parser.parse_args()
    SEND["mode"] = args.send
    work = args.workdir or Path(tempfile.mkdtemp(prefix="mp-media-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work folder {work}; {os.cpu_count()} cores; bodies sent {args.send}", flush=True)
    movie = noise_movie(work / f"noise_{args.upload_mb}mb.mp4", args.upload_mb)
    picture = photo(work / "photo_12mp.jpg")
    home = Path(tempfile.mkdtemp(dir=work, prefix="home-"))  # a fresh library: nothing cached
    http_rate = drain_rate(work, movie, args.repeats)
    server, client = start_api(home)
    try:
        bench_upload(client, home, movie, args.repeats, http_rate)
        bench_edits(client, picture, args.edits)
    finally:
        server.terminate()
        server.wait(30)
    bench_trim(work, args.trim_seconds)
    print(json.dumps({"note": "figures are from one run on a shared machine; see README"}))


if __name__ == "__main__":
    main()
