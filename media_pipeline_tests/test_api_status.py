"""Job status from Dagster runs: every run status, cancelling, cached final states, progress
that moves with the shots, failure sentences, and cursor pagination."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import runs
from api.dagster_gateway import GatewayError, GraphQLGateway, InProcessGateway, RunInfo
from api.job_progress import weights_for
from api.main import create_app
from media_pipeline import db
from media_pipeline.db.models import Job
from media_pipeline.editorial.publish import publish_cut
from media_pipeline.platform.progress import ProgressReporter
from media_pipeline.platform.run_progress import RunProgress
from media_pipeline.settings import Settings
from media_pipeline_tests.test_api_support import *  # noqa: F403  (fixtures)
from media_pipeline_tests.test_api_support import AUTH, assert_problem, clip, track_jobs, upload, write_otio

S = dg.DagsterRunStatus
EXPECTED = {
    S.QUEUED: "queued",
    S.NOT_STARTED: "queued",
    S.STARTING: "queued",
    S.MANAGED: "queued",
    S.STARTED: "running",
    S.SUSPENDED: "running",
    S.SUCCESS: "succeeded",
    S.FAILURE: "failed",
    S.CANCELING: "running",
    S.CANCELED: "cancelled",
}


def test_every_dagster_run_status_is_mapped() -> None:
    assert set(runs.RUN_STATUS_TO_JOB) == set(dg.DagsterRunStatus)
    assert runs.RUN_STATUS_TO_JOB == EXPECTED


def add_run(instance: dg.DagsterInstance, status: dg.DagsterRunStatus, job_name: str = "ingest_cut") -> str:
    """A run record in `status`, as the run coordinator, launcher or worker would leave it."""
    # Dagster requires queued runs to say where their code lives (the daemon launches from it).
    from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    origin = RemoteJobOrigin(
        repository_origin=RemoteRepositoryOrigin(
            code_location_origin=InProcessCodeLocationOrigin(
                loadable_target_origin=LoadableTargetOrigin(module_name="media_pipeline.definitions"),
                location_name="media_pipeline",
            ),
            repository_name="__repository__",
        ),
        job_name=job_name,
    )
    run_id = str(uuid.uuid4())
    instance.add_run(dg.DagsterRun(job_name=job_name, run_id=run_id, status=status, remote_job_origin=origin))
    return run_id


def add_job(url: str, run_id: str | None, kind: str = "ingest_cut", created: dt.datetime | None = None) -> str:
    job_id = str(uuid.uuid4())
    db.migrate(url)
    with db.session_scope(url) as session:
        session.add(
            Job(
                id=job_id,
                kind=kind,
                status="queued",
                run_id=run_id,
                params={},
                outputs=[],
                created_at=created or dt.datetime.now(dt.UTC),
            )
        )
    return job_id


class DownGateway(InProcessGateway):
    """Dagster's storage unreachable: every read fails the way the real gateways report it."""

    def run_statuses(self, run_ids: Iterable[str]) -> dict[str, RunInfo]:
        raise GatewayError("the Dagster instance could not be read: connection refused")

    def run_logs(self, run_id: str) -> list[dg.EventLogEntry]:
        raise GatewayError("the run's event log could not be read: connection refused")


def test_job_status_follows_each_run_status(
    client: TestClient, app: FastAPI, api_settings: Settings, instance: dg.DagsterInstance
) -> None:
    jobs = {status: add_job(api_settings.database_url, add_run(instance, status)) for status in dg.DagsterRunStatus}
    for status, job_id in jobs.items():
        job = client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()
        assert job["status"] == EXPECTED[status], (status, job)
        assert 0 <= job["progress"] <= 1
        if status == S.FAILURE:
            assert job["error"].startswith("the run failed before any step reported why")
        else:
            assert job["error"] is None
    assert client.get(f"/v1/jobs/{jobs[S.CANCELING]}", headers=AUTH).json()["stage"] == "cancelling"
    assert client.get(f"/v1/jobs/{jobs[S.SUCCESS]}", headers=AUTH).json()["progress"] == 1.0

    # Filters see derived statuses.
    listed = client.get("/v1/jobs", params={"status": "queued", "limit": 200}, headers=AUTH).json()["items"]
    assert {j["id"] for j in listed} == {jobs[s] for s in EXPECTED if EXPECTED[s] == "queued"}

    # Reading never wrote a state: the job tracker writes final states once runs have ended.
    with db.session_scope(api_settings.database_url) as session:
        assert set(session.scalars(sa.select(Job.status))) == {"queued"}
    track_jobs(instance, api_settings.database_url)
    # Final states were cached in the rows: with Dagster unreachable they still answer, while
    # unfinished jobs cannot be described and say so.
    app.state.gateway = DownGateway(instance)
    with db.session_scope(api_settings.database_url) as session:
        stored = dict(session.execute(sa.select(Job.id, Job.status)).tuples().all())
    for status in (S.SUCCESS, S.FAILURE, S.CANCELED):
        assert stored[jobs[status]] == EXPECTED[status]
        assert client.get(f"/v1/jobs/{jobs[status]}", headers=AUTH).json()["status"] == EXPECTED[status]
    assert_problem(client.get(f"/v1/jobs/{jobs[S.STARTED]}", headers=AUTH), 503, "dagster_unavailable")


def test_cancel_before_the_run_starts(client: TestClient, api_settings: Settings, instance: dg.DagsterInstance) -> None:
    queued = add_job(api_settings.database_url, add_run(instance, S.QUEUED))
    response = client.post(f"/v1/jobs/{queued}/cancel", headers=AUTH)
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    unlaunched = add_job(api_settings.database_url, None)
    response = client.post(f"/v1/jobs/{unlaunched}/cancel", headers=AUTH)
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    assert client.get(f"/v1/jobs/{unlaunched}", headers=AUTH).json()["stage"] == "cancelled"


def test_pagination_with_cursors(client: TestClient, api_settings: Settings, tmp_path: Path) -> None:
    url = api_settings.database_url
    db.migrate(url)
    source = tmp_path / "c.otio"
    source.write_text("{}")
    with db.session_scope(url) as session:
        for number in range(5):
            publish_cut(session, api_settings.artifact_root, project="pages", name=f"cut{number}", source=source)
    seen, cursor = [], None
    while True:
        params = {"limit": 2, "project": "pages", **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/cuts", params=params, headers=AUTH).json()
        seen += [cut["name"] for cut in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"cut{n}" for n in reversed(range(5))]

    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ids = [add_job(url, None, created=base + dt.timedelta(seconds=n // 2)) for n in range(5)]  # ties included
    listed, cursor = [], None
    while True:
        page = client.get("/v1/jobs", params={"limit": 2, **({"cursor": cursor} if cursor else {})}, headers=AUTH)
        body = page.json()
        listed += [job["id"] for job in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(listed) == sorted(ids) and len(listed) == 5


# -- progress ---------------------------------------------------------------------------------


def user_line(run_id: str, step: str, message: str) -> dg.EventLogEntry:
    return dg.EventLogEntry(
        error_info=None,
        level=20,
        user_message=message,
        run_id=run_id,
        timestamp=time.time(),
        step_key=step,
        job_name="ingest_cut",
        dagster_event=None,
    )


def fold(job_name: str, entries: Iterable[dg.EventLogEntry]) -> RunProgress:
    progress = RunProgress(weights_for(job_name))
    for entry in entries:
        progress.apply(entry)
    return progress


def reporter(run_id: str, step: str, unit: str, into: list[dg.EventLogEntry]) -> ProgressReporter:
    """The real reporter, sending every event at once into `into` as the step's log records."""
    return ProgressReporter(lambda message: into.append(user_line(run_id, step, message)), step, unit, flush_seconds=0)


def test_progress_moves_as_shots_finish(
    client: TestClient, instance: dg.DagsterInstance, plate: Path, tmp_path: Path
) -> None:
    job = upload(client, write_otio(tmp_path / "p.otio", [clip(f"s{n}", plate, n, 8) for n in range(4)])).json()["job"]
    events = list(instance.all_logs(job["run_id"]))
    step_started = next(
        n
        for n, e in enumerate(events)
        if e.dagster_event
        and e.dagster_event.event_type == dg.DagsterEventType.STEP_START
        and e.step_key == "shot_thumbnails"
    )
    running = S.STARTED
    before = events[: step_started + 1]
    at_start = fold("ingest_cut", before).progress(running)
    assert at_start == pytest.approx(0.3)
    # Each shot the step reports done moves progress on.
    lines: list[dg.EventLogEntry] = []
    progress = reporter(job["run_id"], "shot_thumbnails", "shots", lines)
    progress.plan(total=4, items={f"{n}": f"s{n}" for n in range(4)})
    values = [fold("ingest_cut", [*before, *lines]).progress(running)]
    for done in range(4):
        progress.item_done(f"{done}")
        values.append(fold("ingest_cut", [*before, *lines]).progress(running))
    assert values[0] == at_start
    assert values == sorted(values) and len(set(values)) == 5
    assert values[-1] == pytest.approx(0.9)
    # Only Dagster says a job is complete.
    assert fold("ingest_cut", events[:-1]).progress(running) < 1
    assert fold("ingest_cut", events).progress(S.SUCCESS) == 1
    # Reused thumbnails are done when planned.
    lines = []
    progress = reporter(job["run_id"], "shot_thumbnails", "shots", lines)
    progress.plan(total=4, items=["0", "1", "2", "3"])
    progress.item_done("0", reused=True)
    progress.item_done("1", reused=True)
    assert fold("ingest_cut", [*before, *lines]).progress(running) == values[2]


def test_final_video_progress_follows_the_frames_encoded(
    client: TestClient, instance: dg.DagsterInstance, plate: Path, tmp_path: Path
) -> None:
    cut = upload(client, write_otio(tmp_path / "f.otio", [clip("a", plate, 0, 40), clip("b", plate, 50, 40)]))
    cut_id = cut.json()["cut"]["id"]
    body = {"resolution": "64x36", "preset": "ultrafast", "audio": False}
    job = client.post(f"/v1/cuts/{cut_id}/final-video", json=body, headers=AUTH).json()
    assert job["status"] == "succeeded" and job["progress"] == 1.0 and job["percent"] == 100
    # The segments are the job's items, all encoded.
    assert [item["status"] for item in job["items"]] == ["succeeded", "succeeded"]
    assert {item["step"] for item in job["items"]} == {"final_video"}
    events = list(instance.all_logs(job["run_id"]))
    started = next(
        n
        for n, e in enumerate(events)
        if e.dagster_event
        and e.dagster_event.event_type == dg.DagsterEventType.STEP_START
        and (e.step_key or "").startswith("final_video")  # the graph's first step: its plan
    )
    before = events[: started + 1]
    running = S.STARTED
    assert fold("render_final_video", before).progress(running) == 0
    # Frames are counted as ffmpeg reports them; a step's count never goes back.
    lines: list[dg.EventLogEntry] = []
    progress = reporter(job["run_id"], "final_video", "frames", lines)
    progress.plan(total=80, items={"0000": "a", "0001": "b"})
    values = []
    for by in (10, 30, 0, 40):
        progress.advance(by)
        values.append(fold("render_final_video", [*before, *lines]).progress(running))
    assert values == [0.125, 0.5, 0.5, 0.99]
    assert fold("render_final_video", [*before, *lines]).stage(running) == "final_video"
    # Events another step reports do not count as this step's frames.
    stray: list[dg.EventLogEntry] = []
    reporter(job["run_id"], "contact_sheet", "frames", stray).plan(total=1)
    other = reporter(job["run_id"], "contact_sheet", "frames", stray)
    other.advance(80)
    assert fold("render_final_video", [*before, *lines[:-1], *stray]).progress(running) == 0.5


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_progress_reported_while_running_never_goes_back(
    api_settings: Settings, instance: dg.DagsterInstance, plate: Path, tmp_path: Path
) -> None:
    gateway = InProcessGateway(instance, background=True)
    # Enough shots that the thumbnails step outlasts several reads even when each read is slowed
    # down by a loaded machine (the run shares this process with the API).
    timeline = write_otio(tmp_path / "many.otio", [clip(f"sh{n:03d}", plate, n % 60, 24) for n in range(120)])
    seen: list[tuple[str, float, str]] = []
    roomy = api_settings.model_copy(update={"max_upload_bytes": 1_000_000})  # 120 clips: over the tests' 64 KB limit
    with TestClient(create_app(roomy, gateway=gateway)) as client:
        uploaded = upload(client, timeline)
        assert uploaded.status_code == 202, uploaded.text
        job_id = uploaded.json()["job"]["id"]
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            job = client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()
            seen.append((job["status"], job["progress"], job["stage"]))
            if job["status"] in runs.TERMINAL:
                break
            time.sleep(0.02)
    gateway.join()
    assert seen[-1] == ("succeeded", 1.0, "done"), seen[-5:]
    progress = [value for _, value, _ in seen]
    assert progress == sorted(progress), progress
    middle = {value for status, value, _ in seen if status == "running" and 0 < value < 1}
    assert len(middle) >= 2, seen
    stages = [stage for status, _, stage in seen if status == "running"]
    assert "shot_thumbnails" in stages


# -- failure sentences ------------------------------------------------------------------------


def failing_run_events(instance: dg.DagsterInstance, error: Exception) -> tuple[list[dg.EventLogEntry], str]:
    @dg.op(name="boom")
    def boom() -> None:
        raise error

    @dg.job(name="failing")
    def failing() -> None:
        boom()

    result = failing.execute_in_process(instance=instance, raise_on_error=False)
    return list(instance.all_logs(result.run_id)), result.run_id


def test_failure_sentences(instance: dg.DagsterInstance) -> None:
    events, run_id = failing_run_events(instance, dg.Failure(description="media is offline: mount /Volumes/show"))
    assert runs.failure_sentence(events, run_id) == "media is offline: mount /Volumes/show"

    events, run_id = failing_run_events(instance, ValueError("disk full\nwith a second line\n  File x.py"))
    sentence = runs.failure_sentence(events, run_id)
    assert sentence == "step boom failed: ValueError: disk full"
    logs = list(fold("failing", events).logs)
    assert all("\n" not in line.msg and "File " not in line.msg for line in logs)
    assert logs[-1].level == "ERROR"


# -- the GraphQL gateway's contract with the webserver ----------------------------------------


class RecordingClient:
    """Stands in for DagsterGraphQLClient to pin down what the gateway sends (the real
    webserver round trip is the stack test's job)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []

    def submit_job_execution(self, *args: object, **kwargs: object) -> str:
        self.calls.append(("submit_job_execution", args, kwargs))
        return "run-1"

    def terminate_run(self, *args: object, **kwargs: object) -> None:
        self.calls.append(("terminate_run", args, kwargs))


def test_graphql_gateway_submits_the_partition_as_a_tag(instance: dg.DagsterInstance) -> None:
    gateway = GraphQLGateway("0.0.0.0", 3000, instance=instance)
    assert gateway.host == "127.0.0.1"  # a wildcard bind address is not where to connect
    client = RecordingClient()
    gateway._clients.client = client  # this thread's client
    gateway.add_partition("cut_versions", "show.reel.v001")
    gateway.add_partition("cut_versions", "show.reel.v001")
    assert instance.get_dynamic_partitions("cut_versions") == ["show.reel.v001"]
    config = {"ops": {"shot_thumbnails": {"config": {"frame": "first", "shot_ids": [7]}}}}
    run_id = gateway.submit("render_thumbnails", "show.reel.v001", config, {"media_pipeline/job_id": "j1"})
    gateway.cancel(run_id)
    assert client.calls == [
        (
            "submit_job_execution",
            ("render_thumbnails",),
            {
                "repository_location_name": None,
                "run_config": config,
                "tags": {"media_pipeline/job_id": "j1", "dagster/partition": "show.reel.v001"},
            },
        ),
        ("terminate_run", ("run-1",), {}),
    ]


def test_graphql_gateway_gives_each_thread_its_own_client() -> None:
    # The GraphQL client's transport serves one request at a time: concurrent API requests
    # sharing one failed with "Transport is already connected" (found by test_stack_postgres).
    gateway = GraphQLGateway("127.0.0.1", 3000)
    mine = gateway.client
    theirs: list[object] = []
    thread = threading.Thread(target=lambda: theirs.append(gateway.client))
    thread.start()
    thread.join()
    assert gateway.client is mine and theirs and theirs[0] is not mine
