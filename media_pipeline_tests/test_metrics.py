"""`GET /metrics`: job figures that agree with the job table, read back with Prometheus' own parser;
who may scrape; the library's counters."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import sys
import uuid
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.dagster_gateway import InProcessGateway
from api.main import create_app
from media_pipeline import db
from media_pipeline.db.models import Job
from media_pipeline.platform import job_kinds, metrics
from media_pipeline.settings import Settings
from media_pipeline_tests.test_api_support import *  # noqa: F403  (fixtures)
from media_pipeline_tests.test_api_support import AUTH, TOKEN, three_shot_cut, upload
from media_pipeline_tests.test_ui_materialize import materialize_as_the_ui_does, track_as_the_daemon_does

METRICS_TOKEN = "metrics-test-token-81d0"
SCRAPE = {"Authorization": f"Bearer {METRICS_TOKEN}"}
T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def metrics_settings(api_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("MEDIA_PIPELINE_METRICS_TOKEN", METRICS_TOKEN)
    return dataclasses.replace(api_settings, metrics_token=METRICS_TOKEN)


def scrape(client: TestClient, headers: dict[str, str] | None = None) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label items: value}}, as Prometheus' parser reads the answer."""
    response = client.get("/metrics", headers=SCRAPE if headers is None else headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def labels(**values: str) -> tuple:
    return tuple(sorted(values.items()))


def seconds(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None:
        return None
    as_utc = [value if value.tzinfo else value.replace(tzinfo=dt.UTC) for value in (start, end)]
    return max(0.0, (as_utc[1] - as_utc[0]).total_seconds())


def assert_agrees_with_the_table(samples: dict[str, dict[tuple, float]], url: str) -> None:
    """Every figure of /metrics against the job rows, recomputed here from the rows themselves."""
    with db.session_scope(url) as session:
        rows = session.execute(sa.select(Job.kind, Job.status, Job.created_at, Job.started_at, Job.finished_at)).all()
    kinds = sorted(job_kinds.load())
    counted = Counter((row.kind, row.status) for row in rows)
    assert {row.kind for row in rows} <= set(kinds)
    for kind in kinds:
        for status in metrics.STATUSES:
            assert samples["media_pipeline_jobs"][labels(kind=kind, status=status)] == counted[(kind, status)], (
                kind,
                status,
            )
    assert len(samples["media_pipeline_jobs"]) == len(kinds) * len(metrics.STATUSES)

    def check(name: str, bounds: tuple[float, ...], key: dict[str, str], durations: list[float]) -> None:
        assert samples[f"{name}_count"][labels(**key)] == len(durations), (name, key)
        assert math.isclose(samples[f"{name}_sum"][labels(**key)], sum(durations), abs_tol=0.01), (name, key)
        for bound in bounds:
            expected = sum(1 for d in durations if d <= bound)
            assert samples[f"{name}_bucket"][labels(**key, le=repr(float(bound)))] == expected, (name, key, bound)
        assert samples[f"{name}_bucket"][labels(**key, le="+Inf")] == len(durations)

    for kind in kinds:
        waits = [seconds(r.created_at, r.started_at) for r in rows if r.kind == kind and r.started_at is not None]
        check(metrics.QUEUE_WAIT, metrics.QUEUE_WAIT_BUCKETS, {"kind": kind}, waits)  # type: ignore[arg-type]
        for status in metrics.FINISHED:
            spans = [
                seconds(r.started_at, r.finished_at)
                for r in rows
                if (r.kind, r.status) == (kind, status) and r.started_at and r.finished_at
            ]
            check(metrics.PROCESSING, metrics.PROCESSING_BUCKETS, {"kind": kind, "status": status}, spans)  # type: ignore[arg-type]
    assert samples[metrics.TABLE_UP][()] == 1.0


def test_metrics_agree_with_the_job_table_for_every_kind_and_status(metrics_settings: Settings) -> None:
    # A burst of jobs in every kind and status, with the waits and run times a day brings:
    # queued (no run yet), running, finished, cancelled before the run started, one whose run
    # record started a little before the API's clock (clamped to 0), rows from before 0005.
    db.migrate(metrics_settings.database_url)
    kinds = sorted(job_kinds.load())
    shapes = [
        ("queued", None, None),
        ("running", 1.5, None),
        ("succeeded", 0.7, 12.25),
        ("succeeded", 4.0, 95.5),
        ("succeeded", 40.0, 3000.0),
        ("failed", 2.2, 3.3),
        ("failed", 700.0, 20000.0),
        ("cancelled", None, None),
        ("cancelled", 3.0, 61.0),
        ("succeeded", -0.2, 1.1),
    ]
    made = Counter()
    with db.session_scope(metrics_settings.database_url) as session:
        for n, kind in enumerate(kinds):
            # Each kind its own mix: every shape once, some again.
            for m, (status, wait, run) in enumerate(shapes + shapes[: (n * 3) % len(shapes)]):
                created = T0 + dt.timedelta(minutes=n * 10 + m)
                started = created + dt.timedelta(seconds=wait) if wait is not None else None
                finished = (started + dt.timedelta(seconds=run)) if started is not None and run is not None else None
                if status == "cancelled" and started is None:
                    finished = created + dt.timedelta(seconds=9)
                session.add(Job(id=str(uuid.uuid4()), kind=kind, status=status, created_at=created,
                                started_at=started, finished_at=finished, source="api"))  # fmt: skip
                made[(kind, status)] += 1
        # A row from before the timings were recorded: counted by status, in no histogram.
        session.add(Job(id=str(uuid.uuid4()), kind=kinds[0], status="succeeded", created_at=T0, source="api"))
    # Two API processes (two apps, one database): one story.
    answers = []
    for _ in range(2):
        with TestClient(create_app(metrics_settings)) as client:
            samples = scrape(client)
            assert_agrees_with_the_table(samples, metrics_settings.database_url)
            answers.append({name: values for name, values in samples.items() if name.startswith("media_pipeline_job")})
    assert answers[0] == answers[1]
    first = kinds[0]
    assert answers[0]["media_pipeline_jobs"][labels(kind=first, status="succeeded")] == made[(first, "succeeded")] + 1
    # The clamped one: a negative wait counts as 0 (in the lowest bucket), never below.
    assert answers[0][f"{metrics.QUEUE_WAIT}_bucket"][labels(kind=first, le="0.5")] == 1


def test_after_a_burst_of_real_jobs_the_counters_equal_the_database(
    metrics_settings: Settings, gateway: InProcessGateway, instance: dg.DagsterInstance, plate: Path, tmp_path: Path
) -> None:
    with TestClient(create_app(metrics_settings, gateway=gateway)) as client:
        cuts = [upload(client, three_shot_cut(tmp_path / f"v{n}", plate)).json()["cut"] for n in range(3)]
        for cut in cuts[:2]:
            response = client.post(f"/v1/cuts/{cut['id']}/thumbnails", json={"frame": "last"}, headers=AUTH)
            assert response.status_code == 202, response.text
        # One from the Dagster UI that fails (a bad frame value from the launchpad).
        bad = {"ops": {"shot_thumbnails": {"config": {"frame": "lastt"}}}}
        assert not materialize_as_the_ui_does(instance, ["shot_thumbnails"], cuts[2]["partition_key"], bad).success
        track_as_the_daemon_does(instance, metrics_settings.database_url)

        samples = scrape(client)
        assert_agrees_with_the_table(samples, metrics_settings.database_url)
        jobs = samples["media_pipeline_jobs"]
        assert jobs[labels(kind="ingest_cut", status="succeeded")] == 3
        assert jobs[labels(kind="thumbnails", status="succeeded")] == 2
        assert jobs[labels(kind="shot_thumbnail", status="failed")] == 1
        # Every finished job's run started and ended: each is in both histograms.
        processing = samples[f"{metrics.PROCESSING}_count"]
        assert processing[labels(kind="ingest_cut", status="succeeded")] == 3
        assert processing[labels(kind="shot_thumbnail", status="failed")] == 1
        assert samples[f"{metrics.QUEUE_WAIT}_count"][labels(kind="thumbnails")] == 2


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_who_may_scrape(api_settings: Settings) -> None:
    open_settings = api_settings  # no metrics token
    with TestClient(create_app(open_settings), client=("127.0.0.1", 41000)) as local:
        assert "media_pipeline_jobs" in scrape(local, headers={})
    with TestClient(create_app(open_settings), client=("::1", 41000)) as local6:
        assert "media_pipeline_jobs" in scrape(local6, headers={})
    with TestClient(create_app(open_settings), client=("192.0.2.7", 41000)) as remote:
        refused = remote.get("/metrics")
        assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "metrics_loopback_only"
        assert "MEDIA_PIPELINE_METRICS_TOKEN" in refused.json()["detail"]
        # The API token's holder may read every job already, so their counts too.
        assert "media_pipeline_jobs" in scrape(remote, headers=AUTH)

    guarded = dataclasses.replace(api_settings, metrics_token=METRICS_TOKEN)
    for host in ("127.0.0.1", "192.0.2.7"):
        with TestClient(create_app(guarded), client=(host, 41000)) as client:
            for headers in (
                {},
                {"Authorization": "Bearer wrong"},
                {"X-API-Key": "wrong"},
                {"Authorization": METRICS_TOKEN},
            ):
                answer = client.get("/metrics", headers=headers)
                assert answer.status_code == 401, (host, headers, answer.text)
                assert answer.json()["code"] == "unauthorized" and "WWW-Authenticate" in answer.headers
            assert "media_pipeline_jobs" in scrape(client, headers=SCRAPE)
            assert "media_pipeline_jobs" in scrape(client, headers={"X-API-Key": METRICS_TOKEN})
            assert "media_pipeline_jobs" in scrape(client, headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_library_hooks_and_openmetrics(metrics_settings: Settings) -> None:
    with TestClient(create_app(metrics_settings)) as client:
        before = scrape(client)
        metrics.record_upload(1000, duplicate=False)
        metrics.record_upload(250, duplicate=True)
        metrics.record_upload(250, duplicate=True)
        with metrics.inline_edit_timer():
            pass
        metrics.observe_inline_edit(0.3)
        after = scrape(client)

        def delta(name: str, **key: str) -> float:
            return after[name][labels(**key)] - before[name].get(labels(**key), 0.0)

        assert delta("media_pipeline_uploads_total", result="stored") == 1
        assert delta("media_pipeline_uploads_total", result="duplicate") == 2
        assert delta("media_pipeline_upload_bytes_total", result="stored") == 1000
        assert delta("media_pipeline_upload_bytes_total", result="duplicate") == 500
        assert delta("media_pipeline_inline_edit_seconds_count") == 2
        assert delta("media_pipeline_inline_edit_seconds_bucket", le="0.25") == 1
        assert delta("media_pipeline_inline_edit_seconds_bucket", le="0.5") == 2
        if sys.platform == "linux":  # prometheus_client reads /proc for the process figures
            assert after["process_resident_memory_bytes"][()] > 0

        openmetrics = client.get("/metrics", headers={**SCRAPE, "Accept": "application/openmetrics-text"})
        assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
        assert openmetrics.text.rstrip().endswith("# EOF")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_unreadable_job_table_is_reported_not_a_500(metrics_settings: Settings) -> None:
    unreachable = dataclasses.replace(metrics_settings, database_url="postgresql+psycopg://postgres@127.0.0.1:9/x")
    with TestClient(create_app(unreachable)) as client:
        samples = scrape(client)
    assert samples[metrics.TABLE_UP][()] == 0.0
    assert "media_pipeline_jobs" not in samples and "media_pipeline_uploads_total" in samples
