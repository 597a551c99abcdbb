"""`media-pipeline up` for real: webserver, daemon and API processes, a dropped timeline ingested
by the sensor through the run queue, and a clean stop on Ctrl-C."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa

from media_pipeline import db
from media_pipeline.db.models import CutVersion, Job, Render
from media_pipeline_tests.up_process import free_port, stop_up, up_command, wait_for_up
from media_pipeline_tests.waiting import running, service_environment, wait_until

pytestmark = pytest.mark.stack


@pytest.fixture
def stack(tmp_path: Path):  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    ui_port, api_port = free_port(), free_port()
    env = service_environment(
        {
            "MEDIA_PIPELINE_SENSOR_INTERVAL": "1",
            "MEDIA_PIPELINE_SETTLE_SECONDS": "0.5",
            "MEDIA_PIPELINE_API_TOKEN": "stack-test-token",
        }
    )
    process = subprocess.Popen(
        up_command(home, ui_port, api_port, sample=True),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process, home, ui_port, api_port
    finally:
        stop_up(process)


def test_up_ingests_a_dropped_timeline_and_stops_cleanly(stack):
    process, home, ui_port, api_port = stack
    wait_for_up(ui_port, api_port, running(process, "media-pipeline up"))
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

    # Materialize from the Dagster UI: the implicit asset job with an asset selection and the
    # partition, as the button sends it to the webserver. The daemon's job tracker adopts it as
    # a job of the kind whose assets it selects.
    from dagster_graphql import DagsterGraphQLClient

    from api.dagster_gateway import UI_PATH_PREFIX

    graphql = DagsterGraphQLClient("127.0.0.1", port_number=ui_port, path_prefix=UI_PATH_PREFIX)
    ui_run = graphql.submit_job_execution(
        "__ASSET_JOB",
        asset_selection=["cut_diff"],
        tags={"dagster/partition": "demo.sample_cut.v001", "dagster/from_ui": "true"},
    )
    auth = {"Authorization": "Bearer stack-test-token"}

    def ui_job() -> dict | None:
        jobs = httpx.get(f"http://127.0.0.1:{api_port}/v1/jobs", params={"source": "ui"}, headers=auth, timeout=10)
        found = [job for job in jobs.json()["items"] if job["run_id"] == ui_run and job["status"] == "succeeded"]
        return found[0] if found else None

    job = wait_until(
        ui_job,
        timeout=240,
        what="the UI's Materialize run to be a finished job",
        alive=running(process, "media-pipeline up"),
    )
    assert (job["kind"], job["subject_type"]) == ("ingest_cut", "cut")

    # /metrics on loopback without a token (none is set): the job table's counts, once the
    # tracker has written the UI job's end (the API read it from Dagster already).
    def succeeded_ingests() -> int:
        with db.session_scope(url) as session:
            return session.scalar(sa.select(sa.func.count()).where(Job.kind == "ingest_cut", Job.status == "succeeded"))

    wait_until(
        lambda: succeeded_ingests() == 2,
        timeout=120,
        what="the tracker to finish the UI's job in the table",
        alive=running(process, "media-pipeline up"),
    )
    scraped = httpx.get(f"http://127.0.0.1:{api_port}/metrics", timeout=30)
    assert scraped.status_code == 200, scraped.text
    assert 'media_pipeline_jobs{kind="ingest_cut",status="succeeded"} 2.0' in scraped.text
    assert 'media_pipeline_job_processing_seconds_count{kind="ingest_cut",status="succeeded"} 2.0' in scraped.text

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=40) == 0
    output = process.stdout.read().decode() if process.stdout else ""
    assert "stopped: webserver, daemon and API" in output
    for port in (ui_port, api_port):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still served after Ctrl-C"
