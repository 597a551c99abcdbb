"""Fixtures and helpers shared by the API tests (imported by the test_api_* modules; no tests here).

The API runs against a real domain database (SQLite and Postgres through conftest's `db_url`),
a real artifact folder and a real Dagster test instance; runs execute the real job definitions
with real ffmpeg through `InProcessGateway`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import dagster as dg
import opentimelineio as otio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import media_pipeline.definitions  # noqa: F401  (exports setting defaults once, before any test's env)
from api.dagster_gateway import InProcessGateway
from api.main import create_app
from media_pipeline.platform.job_tracker import job_tracker
from media_pipeline.resources import DatabaseResource
from media_pipeline.samples import make_indexed_movie
from media_pipeline.settings import Settings, load_settings
from media_pipeline_tests.waiting import wait_until

# Star-imported by the test modules: pytest finds fixtures in a module's namespace.
__all__ = ["api_settings", "app", "client", "gateway", "plate"]

TOKEN = "api-test-token-3f9c2a7d"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RATE = 24.0
PROBLEM = "application/problem+json"


@pytest.fixture(scope="session")
def plate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small frame-indexed movie, 01:00:00:00, shared by every API test."""
    folder = tmp_path_factory.mktemp("api_media")
    return make_indexed_movie(
        folder / "A001C001.mov", frames=96, rate=Fraction(24), size=(160, 90), start_timecode="01:00:00:00"
    )


@pytest.fixture
def api_settings(db_url: str, tmp_path: Path, plate: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings in the environment, where the API reads them and the Dagster resources of the
    real definitions load them at run time."""
    artifacts = tmp_path / "api_artifacts"
    artifacts.mkdir()
    env = {
        "MEDIA_PIPELINE_HOME": str(tmp_path / "home"),
        "MEDIA_PIPELINE_DATABASE_URL": db_url,
        "MEDIA_PIPELINE_ARTIFACT_ROOT": str(artifacts),
        "MEDIA_PIPELINE_API_TOKEN": TOKEN,
        "MEDIA_PIPELINE_MAX_UPLOAD_BYTES": str(64 * 1024),
        "MEDIA_PIPELINE_FFMPEG_CONCURRENCY": "2",
        "MEDIA_PIPELINE_CORS_ORIGINS": "http://editor.example",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # Media may be read from the shared plate's folder and the test's own.
    monkeypatch.setenv("MEDIA_PIPELINE_MEDIA_ROOTS", f"{plate.parent}:{tmp_path}")
    return load_settings()


def track_jobs(instance: dg.DagsterInstance, database_url: str, cursor: str | None = None) -> str | None:
    """One evaluation of the job tracker sensor, as the daemon runs it; the cursor it leaves."""
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"database": DatabaseResource(url=database_url)}
    ) as context:
        job_tracker(context)
        return context.cursor


@pytest.fixture
def gateway(instance: dg.DagsterInstance) -> InProcessGateway:
    return InProcessGateway(instance)


@pytest.fixture
def app(api_settings: Settings, gateway: InProcessGateway) -> FastAPI:
    return create_app(api_settings, gateway=gateway)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def clip(name: str, media: Path | None, start_frame: int, duration: int) -> otio.schema.Clip:
    """A clip of `duration` frames starting `start_frame` frames into the 01:00:00:00 plate."""
    start = otio.opentime.from_timecode("01:00:00:00", RATE).value + start_frame
    reference: otio.core.MediaReference = (
        otio.schema.ExternalReference(target_url=media.as_uri()) if media else otio.schema.MissingReference()
    )
    return otio.schema.Clip(
        name=name,
        media_reference=reference,
        source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(start, RATE), otio.opentime.RationalTime(duration, RATE)
        ),
    )


def write_otio(path: Path, clips: list[otio.schema.Clip], *, start_tc: str | None = "01:00:00:00") -> Path:
    timeline = otio.schema.Timeline(name=path.stem)
    if start_tc:
        timeline.global_start_time = otio.opentime.from_timecode(start_tc, RATE)
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    for item in clips:
        track.append(item)
    timeline.tracks.append(track)
    path.parent.mkdir(parents=True, exist_ok=True)
    otio.adapters.write_to_file(timeline, str(path))
    return path


def three_shot_cut(folder: Path, plate: Path, name: str = "reel1") -> Path:
    return write_otio(
        folder / f"{name}.otio",
        [clip("sh010", plate, 0, 12), clip("sh020", plate, 20, 24), clip("sh030", plate, 60, 30)],
    )


def upload(
    client: TestClient,
    path: Path,
    *,
    project: str = "show",
    name: str | None = None,
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> Any:
    data: dict[str, Any] = {"project": project, "name": name or path.stem, **fields}
    with path.open("rb") as handle:
        return client.post(
            "/v1/cuts",
            files={"file": (path.name, handle.read(), "application/octet-stream")},
            data=data,
            headers={**AUTH, **(headers or {})},
        )


def wait_for_job(
    client: TestClient, job_id: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 300
) -> dict[str, Any]:
    def matched() -> dict[str, Any] | None:
        job = client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()
        if predicate(job):
            return job
        if job["status"] in ("succeeded", "failed", "cancelled"):
            raise AssertionError(f"job {job_id} finished without matching: {job}")
        return None

    return wait_until(matched, timeout=timeout, what=f"job {job_id} to match", interval=0.05)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body = response.json()
    assert body["status"] == status and body["code"] == code, body
    assert body["type"] == f"urn:media-pipeline:problem:{code}"
    assert body["detail"] and "Traceback" not in body["detail"]
    return body
