"""The API end to end on real storage, real Dagster runs and real ffmpeg: publish, ingest, shots,
thumbnails, diffs, final videos, downloads, idempotency, failures and cancellation."""

from __future__ import annotations

import io
from pathlib import Path

import dagster as dg
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.dagster_gateway import InProcessGateway
from api.main import create_app
from media_pipeline.core.ffmpeg import probe
from media_pipeline.samples import read_index
from media_pipeline.settings import Settings
from media_pipeline_tests.test_api_support import *  # noqa: F403  (fixtures)
from media_pipeline_tests.test_api_support import (
    AUTH,
    assert_problem,
    clip,
    three_shot_cut,
    upload,
    wait_for_job,
    write_otio,
)


def test_publish_ingest_list_shots_and_download_thumbnails(client: TestClient, plate: Path, tmp_path: Path) -> None:
    response = upload(client, three_shot_cut(tmp_path, plate))
    assert response.status_code == 202, response.text
    body = response.json()
    cut, job = body["cut"], body["job"]
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert cut["project"] == "show" and cut["name"] == "reel1" and cut["version"] == 1
    assert job["kind"] == "ingest_cut" and (job["subject_type"], job["subject_id"]) == ("cut", str(cut["id"]))

    # The in-process gateway runs the job before answering; the job reads its state from Dagster.
    job = client.get(f"/v1/jobs/{job['id']}", headers=AUTH).json()
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0 and job["stage"] == "done" and job["error"] is None
    assert job["run_id"]
    kinds = sorted({output["kind"] for output in job["outputs"]})
    assert kinds == ["contact_sheet", "thumbnail"]
    messages = [line["msg"] for line in job["logs"]]
    # Each shot is an item the thumbnail step finished (structured progress, not a log line).
    assert [(item["name"], item["status"]) for item in job["items"]] == [
        ("sh010", "succeeded"), ("sh020", "succeeded"), ("sh030", "succeeded")
    ], job["items"]  # fmt: skip
    assert "3 shot(s): 0 reused, 3 to render" in messages, messages
    assert all({"ts", "level", "msg"} <= set(line) for line in job["logs"])

    cut = client.get(f"/v1/cuts/{cut['id']}", headers=AUTH).json()
    assert cut["status"] == "ingested" and cut["shot_count"] == 3 and cut["rate"] == "24"
    assert cut["contact_sheet_url"].startswith("/v1/artifacts/")

    shots = client.get(f"/v1/cuts/{cut['id']}/shots", headers=AUTH).json()
    assert shots["next_cursor"] is None
    items = shots["items"]
    assert [(s["index"], s["name"]) for s in items] == [(0, "sh010"), (1, "sh020"), (2, "sh030")]
    second = items[1]
    assert second["record"] == {
        "start": 12,
        "duration": 24,
        "end": 36,
        "rate": "24",
        "start_tc": "01:00:00:12",
        "end_tc": "01:00:01:12",
        "drop_frame": False,
    }
    assert second["source"]["start"] == 86400 + 20 and second["source"]["start_tc"] == "01:00:00:20"
    assert second["media_status"] == "linked" and second["media_path"] == plate.name  # relative to its root

    # The middle frame (the default) of sh020 is plate frame 20 + 24 // 2.
    thumbnail = client.get(second["thumbnail_url"], headers=AUTH)
    assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/jpeg"
    assert read_index(Image.open(io.BytesIO(thumbnail.content))) == 32

    one = client.get(f"/v1/shots/{second['id']}", headers=AUTH).json()
    assert one == second

    first_page = client.get(f"/v1/cuts/{cut['id']}/shots", params={"limit": 2}, headers=AUTH).json()
    assert [s["index"] for s in first_page["items"]] == [0, 1] and first_page["next_cursor"]
    rest = client.get(
        f"/v1/cuts/{cut['id']}/shots", params={"limit": 2, "cursor": first_page["next_cursor"]}, headers=AUTH
    ).json()
    assert [s["index"] for s in rest["items"]] == [2] and rest["next_cursor"] is None

    listed = client.get("/v1/cuts", params={"project": "show"}, headers=AUTH).json()
    assert [c["id"] for c in listed["items"]] == [cut["id"]]
    assert client.get("/v1/cuts", params={"project": "other"}, headers=AUTH).json()["items"] == []


def test_edl_with_rate_and_media_roots(client: TestClient, plate: Path, tmp_path: Path) -> None:
    edl = tmp_path / "edit.edl"
    edl.write_text(
        "TITLE: edit\n\n"
        "001  A001C001 V     C        01:00:00:10 01:00:00:20 01:00:00:00 01:00:00:10\n"
        "* FROM CLIP NAME:  sh100\n"
        "* FROM CLIP: /elsewhere/A001C001.mov\n"
        "002  A001C001 V     C        01:00:01:00 01:00:01:12 01:00:00:10 01:00:00:22\n"
        "* FROM CLIP NAME:  sh200\n"
        "* FROM CLIP: /elsewhere/A001C001.mov\n"
    )
    response = upload(client, edl, rate="24", media_roots=[str(plate.parent)])
    assert response.status_code == 202, response.text
    cut = response.json()["cut"]
    assert cut["media_roots"] == [str(plate.parent)]
    assert response.json()["job"]["status"] == "succeeded"
    shots = client.get(f"/v1/cuts/{cut['id']}/shots", headers=AUTH).json()["items"]
    assert [(s["name"], s["media_status"], s["source"]["start_tc"]) for s in shots] == [
        ("sh100", "linked", "01:00:00:10"),
        ("sh200", "linked", "01:00:01:00"),
    ]
    assert all(s["thumbnail_url"] for s in shots)


def test_drop_frame_edl_shows_drop_frame_timecodes_from_the_record_start(client: TestClient, tmp_path: Path) -> None:
    edl = tmp_path / "df.edl"
    edl.write_text(
        "TITLE: df\nFCM: DROP FRAME\n\n"
        # 00:00:59;28 -> 00:01:00;04 is 4 frames at 29.97 drop-frame (;00 and ;01 do not exist).
        "001  A001C001 V     C        00:00:59:28 00:01:00:04 01:00:00:00 01:00:00:04\n"
        "* FROM CLIP NAME:  sh100\n"
    )
    assert_problem(upload(client, edl, rate="twenty"), 422, "validation_error")
    response = upload(client, edl, rate="30000/1001")
    assert response.status_code == 202, response.text
    cut = client.get(f"/v1/cuts/{response.json()['cut']['id']}", headers=AUTH).json()
    assert (cut["rate"], cut["drop_frame"], cut["start_tc"]) == ("30000/1001", True, "01:00:00;00")
    shot = client.get(f"/v1/cuts/{cut['id']}/shots", headers=AUTH).json()["items"][0]
    assert shot["record"] == {
        "start": 0,
        "duration": 4,
        "end": 4,
        "rate": "30000/1001",
        "start_tc": "01:00:00;00",
        "end_tc": "01:00:00;04",
        "drop_frame": True,
    }
    assert (shot["source"]["start"], shot["source"]["start_tc"], shot["source"]["end_tc"]) == (
        1798,
        "00:00:59;28",
        "00:01:00;04",
    )


def test_thumbnail_routes_launch_render_thumbnails(client: TestClient, plate: Path, tmp_path: Path) -> None:
    cut = upload(client, three_shot_cut(tmp_path, plate)).json()["cut"]
    shots = client.get(f"/v1/cuts/{cut['id']}/shots", headers=AUTH).json()["items"]

    whole = client.post(f"/v1/cuts/{cut['id']}/thumbnails", json={"frame": "first", "width": 64}, headers=AUTH)
    assert whole.status_code == 202, whole.text
    job = whole.json()
    assert job["kind"] == "thumbnails" and job["status"] == "succeeded"
    assert job["params"] == {"frame": "first", "width": 64, "force": False, "shot_ids": [], "shot_names": []}
    assert sum(1 for o in job["outputs"] if o["kind"] == "thumbnail") == 3

    target = shots[2]
    single = client.post(f"/v1/shots/{target['id']}/thumbnail", json={"frame": 7, "force": True}, headers=AUTH)
    assert single.status_code == 202, single.text
    job = single.json()
    assert job["kind"] == "shot_thumbnail" and job["subject_id"] == str(target["id"]) and job["status"] == "succeeded"
    thumbnails = [o for o in job["outputs"] if o["kind"] == "thumbnail"]
    assert [o["shot_id"] for o in thumbnails] == [target["id"]]
    image = client.get(thumbnails[0]["url"], headers=AUTH)
    assert read_index(Image.open(io.BytesIO(image.content))) == 60 + 7

    # The shot list now points at the newest render of that shot.
    latest = client.get(f"/v1/shots/{target['id']}", headers=AUTH).json()
    assert latest["thumbnail_url"] == thumbnails[0]["url"]

    outside = client.post(f"/v1/shots/{target['id']}/thumbnail", json={"frame": 30}, headers=AUTH)
    body = assert_problem(outside, 422, "validation_error")
    assert body["errors"][0]["field"] == "frame" and "outside the shot" in body["detail"]

    listed = client.get("/v1/jobs", params={"cut_id": cut["id"]}, headers=AUTH).json()["items"]
    assert [j["kind"] for j in listed] == ["shot_thumbnail", "thumbnails", "ingest_cut"]
    assert "logs" not in listed[0]
    only = client.get("/v1/jobs", params={"kind": "thumbnails", "status": "succeeded"}, headers=AUTH).json()
    assert [j["kind"] for j in only["items"]] == ["thumbnails"]


def test_runs_say_who_and_what_asked_for_them(
    client: TestClient, instance: dg.DagsterInstance, plate: Path, tmp_path: Path
) -> None:
    """Not "Manually launched" in the Dagster UI: its `user` tag names the requester."""
    cut = upload(client, three_shot_cut(tmp_path, plate)).json()["cut"]
    asked = {**AUTH, "X-Requested-By": "ana@studio.example\x07"}  # control characters are dropped
    job = client.post(f"/v1/cuts/{cut['id']}/thumbnails", json={"width": 64}, headers=asked).json()
    tags = instance.get_run_by_id(job["run_id"]).tags  # type: ignore[union-attr]
    assert tags["user"] == "ana@studio.example"
    assert tags["media_pipeline/request"] == f"POST /v1/cuts/{cut['id']}/thumbnails"
    assert tags["media_pipeline/job_id"] == job["id"]
    anonymous = client.post(f"/v1/cuts/{cut['id']}/thumbnails", json={"width": 80}, headers=AUTH).json()
    assert instance.get_run_by_id(anonymous["run_id"]).tags["user"] == "API client testclient"  # type: ignore[union-attr]


def test_idempotency_key_same_body_same_job_different_body_conflict(
    client: TestClient, plate: Path, tmp_path: Path
) -> None:
    timeline = three_shot_cut(tmp_path, plate)
    first = upload(client, timeline, headers={"Idempotency-Key": "publish-1"})
    again = upload(client, timeline, headers={"Idempotency-Key": "publish-1"})
    assert first.status_code == again.status_code == 202
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["cut"]["id"] == first.json()["cut"]["id"]
    assert again.json()["job"]["id"] == first.json()["job"]["id"]
    assert len(client.get("/v1/cuts", headers=AUTH).json()["items"]) == 1

    other_name = upload(client, timeline, name="reel2", headers={"Idempotency-Key": "publish-1"})
    assert_problem(other_name, 409, "idempotency_conflict")
    changed_file = write_otio(tmp_path / "reel1.otio", [clip("sh010", plate, 0, 10)])
    assert_problem(upload(client, changed_file, headers={"Idempotency-Key": "publish-1"}), 409, "idempotency_conflict")

    cut_id = first.json()["cut"]["id"]
    path = f"/v1/cuts/{cut_id}/thumbnails"
    one = client.post(path, json={"width": 64}, headers={**AUTH, "Idempotency-Key": "thumbs-1"})
    two = client.post(path, json={"width": 64}, headers={**AUTH, "Idempotency-Key": "thumbs-1"})
    assert one.status_code == two.status_code == 202
    assert one.json()["id"] == two.json()["id"]
    conflict = client.post(path, json={"width": 65}, headers={**AUTH, "Idempotency-Key": "thumbs-1"})
    assert_problem(conflict, 409, "idempotency_conflict")
    # A key belongs to one request: reusing it on another route is a conflict too.
    shot_id = client.get(f"/v1/cuts/{cut_id}/shots", headers=AUTH).json()["items"][0]["id"]
    reuse = client.post(
        f"/v1/shots/{shot_id}/thumbnail", json={"width": 64}, headers={**AUTH, "Idempotency-Key": "thumbs-1"}
    )
    assert_problem(reuse, 409, "idempotency_conflict")
    assert len(client.get("/v1/jobs", params={"kind": "thumbnails"}, headers=AUTH).json()["items"]) == 1


def test_failed_run_reports_the_failure_sentence(client: TestClient, tmp_path: Path) -> None:
    import opentimelineio as otio

    timeline = otio.schema.Timeline(name="sound_only")
    timeline.tracks.append(otio.schema.Track(kind=otio.schema.TrackKind.Audio))
    path = tmp_path / "sound_only.otio"
    otio.adapters.write_to_file(timeline, str(path))
    response = upload(client, path)
    assert response.status_code == 202, response.text
    job = client.get(f"/v1/jobs/{response.json()['job']['id']}", headers=AUTH).json()
    assert job["status"] == "failed"
    assert job["error"] == (
        "the timeline has no video track (it holds 1 audio track(s) only); there are no shots to extract"
    )
    assert job["stage"] == "cut_shots"
    assert 0 < job["progress"] < 1
    assert "Traceback" not in str(job) and 'File "' not in str(job)
    cut = client.get(f"/v1/cuts/{job['subject_id']}", headers=AUTH).json()
    assert cut["status"] == "failed" and cut["error"] == job["error"]
    # Thumbnails of a cut without shots are refused up front.
    refused = client.post(f"/v1/cuts/{cut['id']}/thumbnails", json={}, headers=AUTH)
    assert_problem(refused, 409, "cut_not_ingested")
    refused = client.post(f"/v1/cuts/{cut['id']}/final-video", json={"audio": False}, headers=AUTH)
    assert_problem(refused, 409, "cut_not_ingested")
    failed = client.get("/v1/jobs", params={"status": "failed"}, headers=AUTH).json()["items"]
    assert [j["id"] for j in failed] == [job["id"]]
    # A finished job cannot be cancelled.
    assert_problem(client.post(f"/v1/jobs/{job['id']}/cancel", headers=AUTH), 409, "job_finished")


def test_diff_reports_editorial_changes_between_ingested_versions(
    client: TestClient, plate: Path, tmp_path: Path
) -> None:
    v1 = write_otio(
        tmp_path / "v1" / "reel1.otio",
        [
            clip("sh010", plate, 0, 12),
            clip("sh020", plate, 20, 24),
            clip("sh030", plate, 60, 30),
            clip("sh050", plate, 90, 6),
        ],
    )
    # sh030 moves to the front and slips 2 frames; sh010 grows past its handles; sh020 comes back
    # renamed and trimmed at both ends; sh050 is dropped; sh040 is new.
    v2_clips = [
        clip("sh030", plate, 62, 30),
        clip("sh010", plate, 0, 30),
        clip("sh025", plate, 22, 20),
        clip("sh040", plate, 5, 5),
    ]
    first = upload(client, v1).json()["cut"]
    second = upload(client, write_otio(tmp_path / "v2" / "reel1.otio", v2_clips)).json()["cut"]
    assert second["version"] == 2
    path = f"/v1/cuts/{second['id']}/diff"
    diff = client.get(path, params={"against": first["id"]}, headers=AUTH).json()
    assert diff["cut_id"] == second["id"] and diff["against"] == first["id"] and diff["handles"] == 8
    assert diff["summary"] == {
        "new": 1,
        "reinstated": 0,
        "omitted": 1,
        "rescan": 1,
        "cut_change": 2,
        "media_changed": 0,
        "moved": 0,
        "no_change": 0,
    }
    entries = diff["entries"]
    # Change-list order: this cut's shots in edit order, an omitted shot after its predecessor.
    assert [(e["name"], e["status"]) for e in entries] == [
        ("sh030", "cut_change"),
        ("sh050", "omitted"),
        ("sh010", "rescan"),
        ("sh025", "cut_change"),
        ("sh040", "new"),
    ]
    by_name = {e["name"]: e for e in entries}
    moved = by_name["sh030"]
    assert moved["categories"] == ["cut_change", "moved"]
    assert moved["changes"] == [
        "head trimmed 2 frames",
        "tail extended 2 frames",
        "moved from position 3 to 1 in the edit order",
    ]
    assert (moved["index"], moved["against_index"]) == (0, 2)
    assert moved["old_source"]["start_tc"] == "01:00:02:12" and moved["new_source"]["start_tc"] == "01:00:02:14"
    assert moved["new_source"]["duration"] == 30 and moved["new_source"]["rate"] == "24"
    assert by_name["sh010"]["changes"] == ["tail extended 18 frames, 10 frames past the 8-frame handles: rescan needed"]
    renamed = by_name["sh025"]
    assert renamed["old_name"] == "sh020" and renamed["changes"][0].startswith("renamed from 'sh020'")
    assert renamed["changes"][1:] == ["head trimmed 2 frames", "tail trimmed 2 frames"]
    omitted = by_name["sh050"]
    assert omitted["shot_id"] is None and omitted["index"] is None and omitted["new_source"] is None
    assert by_name["sh040"]["against_shot_id"] is None and by_name["sh040"]["old_source"] is None
    # Ids point at the shots of each cut.
    shots = {s["index"]: s["id"] for s in client.get(f"/v1/cuts/{second['id']}/shots", headers=AUTH).json()["items"]}
    old_shots = {s["index"]: s["id"] for s in client.get(f"/v1/cuts/{first['id']}/shots", headers=AUTH).json()["items"]}
    assert all(e["shot_id"] == shots[e["index"]] for e in entries if e["index"] is not None)
    assert all(e["against_shot_id"] == old_shots[e["against_index"]] for e in entries if e["against_index"] is not None)

    # Wider handles: the extension is no longer a rescan.
    wide = client.get(path, params={"against": first["id"], "handles": 24}, headers=AUTH).json()
    assert {e["name"]: e["status"] for e in wide["entries"]}["sh010"] == "cut_change"

    # Version 3 brings sh050 back: reinstated, as version 1 (before version 2) had it.
    third = upload(client, write_otio(tmp_path / "v3" / "reel1.otio", [*v2_clips, clip("sh050", plate, 90, 6)]))
    third_cut = third.json()["cut"]
    again = client.get(f"/v1/cuts/{third_cut['id']}/diff", params={"against": second["id"]}, headers=AUTH).json()
    assert [(e["name"], e["status"]) for e in again["entries"]] == [
        ("sh030", "no_change"),
        ("sh010", "no_change"),
        ("sh025", "no_change"),
        ("sh040", "no_change"),
        ("sh050", "reinstated"),
    ]

    missing = client.get(path, headers=AUTH)
    assert assert_problem(missing, 422, "validation_error")["errors"][0]["field"] == "against"
    negative = client.get(path, params={"against": first["id"], "handles": -1}, headers=AUTH)
    assert assert_problem(negative, 422, "validation_error")["errors"][0]["field"] == "handles"
    assert_problem(client.get(path, params={"against": 999999}, headers=AUTH), 404, "not_found")


def test_diff_statuses_are_the_editorial_modules() -> None:
    from typing import get_args

    from api.schemas import DiffStatus, DiffSummary
    from media_pipeline.editorial.cut_diff import PRECEDENCE

    assert get_args(DiffStatus) == PRECEDENCE
    assert tuple(DiffSummary.model_fields) == PRECEDENCE


def test_final_video_renders_the_cut_and_serves_it_in_ranges(
    api_settings: Settings, instance: dg.DagsterInstance, plate: Path, tmp_path: Path
) -> None:
    # Runs execute in their own process, as under the daemon: the job is followed while it runs.
    gateway = InProcessGateway(instance, background=True)
    with TestClient(create_app(api_settings, gateway=gateway)) as client:
        created = upload(client, three_shot_cut(tmp_path, plate))
        assert created.status_code == 202, created.text
        cut = created.json()["cut"]
        wait_for_job(client, created.json()["job"]["id"], lambda job: job["status"] == "succeeded")

        path = f"/v1/cuts/{cut['id']}/final-video"
        body = {"resolution": "160x90", "crf": 30, "preset": "ultrafast", "audio": False}
        headers = {**AUTH, "Idempotency-Key": "final-1"}
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == 202, response.text
        job = response.json()
        assert response.headers["location"] == f"/v1/jobs/{job['id']}"
        assert job["kind"] == "final_video" and job["subject_id"] == str(cut["id"]) and job["run_id"]
        # The params are the request as sent, which is also the step's config.
        params = {"resolution": "160x90", "fps": "", "crf": 30, "preset": "ultrafast", "audio": False}
        assert job["params"] == params
        again = client.post(path, json=body, headers=headers)
        assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true"
        assert again.json()["id"] == job["id"]
        conflict = client.post(path, json={**body, "crf": 31}, headers=headers)
        assert_problem(conflict, 409, "idempotency_conflict")

        progress: list[float] = []
        job = wait_for_job(
            client, job["id"], lambda seen: progress.append(seen["progress"]) or seen["status"] == "succeeded"
        )
        assert progress == sorted(progress) and progress[-1] == 1.0, progress
        assert job["stage"] == "done" and job["error"] is None
        url = f"/v1/artifacts/cuts/{cut['partition_key']}/final_video.mp4"
        # The library's output fields (media_id, step, cached, details) are empty for a final video.
        none = {"shot_id": None, "media_id": None, "step": None, "cached": None, "details": None}
        assert job["outputs"] == [{"kind": "final_video", "url": url, **none}]

        # Players fetch video in byte ranges: two of them make up the whole file.
        head = client.get(url, headers={**AUTH, "Range": "bytes=0-1023"})
        assert head.status_code == 206 and head.headers["content-type"] == "video/mp4"
        size = int(head.headers["content-range"].rsplit("/", 1)[1])
        assert head.headers["content-range"] == f"bytes 0-1023/{size}" and len(head.content) == 1024
        rest = client.get(url, headers={**AUTH, "Range": "bytes=1024-"})
        assert rest.status_code == 206 and rest.headers["content-range"] == f"bytes 1024-{size - 1}/{size}"
        video = tmp_path / "downloaded.mp4"
        video.write_bytes(head.content + rest.content)
        info = probe(video)
        assert (info.width, info.height, info.rate, info.has_audio) == (160, 90, 24, False)
        assert info.frame_count == 12 + 24 + 30
    gateway.join()


def test_final_video_options_are_checked_before_anything_runs(client: TestClient, plate: Path, tmp_path: Path) -> None:
    cut = upload(client, three_shot_cut(tmp_path, plate)).json()["cut"]
    path = f"/v1/cuts/{cut['id']}/final-video"
    for body, field, words in [
        ({"crf": 99}, "crf", "between 0 and 51"),
        ({"resolution": "1921x1080"}, "resolution", "must be even"),
        ({"resolution": "8192x4320"}, "resolution", "between 16x16 and 7680x4320"),
        ({"resolution": "hd"}, "resolution", "WIDTHxHEIGHT"),
        ({"preset": "turbo"}, "preset", "ultrafast"),
    ]:
        problem = assert_problem(client.post(path, json=body, headers=AUTH), 422, "validation_error")
        assert [error["field"] for error in problem["errors"]] == [field]
        assert words in problem["errors"][0]["message"], problem
        assert "Value error" not in problem["detail"], problem  # the validator's sentence, as written
    assert_problem(client.post("/v1/cuts/999999/final-video", json={}, headers=AUTH), 404, "not_found")
    assert client.get("/v1/jobs", params={"kind": "final_video"}, headers=AUTH).json()["items"] == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_cancel_a_running_job(api_settings, instance, plate: Path, tmp_path: Path) -> None:
    """A run executing in its own process is cancelled the way Dagster's run launcher does it."""
    gateway = InProcessGateway(instance, background=True)
    many = [clip(f"sh{n:03d}", plate, n % 60, 24) for n in range(40)]
    timeline = write_otio(tmp_path / "long.otio", many)
    with TestClient(create_app(api_settings, gateway=gateway)) as client:
        response = upload(client, timeline)
        assert response.status_code == 202, response.text
        job_id = response.json()["job"]["id"]
        wait_for_job(client, job_id, lambda job: job["status"] == "running")
        cancelled = client.post(f"/v1/jobs/{job_id}/cancel", headers=AUTH)
        assert cancelled.status_code == 202
        assert cancelled.json()["status"] in ("running", "cancelled")
        job = wait_for_job(client, job_id, lambda job: job["status"] == "cancelled", timeout=300)
        assert job["error"] is None and job["progress"] < 1
        # Cancelled through Dagster's own path: a termination request, then the run's canceled event.
        messages = [line["msg"] for line in job["logs"]]
        assert "Sending run termination request." in messages, messages
        assert messages[-1] == 'Execution of run for "ingest_cut" canceled.', messages
        # Cancelling again is a no-op.
        assert client.post(f"/v1/jobs/{job_id}/cancel", headers=AUTH).json()["status"] == "cancelled"
    gateway.join()
