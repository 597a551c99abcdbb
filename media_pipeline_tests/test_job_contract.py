"""The registered job contract: every run of a registered job is a job, whoever started it; job
state comes from Dagster and its final state from the job tracker; a cut's status is its ingest's;
a new area's job kind needs no line of generic code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from api.dagster_gateway import InProcessGateway
from api.main import create_app
from media_pipeline import definitions as code_location
from media_pipeline.editorial.sensors import watch_folder_sensor
from media_pipeline.platform import job_kinds
from media_pipeline.platform.job_kinds import JOB_ID_TAG, JobKind
from media_pipeline.resources import ArtifactStore, DatabaseResource
from media_pipeline.settings import Settings
from media_pipeline_tests import widgets_area
from media_pipeline_tests.test_api_support import *  # noqa: F403  (fixtures)
from media_pipeline_tests.test_api_support import (
    AUTH,
    assert_problem,
    clip,
    three_shot_cut,
    track_jobs,
    upload,
    wait_for_job,
    write_otio,
)
from media_pipeline_tests.waiting import wait_until


def run_as_the_ui_would(
    instance: dg.DagsterInstance, job_name: str, partition_key: str, run_config: dict, tags: dict | None = None
) -> dg.ExecuteInProcessResult:
    """A run of a registered Dagster job that the API did not start (no job tag of ours)."""
    return code_location.defs.resolve_job_def(job_name).execute_in_process(
        run_config=run_config, instance=instance, partition_key=partition_key, tags=tags or {}, raise_on_error=False
    )


def jobs(client: TestClient, **params: object) -> list[dict]:
    return client.get("/v1/jobs", params={"limit": 200, **params}, headers=AUTH).json()["items"]


# -- a cut's status is its ingest's -----------------------------------------------------------


def test_a_bad_frame_rerender_from_the_ui_never_fails_the_cut_and_the_next_version_diffs_against_it(
    client: TestClient, api_settings: Settings, instance: dg.DagsterInstance, plate: Path, tmp_path: Path
) -> None:
    first = upload(client, three_shot_cut(tmp_path / "v1", plate)).json()["cut"]
    second = upload(client, three_shot_cut(tmp_path / "v2", plate)).json()["cut"]
    assert second["version"] == 2 and second["status"] == "ingested"
    shot = client.get(f"/v1/cuts/{second['id']}/shots", headers=AUTH).json()["items"][0]

    # The launchpad's config for render_shot_thumbnail, with a typo.
    config = {"ops": {"shot_thumbnails": {"config": {"frame": "lastt", "shot_ids": [shot["id"]]}}}}
    bad = run_as_the_ui_would(instance, "render_shot_thumbnail", second["partition_key"], config)
    assert not bad.success
    cut = client.get(f"/v1/cuts/{second['id']}", headers=AUTH).json()
    assert (cut["status"], cut["error"]) == ("ingested", None)

    # The run is a job like any other, with its failure sentence, once the tracker has seen it.
    track_jobs(instance, api_settings.database_url)
    [job] = jobs(client, source="ui")
    assert job["kind"] == "shot_thumbnail" and job["status"] == "failed" and job["run_id"] == bad.run_id
    assert (job["subject_type"], job["subject_id"]) == ("shot", str(shot["id"]))
    assert "frame must be 'first', 'middle', 'last'" in job["error"]
    assert instance.get_run_by_id(bad.run_id).tags[JOB_ID_TAG] == job["id"]
    assert client.get(f"/v1/cuts/{second['id']}", headers=AUTH).json()["status"] == "ingested"

    # A later good re-render has nothing to clear.
    config["ops"]["shot_thumbnails"]["config"]["frame"] = "last"
    assert run_as_the_ui_would(instance, "render_shot_thumbnail", second["partition_key"], config).success
    track_jobs(instance, api_settings.database_url)
    assert client.get(f"/v1/cuts/{second['id']}", headers=AUTH).json()["status"] == "ingested"

    # The next version is diffed against v002, the latest ingested one.
    third = upload(client, three_shot_cut(tmp_path / "v3", plate)).json()["cut"]
    diff = json.loads((api_settings.artifact_root / "cuts" / third["partition_key"] / "cut_diff.json").read_text())
    assert diff["against"] == second["partition_key"] != first["partition_key"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_interrupted_ingest_leaves_its_cut_failed_with_the_reason(
    api_settings: Settings, instance: dg.DagsterInstance, plate: Path, tmp_path: Path
) -> None:
    gateway = InProcessGateway(instance, background=True)
    timeline = write_otio(tmp_path / "long.otio", [clip(f"sh{n:03d}", plate, n % 60, 24) for n in range(40)])
    with TestClient(create_app(api_settings, gateway=gateway)) as client:
        created = upload(client, timeline).json()
        job_id, cut_id = created["job"]["id"], created["cut"]["id"]
        wait_for_job(client, job_id, lambda job: job["status"] == "running")
        assert client.post(f"/v1/jobs/{job_id}/cancel", headers=AUTH).status_code == 202
        wait_for_job(client, job_id, lambda job: job["status"] == "cancelled", timeout=300)
        gateway.join()
        track_jobs(instance, api_settings.database_url)
        cut = client.get(f"/v1/cuts/{cut_id}", headers=AUTH).json()
        assert cut["status"] == "failed" and "the ingest was cancelled" in cut["error"]
        assert_problem(client.post(f"/v1/cuts/{cut_id}/thumbnails", json={}, headers=AUTH), 409, "cut_not_ingested")
        # The job's final state was written by the tracker, from the run.
        [job] = jobs(client, status="cancelled")
        assert job["id"] == job_id and job["source"] == "api"


# -- every run is a job -----------------------------------------------------------------------


def test_sensor_ui_and_retry_runs_are_jobs_with_their_source(
    client: TestClient, api_settings: Settings, instance: dg.DagsterInstance, plate: Path, tmp_path: Path
) -> None:
    # The API's own job.
    api_job = upload(client, three_shot_cut(tmp_path / "api", plate, name="reel1")).json()["job"]

    # A watch-folder drop: the sensor publishes it and asks for an ingest run, which the daemon
    # launches with the sensor's name as a tag.
    watch = tmp_path / "watch"
    three_shot_cut(watch, plate, name="dropped")
    sensor = watch_folder_sensor(watch, interval_seconds=1, settle_seconds=0, default_edl_rate=24)
    resources = {
        "database": DatabaseResource(url=api_settings.database_url),
        "artifacts": ArtifactStore(root=str(api_settings.artifact_root)),
    }
    cursor: str | None = None

    def tick() -> list[dg.RunRequest]:
        nonlocal cursor
        with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
            result = sensor(context)
        if not isinstance(result, dg.SensorResult):
            return []
        cursor = result.cursor
        for partitions in result.dynamic_partitions_requests or []:
            instance.add_dynamic_partitions(partitions.partitions_def_name, list(partitions.partition_keys))
        return list(result.run_requests or [])

    [request] = wait_until(tick, what="the sensor's run request for the dropped cut")
    sensor_run = run_as_the_ui_would(
        instance, "ingest_cut", request.partition_key, {}, {**request.tags, "dagster/sensor_name": sensor.name}
    )
    assert sensor_run.success

    # A render launched from the launchpad, and a re-execution of the API's run (which inherits
    # the parent's tags, our job id among them).
    partition = client.get("/v1/cuts", headers=AUTH).json()["items"][-1]["partition_key"]
    ui_run = run_as_the_ui_would(instance, "render_thumbnails", partition, {})
    parent = instance.get_run_by_id(api_job["run_id"])
    retry_run = run_as_the_ui_would(
        instance, "ingest_cut", partition, {}, {**parent.tags, "dagster/parent_run_id": parent.run_id}
    )
    assert ui_run.success and retry_run.success

    # Nothing is listed before the tracker has seen the runs; then each is a job, linked both ways.
    assert [job["id"] for job in jobs(client)] == [api_job["id"]]
    track_jobs(instance, api_settings.database_url)
    listed = {job["run_id"]: job for job in jobs(client)}
    assert {run_id: job["source"] for run_id, job in listed.items()} == {
        api_job["run_id"]: "api",
        sensor_run.run_id: "sensor",
        ui_run.run_id: "ui",
        retry_run.run_id: "retry",
    }
    for run_id, job in listed.items():
        assert instance.get_run_by_id(run_id).tags[JOB_ID_TAG] == job["id"]
        assert job["status"] == "succeeded" and job["subject_type"] == "cut"
    dropped = client.get(f"/v1/cuts/{listed[sensor_run.run_id]['subject_id']}", headers=AUTH).json()
    assert dropped["name"] == "dropped" and dropped["partition_key"] == request.partition_key
    assert listed[ui_run.run_id]["kind"] == "thumbnails" and listed[retry_run.run_id]["kind"] == "ingest_cut"
    assert len({job["id"] for job in listed.values()}) == 4
    # Filters see them: by source, by kind, by the cut they are about.
    assert [job["run_id"] for job in jobs(client, source="sensor")] == [sensor_run.run_id]
    cut_id = listed[ui_run.run_id]["subject_id"]
    about_cut = {job["run_id"] for job in jobs(client, cut_id=cut_id)}
    assert about_cut == {api_job["run_id"], ui_run.run_id, retry_run.run_id}
    # A second look adopts nothing twice.
    track_jobs(instance, api_settings.database_url)
    assert len(jobs(client)) == 4


# -- a new area's job kind, end to end, with no edit to generic code --------------------------


@pytest.fixture
def widget_kind() -> Iterator[JobKind]:
    kind = job_kinds.register(widgets_area.kind)
    yield kind
    job_kinds.unregister(kind.name)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_throwaway_areas_job_kind_runs_end_to_end_through_v1_jobs(
    widget_kind: JobKind, api_settings: Settings, instance: dg.DagsterInstance
) -> None:
    # Generous: a spawned run process imports Dagster, slow on a loaded machine.
    gateway = InProcessGateway(instance, definitions_module=widgets_area.__name__, background=True, start_timeout=300)
    with TestClient(create_app(api_settings, gateway=gateway)) as client:
        start = {"kind": "widget_count", "subject_id": "w-1", "params": {"count": 2}}
        response = client.post("/v1/jobs", json=start, headers={**AUTH, "Idempotency-Key": "widgets-1"})
        assert response.status_code == 202, response.text
        job = response.json()
        assert (job["kind"], job["subject_type"], job["subject_id"], job["source"]) == (
            "widget_count",
            "widget",
            "w-1",
            "api",
        )
        assert job["params"] == {"count": 2, "pause": 0.0}
        assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
        done = wait_for_job(client, job["id"], lambda body: body["status"] == "succeeded", timeout=120)
        assert done["progress"] == 1.0 and any(line["msg"] == "counted 2 widgets" for line in done["logs"])
        again = client.post("/v1/jobs", json=start, headers={**AUTH, "Idempotency-Key": "widgets-1"})
        assert again.json()["id"] == job["id"] and again.headers["Idempotent-Replayed"] == "true"

        # The kind's request model validates the params once, naming the field.
        bad = client.post("/v1/jobs", json={**start, "params": {"count": 0}}, headers=AUTH)
        body = assert_problem(bad, 422, "validation_error")
        assert [error["field"] for error in body["errors"]] == ["params.count"]
        assert_problem(client.post("/v1/jobs", json={**start, "kind": "nope"}, headers=AUTH), 422, "unknown_job_kind")

        # Cancel a long one.
        slow = {"kind": "widget_count", "subject_id": "w-2", "params": {"count": 100_000, "pause": 0.01}}
        long_job = client.post("/v1/jobs", json=slow, headers=AUTH).json()
        wait_for_job(client, long_job["id"], lambda body: body["status"] == "running", timeout=120)
        assert client.post(f"/v1/jobs/{long_job['id']}/cancel", headers=AUTH).status_code == 202
        wait_for_job(client, long_job["id"], lambda body: body["status"] == "cancelled", timeout=120)

        listed = client.get("/v1/jobs", params={"kind": "widget_count"}, headers=AUTH).json()["items"]
        assert [item["id"] for item in listed] == [long_job["id"], job["id"]]
        about = client.get("/v1/jobs", params={"subject_type": "widget", "subject_id": "w-1"}, headers=AUTH).json()
        assert [item["id"] for item in about["items"]] == [job["id"]]
    gateway.join()
    track_jobs(instance, api_settings.database_url)
    with TestClient(create_app(api_settings, gateway=gateway)) as client:
        finished = client.get("/v1/jobs", params={"status": "cancelled"}, headers=AUTH).json()["items"]
        assert [item["id"] for item in finished] == [long_job["id"]]


# -- proxies through the API ------------------------------------------------------------------


def test_proxies_route_renders_some_shots_and_shots_carry_their_urls(
    client: TestClient, plate: Path, tmp_path: Path
) -> None:
    cut = upload(client, three_shot_cut(tmp_path, plate)).json()["cut"]
    body = {"shot_names": ["sh010", "sh030"], "width": 160, "preset": "ultrafast", "filmstrip_frames": 2}
    response = client.post(f"/v1/cuts/{cut['id']}/proxies", json=body, headers=AUTH)
    assert response.status_code == 202, response.text
    job = response.json()
    assert (job["kind"], job["status"], job["subject_id"]) == ("proxies", "succeeded", str(cut["id"]))
    assert job["params"]["shot_names"] == ["sh010", "sh030"] and job["params"]["width"] == 160
    shots = {shot["name"]: shot for shot in client.get(f"/v1/cuts/{cut['id']}/shots", headers=AUTH).json()["items"]}
    assert shots["sh020"]["proxy_url"] is None and shots["sh020"]["filmstrip_url"] is None
    for name in ("sh010", "sh030"):
        proxy = client.get(shots[name]["proxy_url"], headers=AUTH)
        strip = client.get(shots[name]["filmstrip_url"], headers=AUTH)
        assert proxy.status_code == 200 and proxy.content[4:8] == b"ftyp"
        assert strip.status_code == 200 and strip.content[:2] == b"\xff\xd8"
    assert {output["url"] for output in job["outputs"]} == {shots[n]["proxy_url"] for n in ("sh010", "sh030")}

    for bad, field in [({"width": 5}, "width"), ({"width": "480"}, "width"), ({"burn_ins": ["clock"]}, "burn_ins"),
                       ({"widht": 480}, "widht"), ({"crf": 99}, "crf")]:  # fmt: skip
        problem = assert_problem(client.post(f"/v1/cuts/{cut['id']}/proxies", json=bad, headers=AUTH), 422,
                                 "validation_error")  # fmt: skip
        assert field in [error["field"] for error in problem["errors"]], (bad, problem)
    assert_problem(client.post("/v1/cuts/424242/proxies", json={}, headers=AUTH), 404, "not_found")
