"""Runs launched from the Dagster UI's Materialize button are jobs too.

The button does not launch a registered job: it launches the implicit asset job `__ASSET_JOB`
with an asset selection and (for partitioned assets) the partition. The job tracker maps such a
run to the registered kind whose job materializes those assets.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from api.job_progress import weights_for
from media_pipeline import definitions as code_location
from media_pipeline.platform.job_kinds import JOB_ID_TAG, KIND_TAG, kind_for_assets
from media_pipeline.platform.job_tracker import assets_of_jobs, job_tracker
from media_pipeline.resources import DatabaseResource
from media_pipeline.settings import Settings
from media_pipeline_tests.test_api_support import *  # noqa: F403  (fixtures)
from media_pipeline_tests.test_api_support import AUTH, three_shot_cut, track_jobs, upload


def materialize_as_the_ui_does(
    instance: dg.DagsterInstance, assets: list[str], partition_key: str, run_config: dict | None = None
) -> dg.ExecuteInProcessResult:
    """What the Materialize button submits: the implicit asset job, an asset selection, a partition."""
    keys = [dg.AssetKey(name) for name in assets]
    job = code_location.defs.resolve_implicit_job_def_def_for_assets(keys)
    assert job is not None and job.name.startswith("__ASSET_JOB")
    return job.execute_in_process(
        run_config=run_config or {},
        instance=instance,
        partition_key=partition_key,
        asset_selection=keys,
        tags={"dagster/from_ui": "true"},
        raise_on_error=False,
    )


def track_as_the_daemon_does(instance: dg.DagsterInstance, database_url: str, cursor: str | None = None) -> str | None:
    """One job tracker evaluation with the code location's repository, as the daemon gives it."""
    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"database": DatabaseResource(url=database_url)},
        definitions=code_location.defs,
    ) as context:
        job_tracker(context)
        return context.cursor


def jobs(client: TestClient, **params: object) -> list[dict]:
    return client.get("/v1/jobs", params={"limit": 200, **params}, headers=AUTH).json()["items"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_materialize_from_the_ui_is_a_job_of_the_kind_whose_assets_it_selects(
    client: TestClient, api_settings: Settings, instance: dg.DagsterInstance, plate: Path, tmp_path: Path
) -> None:
    cut = upload(client, three_shot_cut(tmp_path, plate)).json()["cut"]
    partition = cut["partition_key"]
    [api_job] = jobs(client)

    # Exactly render_thumbnails' assets; then one asset of ingest_cut's (a partial ingest); then
    # one shot's thumbnail with the launchpad's config.
    thumbnails = materialize_as_the_ui_does(instance, ["shot_thumbnails", "contact_sheet"], partition)
    diff = materialize_as_the_ui_does(instance, ["cut_diff"], partition)
    shot = client.get(f"/v1/cuts/{cut['id']}/shots", headers=AUTH).json()["items"][1]
    config = {"ops": {"shot_thumbnails": {"config": {"frame": "last", "shot_ids": [shot["id"]]}}}}
    one_shot = materialize_as_the_ui_does(instance, ["shot_thumbnails"], partition, config)
    assert thumbnails.success and diff.success and one_shot.success
    for result in (thumbnails, diff, one_shot):
        run = instance.get_run_by_id(result.run_id)
        assert run.job_name.startswith("__ASSET_JOB") and run.asset_selection

    # Without the repository (no way to tell what a selection is) nothing is adopted...
    track_jobs(instance, api_settings.database_url)
    assert [job["id"] for job in jobs(client)] == [api_job["id"]]
    # ...with it, as the daemon evaluates the sensor, each run is a job, linked both ways.
    cursor = track_as_the_daemon_does(instance, api_settings.database_url)
    listed = {job["run_id"]: job for job in jobs(client, source="ui")}
    assert set(listed) == {thumbnails.run_id, diff.run_id, one_shot.run_id}
    expected = {
        thumbnails.run_id: ("thumbnails", "cut", str(cut["id"])),
        diff.run_id: ("ingest_cut", "cut", str(cut["id"])),
        one_shot.run_id: ("shot_thumbnail", "shot", str(shot["id"])),
    }
    for run_id, job in listed.items():
        assert (job["kind"], job["subject_type"], job["subject_id"]) == expected[run_id]
        assert job["status"] == "succeeded" and job["source"] == "ui"
        tags = instance.get_run_by_id(run_id).tags
        assert (tags[JOB_ID_TAG], tags[KIND_TAG]) == (job["id"], job["kind"])
    assert listed[one_shot.run_id]["params"] == config["ops"]["shot_thumbnails"]["config"]
    # The cut's status is still its ingest's.
    assert client.get(f"/v1/cuts/{cut['id']}", headers=AUTH).json()["status"] == "ingested"

    # A second look adopts nothing twice.
    track_as_the_daemon_does(instance, api_settings.database_url, cursor)
    track_as_the_daemon_does(instance, api_settings.database_url)
    assert len(jobs(client)) == 4


def test_a_selection_no_registered_job_covers_is_not_a_job() -> None:
    assets_of_job = assets_of_jobs(code_location.defs.get_repository_def())
    assert assets_of_job is not None
    # final_video and shot_proxies are in two different registered jobs, none holds both.
    assert kind_for_assets({dg.AssetKey("final_video"), dg.AssetKey("shot_proxies")}, assets_of_job, {}) is None
    assert kind_for_assets(set(), assets_of_job, {}) is None
    picked = kind_for_assets({dg.AssetKey("final_video")}, assets_of_job, {})
    assert picked is not None and picked.name == "final_video"
    # The whole ingest selection is the ingest, not any of the smaller jobs inside it.
    names = ("cut_timeline", "cut_shots", "cut_diff", "shot_thumbnails", "contact_sheet")
    ingest = {dg.AssetKey(name) for name in names}
    picked = kind_for_assets(ingest, assets_of_job, {})
    assert picked is not None and picked.name == "ingest_cut"
    # Its progress is weighed by the steps of the kind it was adopted as, not the job's name.
    assert weights_for("__ASSET_JOB", "thumbnails") == {"shot_thumbnails": 0.85, "contact_sheet": 0.15}
    assert weights_for("__ASSET_JOB") == {}
