"""bench/status_reads: API status reads against a large history, over real HTTP on loopback.

Seeds the domain database with 100 cut versions of 200 shots each and 10,000 finished jobs,
starts the API with uvicorn, and prints p50/p95 of `GET /v1/jobs/{id}` and
`GET /v1/cuts/{id}/shots` (first page of 100) measured with an httpx client.
Target: `GET /v1/jobs/{id}` p95 under 20 ms.

Usage: .venv/bin/python bench/status_reads.py [--requests 500] [--database-url URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import sqlalchemy as sa

from media_pipeline import db
from media_pipeline.db.models import CutVersion, Job, Project, Render, Shot

TOKEN = "bench-status-token"


def seed(url: str, cuts: int, shots: int, jobs: int) -> tuple[list[str], list[int]]:
    db.migrate(url)
    engine = db.engine_for(url)
    now = dt.datetime.now(dt.UTC)
    with db.session_scope(url) as session:
        project = Project(name=f"bench{uuid.uuid4().hex[:6]}")
        session.add(project)
        session.flush()
        project_id = project.id
    cut_ids, job_ids = [], []
    with engine.begin() as connection:
        for number in range(cuts):
            cut_id = connection.execute(sa.insert(CutVersion).values(
                project_id=project_id, name="reel", version=number + 1,
                partition_key=f"b{project_id}.reel.v{number:03d}",
                source_path="x", source_filename="reel.otio", source_sha256="0" * 64, rate="24", options={},
                status="ingested", shot_count=shots, missing_count=0, created_at=now, updated_at=now,
            ).returning(CutVersion.id)).scalar_one()  # fmt: skip
            cut_ids.append(cut_id)
            rows = [dict(cut_version_id=cut_id, index=i, name=f"sh{i:04d}", track="V1", record_start=i * 24,
                         record_duration=24, source_start=86400 + i * 30, source_duration=24, source_rate="24",
                         media_path="/m/a.mov", media_status="linked", media_kind="movie", media_frame=i * 30,
                         media_rate="24", notes=[], details={}) for i in range(shots)]  # fmt: skip
            shot_ids = connection.execute(sa.insert(Shot).returning(Shot.id), rows).scalars().all()
            connection.execute(sa.insert(Render), [dict(
                shot_id=shot_id, cut_version_id=cut_id, kind="thumbnail", options={}, cache_key=uuid.uuid4().hex,
                output_path=f"cuts/x/{shot_id}.jpg", status="succeeded", details={}, created_at=now, updated_at=now,
            ) for shot_id in shot_ids])  # fmt: skip
        batch = []
        for _ in range(jobs):
            job_id = str(uuid.uuid4())
            job_ids.append(job_id)
            batch.append(dict(id=job_id, kind="thumbnails", status="succeeded", run_id=uuid.uuid4().hex,
                              subject_type="cut", subject_id=str(random.choice(cut_ids)), source="api", params={},
                              outputs=[], created_at=now,
                              updated_at=now))  # fmt: skip
        connection.execute(sa.insert(Job), batch)
    return job_ids, cut_ids


def timed(client: httpx.Client, paths: list[str]) -> list[float]:
    values = []
    for path in paths:
        started = time.perf_counter()
        response = client.get(path)
        values.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return values


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mp-status-"))
    url = args.database_url or f"sqlite:///{work}/domain.db"
    print("seeding 100 cuts x 200 shots and 10,000 jobs ...", flush=True)
    job_ids, cut_ids = seed(url, 100, 200, 10_000)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "MEDIA_PIPELINE_HOME": str(work), "MEDIA_PIPELINE_DATABASE_URL": url,
           "MEDIA_PIPELINE_API_TOKEN": TOKEN, "DAGSTER_HOME": str(work)}  # fmt: skip
    (work / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(port),
                               "--log-level", "warning"], env=env)  # fmt: skip
    try:
        # A generous timeout: the first request opens the Dagster instance, slow on a loaded machine.
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": TOKEN}, timeout=120)
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the API did not start")
            time.sleep(0.2)
        timed(client, [f"/v1/jobs/{random.choice(job_ids)}" for _ in range(50)])  # warm-up
        jobs = timed(client, [f"/v1/jobs/{random.choice(job_ids)}" for _ in range(args.requests)])
        shots = timed(client, [f"/v1/cuts/{random.choice(cut_ids)}/shots?limit=100" for _ in range(args.requests // 5)])
        print(f"database: {url.split(':')[0]}; {os.cpu_count()} cores; httpx on loopback, one request at a time")
        for name, values in (("GET /v1/jobs/{id}", jobs), ("GET /v1/cuts/{id}/shots", shots)):
            p95 = sorted(values)[int(0.95 * (len(values) - 1))]
            print(f"  {name:<24} p50 {statistics.median(values):6.1f} ms   p95 {p95:6.1f} ms   n={len(values)}")
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
