"""Fixtures for an area's API tests: the settings in the environment (where the API reads them and
the runs' resources load them), the app on a real Dagster test instance with runs executed in
process, and a client. Each test module defines its own `settings` fixture with `area_settings`
and imports `app` and `client` from here (pytest finds fixtures in a module's namespace)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import dagster as dg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.dagster_gateway import InProcessGateway
from api.main import create_app
from media_pipeline.settings import Settings, load_settings

__all__ = ["app", "client"]


def area_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, domain_url: str, token: str, extra: Mapping[str, str]
) -> Settings:
    """The settings every area's API test has (home, domain database, artifact folder, token, two
    ffmpeg at a time) with the area's own on top."""
    (tmp_path / "artifacts").mkdir()
    env = {
        "MEDIA_PIPELINE_HOME": str(tmp_path / "home"),
        "MEDIA_PIPELINE_DATABASE_URL": domain_url,
        "MEDIA_PIPELINE_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
        "MEDIA_PIPELINE_API_TOKEN": token,
        "MEDIA_PIPELINE_FFMPEG_CONCURRENCY": "2",
        **extra,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


@pytest.fixture
def app(settings: Settings, instance: dg.DagsterInstance) -> FastAPI:
    return create_app(settings, gateway=InProcessGateway(instance))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client
