"""GET /v1/cuts/{id}/export: each format round-trips (re-ingesting the export gives the same shots)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import opentimelineio as otio
import pytest
from fastapi.testclient import TestClient

from media_pipeline.core.ffmpeg import probe
from media_pipeline.editorial.assets.proxies import shot_proxies
from media_pipeline.settings import Settings
from media_pipeline_tests.conftest import ingest, make_resources
from media_pipeline_tests.test_api_support import *  # noqa: F403  (fixtures)
from media_pipeline_tests.test_api_support import AUTH, RATE, assert_problem, clip, upload, write_otio


def cut_with_gap(folder: Path, plate: Path) -> Path:
    # sh010 plate frames 0..11, 6 frames of gap, sh020 frames 20..43, then a shot with no media.
    gap = otio.schema.Gap(source_range=otio.opentime.TimeRange(duration=otio.opentime.RationalTime(6, RATE)))
    clips = [clip("sh010", plate, 0, 12), gap, clip("sh020", plate, 20, 24), clip("sh030", None, 0, 8)]
    return write_otio(folder / "reel1.otio", clips)


def shot_facts(client: TestClient, cut_id: int) -> list[tuple[Any, ...]]:
    shots = client.get(f"/v1/cuts/{cut_id}/shots", headers=AUTH).json()["items"]
    return [
        (s["name"], s["record"]["start"], s["record"]["duration"], s["record"]["start_tc"], s["source"]["start"],
         s["source"]["duration"], s["source"]["rate"], s["media_status"])
        for s in shots
    ]  # fmt: skip


def publish(client: TestClient, path: Path, **fields: str) -> dict[str, Any]:
    response = upload(client, path, **fields)
    assert response.status_code == 202, response.text
    assert response.json()["job"]["status"] == "succeeded", response.json()
    return response.json()["cut"]


@pytest.mark.parametrize("fmt", ["otio", "otioz", "edl"])
def test_export_round_trips(client: TestClient, plate: Path, tmp_path: Path, fmt: str) -> None:
    original = publish(client, cut_with_gap(tmp_path / "in", plate))
    expected = shot_facts(client, original["id"])
    assert [row[1] for row in expected] == [0, 18, 42] and expected[0][3] == "01:00:00:00"

    response = client.get(f"/v1/cuts/{original['id']}/export", params={"format": fmt}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert f".{fmt}" in response.headers["content-disposition"]
    exported = tmp_path / f"exported.{fmt}"
    exported.write_bytes(response.content)
    if fmt == "otioz":
        assert "media/A001C001.mov" in zipfile.ZipFile(exported).namelist()
    again = publish(client, exported, name="reel1_again", **({"rate": "24"} if fmt == "edl" else {}))
    got = shot_facts(client, again["id"])
    if fmt == "edl":
        # An EDL names media only by clip name, so the re-ingested shots cannot find it.
        assert [row[:-1] for row in got] == [row[:-1] for row in expected]
    else:
        assert got == expected


def test_export_relinks_to_proxies(
    client: TestClient, plate: Path, tmp_path: Path, api_settings: Settings, instance, db_url
) -> None:
    cut = publish(client, cut_with_gap(tmp_path / "in", plate))
    missing = client.get(f"/v1/cuts/{cut['id']}/export", params={"media": "proxies"}, headers=AUTH)
    assert "render the cut's proxies first" in assert_problem(missing, 409, "proxies_missing")["detail"]

    proxy_config = {"ops": {"shot_proxies": {"config": {"width": 160, "handles": 4}}}}
    resources = make_resources(db_url, api_settings.artifact_root)
    ingest(instance, cut["partition_key"], resources, selection=[shot_proxies], run_config=proxy_config)
    response = client.get(f"/v1/cuts/{cut['id']}/export", params={"media": "proxies"}, headers=AUTH)
    assert response.status_code == 200, response.text
    timeline = otio.adapters.read_from_string(response.text, adapter_name="otio_json")
    clips = list(timeline.find_clips())
    proxies = [Path(otio.url_utils.filepath_from_url(c.media_reference.target_url)) for c in clips[:2]]
    assert all(path.is_relative_to(api_settings.artifact_root) and path.suffix == ".mp4" for path in proxies)
    # The proxy of sh020 starts 4 handle frames before the shot; its timecode track says so too.
    available = clips[1].media_reference.available_range
    assert available.start_time.value == 86400 + 20 - 4
    assert probe(proxies[1]).start_timecode == "01:00:00:16"

    exported = tmp_path / "proxies.otio"
    exported.write_text(response.text)
    again = publish(client, exported, name="reel1_proxies")
    assert shot_facts(client, again["id"]) == shot_facts(client, cut["id"])
