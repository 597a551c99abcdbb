"""The extraction API over a real HTTP stack (TestClient), real Dagster runs (InProcessGateway) and
real databases: /v1/extractions and the original /process + /status/{jobId}."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import pytest
from PIL import Image

from media_pipeline.samples import make_indexed_movie, read_index
from media_pipeline_tests.test_api_support import *  # noqa: F403  (fixtures)
from media_pipeline_tests.test_api_support import PROBLEM, TOKEN

KEY = {"X-API-Key": TOKEN}


@pytest.fixture
def media(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api_settings) -> Path:
    folder = tmp_path / "extraction_media"
    folder.mkdir()
    monkeypatch.setenv("MEDIA_PIPELINE_MEDIA_ROOTS", str(folder))
    make_indexed_movie(folder / "a.mp4", frames=60, rate=Fraction(25))
    (folder / "broken.mp4").write_bytes((folder / "a.mp4").read_bytes()[:1500])
    return folder


def test_post_and_get_an_extraction(client, media):
    body = {
        "items": [
            {"source": (media / "a.mp4").as_uri()},
            {"source": (media / "broken.mp4").as_uri()},
            {"source": (media / "a.mp4").as_uri(), "frames": {"mode": "timestamps", "timestamps": ["00:00:01:05"]}},
            {"source": "http://127.0.0.1:9/v.mp4"},
        ],
        "frames": {"mode": "frames", "frames": [3, 17]},
        "format": "webp",
    }
    answer = client.post("/v1/extractions", json=body, headers={**KEY, "Idempotency-Key": "batch-1"})
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    extraction, job = accepted["extraction"], accepted["job"]
    assert answer.headers["Location"] == f"/v1/extractions/{extraction['id']}"
    assert job["kind"] == "frame_extraction" and job["url"] == f"/v1/jobs/{job['id']}"

    got = client.get(f"/v1/extractions/{extraction['id']}", headers=KEY)
    assert got.status_code == 200
    view = got.json()
    assert view["status"] == "partial" and view["progress"] == 1.0 and view["percent"] == 100
    assert view["counts"] == {"items": 4, "succeeded": 2, "failed": 2, "frames": 3}
    items = view["items"]
    assert [i["status"] for i in items] == ["succeeded", "failed", "succeeded", "failed"]
    assert "broken.mp4 is not a readable video file" in items[1]["error"]
    assert "MEDIA_PIPELINE_FETCH_ALLOW_PRIVATE" in items[3]["error"]
    assert [f["index"] for f in items[0]["frames"]] == [3, 17]
    assert [f["index"] for f in items[2]["frames"]] == [30]
    for frame in items[0]["frames"] + items[2]["frames"]:
        assert set(frame) >= {"index", "pts", "time_base", "seconds", "seconds_exact", "timecode", "crop", "url"}
        assert Fraction(frame["seconds_exact"]) == Fraction(frame["index"], 25)
        image_answer = client.get(frame["url"], headers=KEY)
        assert image_answer.status_code == 200
        with Image.open(io.BytesIO(image_answer.content)) as image:
            assert image.format == "WEBP" and read_index(image) == frame["index"]
    assert items[0]["sha256"] and items[0]["provenance"]["kind"] == "file"
    assert view["manifest_url"]
    assert client.get(view["manifest_url"], headers=KEY).json()["counts"]["frames"] == 3
    assert {"level", "msg", "item", "ts"} <= set(view["logs"][0])
    # No server path reaches the client, except each item's `source`, which is what the client sent.
    assert str(media) not in str([{k: v for k, v in item.items() if k != "source"} for item in items] + view["logs"])

    again = client.post("/v1/extractions", json=body, headers={**KEY, "Idempotency-Key": "batch-1"})
    assert again.status_code == 202 and again.json()["extraction"]["id"] == extraction["id"]
    job_answer = client.get(job["url"], headers=KEY)
    assert job_answer.status_code == 200 and job_answer.json()["kind"] == "frame_extraction"


def test_the_item_limit_and_bad_requests_are_422(client, media, monkeypatch):
    monkeypatch.setenv("MEDIA_PIPELINE_MAX_VIDEOS_PER_REQUEST", "2")
    items = [{"source": (media / "a.mp4").as_uri()}] * 3
    answer = client.post("/v1/extractions", json={"items": items}, headers=KEY)
    assert answer.status_code == 422 and answer.headers["content-type"].startswith(PROBLEM)
    problem = answer.json()
    assert problem["errors"][0]["field"] == "items"
    assert "MEDIA_PIPELINE_MAX_VIDEOS_PER_REQUEST" in problem["detail"]
    assert "Value error" not in problem["detail"]  # the validator's own sentence, not pydantic's label
    bad_mode = client.post(
        "/v1/extractions", json={"items": items[:1], "frames": {"mode": "every", "n": 2}}, headers=KEY
    )
    assert bad_mode.status_code == 422
    assert client.get("/v1/extractions/ex_0123456789abcdef", headers=KEY).status_code == 404
    assert client.get("/v1/extractions/..%2Fetc", headers=KEY).status_code in (404, 422)


def test_the_original_api_shapes(client, media):
    body = {"items": [{"platform": "file", "code": str(media / "a.mp4")}, {"platform": "youtube", "code": "XYZ789"}]}
    assert client.post("/process", json=body).status_code == 401
    answer = client.post("/process", json=body, headers=KEY)
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"jobId"}
    job_id = answer.json()["jobId"]

    assert client.get(f"/status/{job_id}").status_code == 401
    status = client.get(f"/status/{job_id}", headers=KEY)
    assert status.status_code == 200
    shape = status.json()
    assert set(shape) == {"jobId", "status", "progress", "createdAt", "updatedAt", "items", "logs"}
    assert shape["jobId"] == job_id and shape["status"] == "completed" and shape["progress"] == 100
    assert [(i["platform"], i["code"], i["status"]) for i in shape["items"]] == [
        ("file", str(media / "a.mp4"), "succeeded"),
        ("youtube", "XYZ789", "failed"),
    ]
    assert [f["index"] for f in shape["items"][0]["frames"]] == [0, 25, 50]  # every second, by default
    assert "media_pipeline[platforms]" in shape["items"][1]["error"]
    assert shape["logs"] and all(set(log) == {"ts", "level", "msg"} for log in shape["logs"])

    bad = client.post("/process", json={"items": [{"platform": "YouTube!", "code": "x"}]}, headers=KEY)
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(PROBLEM)
    assert client.get("/status/00000000-0000-0000-0000-000000000000", headers=KEY).status_code == 404


def test_items_named_by_media_id_read_the_library(client, media):
    """A `media_id` item reads the library's stored bytes; an image or an unknown id fails with a
    sentence, and the others in the batch go on."""
    video = (media / "a.mp4").read_bytes()
    uploaded = client.post("/v1/media?filename=clip.mp4", content=video, headers=KEY)
    assert uploaded.status_code == 201, uploaded.text
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), "red").save(buffer, "PNG")
    picture = client.post("/v1/media?filename=red.png", content=buffer.getvalue(), headers=KEY)
    assert picture.status_code == 201, picture.text
    video_id, image_id = uploaded.json()["id"], picture.json()["id"]
    body = {
        "items": [{"media_id": video_id}, {"media_id": image_id}, {"media_id": 987654}],
        "frames": {"mode": "frames", "frames": [3, 17]},
    }
    answer = client.post("/v1/extractions", json=body, headers=KEY)
    assert answer.status_code == 202, answer.text
    view = client.get(f"/v1/extractions/{answer.json()['extraction']['id']}", headers=KEY).json()
    items = view["items"]
    assert [i["status"] for i in items] == ["succeeded", "failed", "failed"], items
    assert items[0]["provenance"] == {"kind": "media", "media_id": video_id}
    assert items[0]["sha256"] == uploaded.json()["sha256"]
    assert [f["index"] for f in items[0]["frames"]] == [3, 17]
    for frame in items[0]["frames"]:
        with Image.open(io.BytesIO(client.get(frame["url"], headers=KEY).content)) as image:
            assert read_index(image) == frame["index"]
    assert items[1]["error"] == f"media {image_id} is an image; frames are extracted from videos"
    assert "there is no media with id 987654 in the library" in items[2]["error"]
