"""`media-pipeline up` for real: webserver, daemon and API processes, a dropped timeline ingested
by the sensor through the run queue, and a clean stop on Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa

from media_pipeline import db
from media_pipeline.db.models import CutVersion, Render
from media_pipeline_tests.waiting import running, service_environment, wait_until

pytestmark = pytest.mark.stack


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def stack(tmp_path: Path):  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    ui_port, api_port = free_port(), free_port()
    env = service_environment({
        "MEDIA_PIPELINE_SENSOR_INTERVAL": "1",
        "MEDIA_PIPELINE_SETTLE_SECONDS": "0.5",
        "MEDIA_PIPELINE_API_TOKEN": "stack-test-token",
    })
    command = [
        str(Path(sys.executable).parent / "media-pipeline"),
        "up",
        "--home",
        str(home),
        "--ui-port",
        str(ui_port),
        "--api-port",
        str(api_port),
    ]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        yield process, home, ui_port, api_port
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_up_ingests_a_dropped_timeline_and_stops_cleanly(stack):
    process, home, ui_port, api_port = stack

    def reachable(url: str) -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(
        lambda: reachable(f"http://127.0.0.1:{ui_port}/dagster/server_info"),
        timeout=300,
        what="the webserver",
        alive=running(process, "media-pipeline up"),
    )
    wait_until(
        lambda: reachable(f"http://127.0.0.1:{api_port}/healthz"),
        timeout=300,
        what="the API",
        alive=running(process, "media-pipeline up"),
    )
    sample = home / "watch" / "demo" / "sample_cut.otio"
    assert sample.exists()
    # The same content dropped again under another name must not become a second cut version.
    (home / "watch" / "demo" / "copy_of_sample.otio").write_bytes(sample.read_bytes())

    url = f"sqlite:///{home}/media_pipeline.db"

    def contact_sheet_done() -> bool:
        with db.session_scope(url) as session:
            return session.scalar(sa.select(Render.id).where(Render.kind == "contact_sheet")) is not None

    wait_until(
        contact_sheet_done,
        timeout=300,
        what="the sample cut's contact sheet",
        alive=running(process, "media-pipeline up"),
    )
    with db.session_scope(url) as session:
        cuts = session.scalars(sa.select(CutVersion)).all()
        assert [(c.partition_key, c.status, c.shot_count, c.missing_count) for c in cuts] == [
            ("demo.sample_cut.v001", "ingested", 6, 1)
        ]
    thumbnails = sorted((home / "artifacts" / "cuts" / "demo.sample_cut.v001" / "thumbnails").glob("*.jpg"))
    assert len(thumbnails) == 6
    assert (home / "artifacts" / "cuts" / "demo.sample_cut.v001" / "contact_sheet.jpg").is_file()

    # Lineage in Dagster: one successful, sensor-launched run; every asset materialized for the partition.
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    partition_runs = dg.RunsFilter(tags={"dagster/partition": "demo.sample_cut.v001"})

    def finished() -> bool:  # the contact sheet's row lands a moment before the run reports success
        return all(run.is_finished for run in instance.get_runs(filters=partition_runs))

    wait_until(finished, timeout=300, what="the ingest run to finish", alive=running(process, "media-pipeline up"))
    runs = instance.get_runs(filters=partition_runs)
    assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS]
    assert runs[0].tags.get("dagster/sensor_name", "").startswith("watch_")
    for asset in ("cut_timeline", "cut_shots", "shot_thumbnails", "contact_sheet"):
        event = instance.get_latest_materialization_event(dg.AssetKey(asset))
        assert event is not None and event.dagster_event.partition == "demo.sample_cut.v001"

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=40) == 0
    output = process.stdout.read().decode() if process.stdout else ""
    assert "stopped: webserver, daemon and API" in output
    for port in (ui_port, api_port):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still served after Ctrl-C"
