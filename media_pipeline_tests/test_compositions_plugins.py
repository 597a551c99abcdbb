"""A third-party generator installed as a package with a `media_pipeline.generators` entry point
(a real dist-info on sys.path), found without touching this code, and rendered with."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from media_pipeline.compositions.generators import registry
from media_pipeline_tests.test_compositions_api import AUTH, app, client, settings  # noqa: F401  (fixtures)

PLUGIN = '''
from media_pipeline.compositions.generators.base import Capabilities
from media_pipeline.compositions.generators.local import LocalGenerator


class StudioBars(LocalGenerator):
    """A studio's own generator: the local one under its own id, version and pool."""

    id = "studio_bars"
    version = "3"
    description = "The studio's bars"
    capabilities = Capabilities(pool="studio")


class Broken:
    pass
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    (site / "studio_generators").mkdir(parents=True)
    (site / "studio_generators" / "__init__.py").write_text(PLUGIN)
    info = site / "studio_generators-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: studio-generators\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent("""\
        [media_pipeline.generators]
        studio_bars = studio_generators:StudioBars
        broken = studio_generators:Broken
        missing = studio_generators:Nothing
    """)
    )
    monkeypatch.syspath_prepend(str(site))
    return site


def test_an_entry_point_generator_is_listed_and_broken_ones_are_skipped(plugin: Path) -> None:
    found = registry.generators()
    assert found["studio_bars"].version == "3"
    assert "broken" not in found and "missing" not in found
    assert {"local", "runway", "stability"} <= set(found)


def test_a_plugin_generator_renders_through_the_api(plugin: Path, client: TestClient) -> None:  # noqa: F811
    listed = {g["id"]: g for g in client.get("/v1/generators", headers=AUTH).json()}
    assert listed["studio_bars"]["pool"] == "studio" and listed["studio_bars"]["available"]
    body = {"name": "plug", "rate": "24", "resolution": "96x54",
            "segments": [{"generator": "studio_bars", "frames": 8, "params": {"source": "testsrc2"}}]}  # fmt: skip
    composition = client.post("/v1/compositions", json=body, headers=AUTH).json()
    job = client.post(f"/v1/compositions/{composition['id']}/renders", headers=AUTH).json()["job"]
    job = client.get(f"/v1/jobs/{job['id']}", headers=AUTH).json()
    assert job["status"] == "succeeded", job
    (item,) = job["items"]
    assert item["cache"] == "miss" and item["status"] == "succeeded"
