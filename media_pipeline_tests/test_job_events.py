"""Structured progress on the job, and its live events: SSE with Last-Event-ID, the WebSocket,
the final event after the end; reads with a cursor."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from api.dagster_gateway import InProcessGateway
from api.job_progress import ProgressReader
from api.main import create_app
from media_pipeline.platform.progress import ProgressReporter, decode
from media_pipeline.platform.run_progress import RunProgress
from media_pipeline.settings import Settings
from media_pipeline_tests.test_api_status import user_line
from media_pipeline_tests.test_api_support import *  # noqa: F403  (fixtures)
from media_pipeline_tests.test_api_support import AUTH, TOKEN, assert_problem, clip, upload, write_otio
from media_pipeline_tests.waiting import wait_until

Event = dict[str, Any]


def parse_sse(text: str) -> list[Event]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = fields.get(name, "") + value.removeprefix(" ")
        if "data" in fields:
            events.append({"id": fields.get("id"), "event": fields.get("event"), "data": json.loads(fields["data"])})
    return events


def read_events(client: TestClient, job_id: str, last_event_id: str | None = None) -> list[Event]:
    headers = {**AUTH, **({"Last-Event-ID": last_event_id} if last_event_id else {})}
    response = client.get(f"/v1/jobs/{job_id}/events", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    # LF line ends only: the web app (api/web/static/js/api.js) splits events on a blank "\n\n".
    assert "\r" not in response.text
    return parse_sse(response.text)


def order(event_id: str) -> tuple[int, int]:
    record, n = event_id.split(".")
    return int(record), int(n)


def shot_cut(tmp_path: Path, plate: Path, shots: int = 4) -> Path:
    return write_otio(tmp_path / "ev.otio", [clip(f"sh{n:03d}", plate, n * 4, 8) for n in range(shots)])


def test_a_job_shows_items_percent_and_logs_from_structured_events(
    client: TestClient, plate: Path, tmp_path: Path
) -> None:
    created = upload(client, shot_cut(tmp_path, plate)).json()
    job = client.get(f"/v1/jobs/{created['job']['id']}", headers=AUTH).json()
    assert job["status"] == "succeeded" and job["progress"] == 1.0 and job["percent"] == 100
    shots = client.get(f"/v1/cuts/{created['cut']['id']}/shots", headers=AUTH).json()["items"]
    # One item per shot, by shot id, named after the shot, each done by the thumbnail step.
    assert [(item["id"], item["name"]) for item in job["items"]] == [(str(s["id"]), s["name"]) for s in shots]
    assert {(item["step"], item["status"], item["progress"], item["error"]) for item in job["items"]} == {
        ("shot_thumbnails", "succeeded", 1.0, None)
    }
    logs = job["logs"]
    assert all(set(line) == {"ts", "level", "msg", "step", "item"} for line in logs)
    planned = [line for line in logs if line["msg"] == "4 shot(s): 0 reused, 4 to render"]
    assert planned and planned[0]["step"] == "shot_thumbnails" and planned[0]["level"] == "INFO"
    # No progress record leaks into the log as text.
    assert not any("media_pipeline.progress" in line["msg"] for line in logs)

    # A second ingest of the same shots reuses every thumbnail: items say so.
    again = upload(client, shot_cut(tmp_path, plate), name="ev2").json()["job"]
    again = client.get(f"/v1/jobs/{again['id']}", headers=AUTH).json()
    assert {item["status"] for item in again["items"]} == {"reused"}


def test_items_logs_and_stage_from_the_reporter() -> None:
    lines: list[str] = []
    progress = ProgressReporter(lines.append, "shot_proxies", "shots", flush_seconds=0)
    progress.plan(total=2, items={"7": "sh010", "8": "sh020"})
    progress.stage("encoding")
    progress.item_started("7")
    progress.item_done("7")
    progress.item_failed("8", "ffmpeg: invalid data found when processing input")
    progress.log("warning", "one proxy failed", item="8")
    fold = RunProgress({"shot_proxies": 1.0}, started=["shot_proxies"])
    for line in lines:
        fold.apply(user_line("r", "shot_proxies", line))
    assert [item.as_dict() for item in fold.items.values()] == [
        {"id": "7", "name": "sh010", "step": "shot_proxies", "status": "succeeded", "progress": 1.0, "error": None},
        {"id": "8", "name": "sh020", "step": "shot_proxies", "status": "failed", "progress": 0.0,
         "error": "ffmpeg: invalid data found when processing input"},
    ]  # fmt: skip
    assert fold.progress(dg.DagsterRunStatus.STARTED) == 0.99  # both counted; only Dagster says done
    assert fold.stage(dg.DagsterRunStatus.STARTED) == "encoding"
    (line,) = [line.as_dict() for line in fold.logs]
    assert (line["level"], line["msg"], line["step"], line["item"]) == (
        "WARNING", "one proxy failed", "shot_proxies", "8"
    )  # fmt: skip


def test_the_reporter_batches_what_it_sends() -> None:
    now = [0.0]
    sent: list[str] = []
    progress = ProgressReporter(sent.append, "final_video", "frames", clock=lambda: now[0])
    progress.plan(total=100, items=["0000", "0001"])  # a plan goes out at once
    assert len(sent) == 1
    for frames in range(10):
        progress.advance(5)
        progress.item("0000", "running", progress=frames / 10)
    assert len(sent) == 1  # within the flush interval: held back
    now[0] += 1.0
    progress.advance(5)
    assert len(sent) == 2
    events = decode(sent[1])
    # Superseded counts and running updates were folded into the latest of each.
    assert [(e.type, e.done, e.progress) for e in events] == [("item", None, 0.9), ("advance", 55, None)]
    progress.item_done("0000", advance=45)
    progress.flush()
    assert [(e.type, e.item, e.status, e.done) for e in decode(sent[-1])] == [("item", "0000", "succeeded", 100)]
    assert decode("thumbnail 3/4 done") == [] and decode("media_pipeline.progress {broken") == []


class CountingGateway(InProcessGateway):
    """Counts the event records handed out, to see what each GET reads."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        super().__init__(instance)
        self.records_read = 0

    def run_records(self, run_id: str, cursor: str | None, limit: int) -> tuple[list[dg.EventLogRecord], str, bool]:
        records, next_cursor, has_more = super().run_records(run_id, cursor, limit)
        self.records_read += len(records)
        return records, next_cursor, has_more

    def run_logs(self, run_id: str) -> list[dg.EventLogEntry]:
        raise AssertionError("the whole event log is never read")


def test_gets_read_only_the_records_written_since_the_last_read(
    api_settings: Settings, instance: dg.DagsterInstance, plate: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = CountingGateway(instance)
    monkeypatch.setattr("api.job_progress.READER", ProgressReader())
    with TestClient(create_app(api_settings, gateway=gateway)) as client:
        job = upload(client, shot_cut(tmp_path, plate)).json()["job"]
        total = len(list(instance.all_logs(job["run_id"])))
        gateway.records_read = 0
        first = client.get(f"/v1/jobs/{job['id']}", headers=AUTH).json()
        second = client.get(f"/v1/jobs/{job['id']}", headers=AUTH).json()
    assert first["items"] and first == second
    # Only what the POST's own read had not folded in yet, and nothing at all the second time.
    assert gateway.records_read == 0, total


# -- Server-Sent Events -----------------------------------------------------------------------


def test_events_of_a_finished_job_end_with_the_job_and_resume_without_repeats(
    client: TestClient, plate: Path, tmp_path: Path
) -> None:
    job_id = upload(client, shot_cut(tmp_path, plate)).json()["job"]["id"]
    events = read_events(client, job_id)
    assert events[-1]["event"] == "end" and events[-1]["id"] == "end"
    body = client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()
    assert events[-1]["data"] == body  # the same job the poll answers
    ids = [event["id"] for event in events[:-1]]
    assert ids == sorted(ids, key=order) and len(set(ids)) == len(ids)
    kinds = {event["event"] for event in events}
    assert kinds == {"progress", "item", "log", "end"}
    progress = [event["data"] for event in events if event["event"] == "progress"]
    assert [p["progress"] for p in progress] == sorted(p["progress"] for p in progress)
    assert progress[-1] == {"status": "succeeded", "progress": 1.0, "percent": 100, "stage": "done"}
    assert any(p["status"] == "running" and p["stage"] == "shot_thumbnails" for p in progress)
    # The last state of every item in the stream is the item the job shows.
    last_items = {event["data"]["id"]: event["data"] for event in events if event["event"] == "item"}
    assert list(last_items.values()) == body["items"]
    # Every log line the job shows was streamed, in order.
    streamed_logs = [event["data"] for event in events if event["event"] == "log"]
    assert streamed_logs[-len(body["logs"]) :] == body["logs"]

    # Resuming after any event gives exactly the rest, for every cut point.
    for cut in (0, len(ids) // 3, len(ids) - 1):
        assert read_events(client, job_id, ids[cut]) == events[cut + 1 :]
    # After the end (or after the last id) the final event is still sent.
    assert read_events(client, job_id, "end") == [events[-1]]
    assert read_events(client, job_id, ids[-1]) == [events[-1]]


def test_events_need_the_token_and_a_valid_resume_id(client: TestClient, plate: Path, tmp_path: Path) -> None:
    job_id = upload(client, shot_cut(tmp_path, plate, shots=1)).json()["job"]["id"]
    assert_problem(client.get(f"/v1/jobs/{job_id}/events"), 401, "unauthorized")
    assert client.get(f"/v1/jobs/{job_id}/events", headers={"X-API-Key": TOKEN}).status_code == 200
    body = assert_problem(
        client.get(f"/v1/jobs/{job_id}/events", headers={**AUTH, "Last-Event-ID": "yesterday"}), 422, "validation_error"
    )
    assert body["errors"][0]["field"] == "Last-Event-ID"
    missing = "00000000-0000-4000-8000-000000000000"
    assert_problem(client.get(f"/v1/jobs/{missing}/events", headers=AUTH), 404, "not_found")


def test_events_and_websocket_are_documented(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    events = schema["paths"]["/v1/jobs/{job_id}/events"]["get"]
    assert "text/event-stream" in events["responses"]["200"]["content"]
    assert "Last-Event-ID" in events["description"] and "/ws" in events["description"]


# -- WebSocket --------------------------------------------------------------------------------


def test_websocket_sends_the_same_events(client: TestClient, plate: Path, tmp_path: Path) -> None:
    job_id = upload(client, shot_cut(tmp_path, plate, shots=2)).json()["job"]["id"]
    sse = read_events(client, job_id)
    messages = []
    with client.websocket_connect(f"/v1/jobs/{job_id}/ws", headers=AUTH) as ws:
        while True:
            try:
                messages.append(ws.receive_json())
            except WebSocketDisconnect:
                break
            if messages[-1]["event"] == "end":
                break
    assert messages == sse
    middle = sse[len(sse) // 2]["id"]
    with client.websocket_connect(f"/v1/jobs/{job_id}/ws?last_event_id={middle}", headers={"X-API-Key": TOKEN}) as ws:
        resumed = []
        while not resumed or resumed[-1]["event"] != "end":
            resumed.append(ws.receive_json())
    assert resumed == sse[len(sse) // 2 + 1 :]
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(f"/v1/jobs/{job_id}/ws") as ws:
        ws.receive_json()
    assert refused.value.code == 1008


# -- live, over a real HTTP server ------------------------------------------------------------


@pytest.fixture
def live_api(api_settings: Settings, instance: dg.DagsterInstance) -> Iterator[tuple[str, FastAPI, InProcessGateway]]:
    """The API under uvicorn on a loopback port, running jobs in their own processes."""
    gateway = InProcessGateway(instance, background=True)
    app = create_app(api_settings, gateway=gateway)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(
        lambda: server.started,
        what="uvicorn to start",
        interval=0.05,
        alive=lambda: None if thread.is_alive() else "uvicorn's thread ended",
    )
    try:
        yield f"http://127.0.0.1:{port}", app, gateway
    finally:
        gateway.join()
        server.should_exit = True
        thread.join(30)


def stream(base: str, job_id: str, *, last_event_id: str | None = None, stop_after: int | None = None) -> list[Event]:
    """Events read as they arrive; with `stop_after`, the connection is dropped after that many."""
    headers = {**AUTH, **({"Last-Event-ID": last_event_id} if last_event_id else {})}
    events: list[Event] = []
    with (
        httpx.Client(timeout=httpx.Timeout(120, connect=10)) as http,
        http.stream("GET", f"{base}/v1/jobs/{job_id}/events", headers=headers) as response,
    ):
        assert response.status_code == 200
        block: list[str] = []
        for line in response.iter_lines():
            if line:
                block.append(line)
                continue
            events += parse_sse("\n".join(block))
            block = []
            if stop_after is not None and len(events) >= stop_after:
                break
    return events


def test_live_events_resume_with_last_event_id_and_agree_with_a_later_read(
    live_api: tuple[str, FastAPI, InProcessGateway], plate: Path, tmp_path: Path
) -> None:
    base, _, _ = live_api
    timeline = write_otio(tmp_path / "live.otio", [clip(f"sh{n:03d}", plate, n % 60, 24) for n in range(30)])
    with httpx.Client(base_url=base, timeout=60) as http:
        with timeline.open("rb") as handle:
            created = http.post("/v1/cuts", headers=AUTH, data={"project": "live", "name": "live"},
                                files={"file": ("live.otio", handle.read())})  # fmt: skip
        assert created.status_code == 202, created.text
        job_id = created.json()["job"]["id"]
        # Connected while the job runs: a few events, then the connection drops.
        first = stream(base, job_id, stop_after=3)
        assert len(first) == 3 and all(event["event"] != "end" for event in first)
        rest = stream(base, job_id, last_event_id=first[-1]["id"])
        polled = http.get(f"/v1/jobs/{job_id}", headers=AUTH).json()
        # Read again after the end, from the start: the same events, the same end.
        later = stream(base, job_id)
    assert rest[-1]["event"] == "end" and rest[-1]["data"]["status"] == "succeeded"
    assert first + rest[:-1] == later[:-1]
    assert rest[-1]["data"]["items"] == later[-1]["data"]["items"] == polled["items"]
    assert rest[-1]["data"]["progress"] == polled["progress"] == 1.0
    running = [e["data"]["progress"] for e in later if e["event"] == "progress" and e["data"]["status"] == "running"]
    assert len(set(running)) >= 2 and running == sorted(running)


def test_a_cancel_waiting_for_its_run_to_start_shows_as_cancelling(instance: dg.DagsterInstance) -> None:
    """Dagster cannot terminate a STARTING run, so the cancel waits: the run's own records say so,
    and what is read from them (GET's stage, the live stream's) is `cancelling`, not `starting`."""
    from dagster._core.test_utils import create_run_for_test

    from api.dagster_gateway import GraphQLGateway
    from media_pipeline.platform.job_kinds import CANCEL_REQUESTED, CANCEL_TAG

    starting = dg.DagsterRunStatus.STARTING
    run = create_run_for_test(instance, job_name="render_final_video", status=starting)
    before = RunProgress({"final_video": 1.0})
    for entry in instance.all_logs(run.run_id):
        before.apply(entry)
    assert before.stage(starting) == "starting"

    # No webserver: a STARTING run is only tagged and noted, never sent a termination.
    GraphQLGateway("127.0.0.1", 9, instance=instance).cancel(run.run_id)
    assert instance.get_run_by_id(run.run_id).tags[CANCEL_TAG] == CANCEL_REQUESTED  # type: ignore[union-attr]
    read = ProgressReader().read(InProcessGateway(instance), run.run_id, run.job_name, starting, "final_video")
    assert read.stage == "cancelling"
    assert any("Cancel asked for while the run was starting" in line["msg"] for line in read.logs)
    # Once the run has stopped, it is what Dagster says.
    after = RunProgress({"final_video": 1.0})
    for entry in instance.all_logs(run.run_id):
        after.apply(entry)
    assert after.stage(dg.DagsterRunStatus.CANCELED) == "cancelled"
