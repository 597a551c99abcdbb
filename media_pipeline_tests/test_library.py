"""The media library over a real HTTP stack (TestClient), real databases (SQLite and Postgres),
real Pillow and ffmpeg, and real Dagster runs (InProcessGateway): upload with dedupe, find,
download with Range, delete, image edits checked on pixels, the edit cache, video trims on media
whose frames show their index, concat, workflows, best frames."""

from __future__ import annotations

import contextlib
import io
import shutil
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pytest
from PIL import Image, ImageEnhance

from api.dagster_gateway import InProcessGateway
from media_pipeline.samples import make_indexed_movie, read_index
from media_pipeline_tests.conftest import decode_frames
from media_pipeline_tests.s3_server import *  # noqa: F403  (fixtures)
from media_pipeline_tests.test_api_support import *  # noqa: F403  (fixtures)
from media_pipeline_tests.test_api_support import AUTH, assert_problem, wait_for_job


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def gradient(width: int = 64, height: int = 48) -> Image.Image:
    """A picture where every pixel differs from its neighbours, so a wrong slice shows."""
    y, x = np.mgrid[0:height, 0:width]
    array = np.stack([(x * 4) % 256, (y * 5) % 256, (x * 7 + y * 3) % 256], axis=-1).astype(np.uint8)
    return Image.fromarray(array, "RGB")


def upload(client, data: bytes, name: str = "photo.png"):
    return client.post("/v1/media", files={"file": (name, data, "application/octet-stream")}, headers=AUTH)


def stored_objects(settings) -> list[Path]:
    return [p for p in (settings.artifact_root / "library" / "sha256").rglob("*") if p.is_file()]


@pytest.fixture
def movie(tmp_path: Path) -> Path:
    return make_indexed_movie(tmp_path / "indexed.mp4", frames=48, rate=Fraction(24), size=(160, 90), audio=True)


def test_same_bytes_by_two_names_are_one_object_and_one_item(client, api_settings):
    from media_pipeline.platform.metrics import UPLOADS

    before = {result: UPLOADS.labels(result)._value.get() for result in ("stored", "duplicate")}
    data = png_bytes(gradient())
    first = upload(client, data, "a.png")
    assert first.status_code == 201, first.text
    item = first.json()
    assert item["duplicate"] is False and item["type"] == "image" and (item["width"], item["height"]) == (64, 48)
    second = client.post("/v1/media?filename=other-name.jpg", content=data, headers=AUTH)  # raw body
    assert second.status_code == 200, second.text
    assert second.json()["duplicate"] is True and second.json()["id"] == item["id"]
    assert len(stored_objects(api_settings)) == 1
    after = {result: UPLOADS.labels(result)._value.get() for result in ("stored", "duplicate")}
    assert (after["stored"] - before["stored"], after["duplicate"] - before["duplicate"]) == (1, 1)
    assert client.get("/v1/media", headers=AUTH).json()["items"] == [
        client.get(f"/v1/media/{item['id']}", headers=AUTH).json()
    ]
    checked = client.post("/v1/media/check", json={"sha256": [item["sha256"], "0" * 64]}, headers=AUTH).json()
    assert checked == {"existing": {item["sha256"]: item["id"]}, "missing": ["0" * 64]}
    # Nothing half-received is left in the incoming area.
    assert not [p for p in (api_settings.artifact_root / "library" / "incoming").iterdir()]


def test_type_comes_from_the_content_not_the_name(client, movie):
    video = upload(client, movie.read_bytes(), "looks-like.png")
    assert video.status_code == 201, video.text
    body = video.json()
    assert body["type"] == "video" and body["codec"] == "h264" and body["frame_count"] == 48
    assert body["rate"] == "24" and body["duration"] == "2" and body["has_audio"] is True
    image = upload(client, png_bytes(gradient()), "clip.mp4")
    assert image.json()["type"] == "image" and image.json()["content_type"] == "image/png"
    problem = assert_problem(upload(client, b"just some text, not media\n" * 10, "notes.mp4"), 422, "unsupported_media")
    assert "images" in problem["detail"]


def test_limits_answer_with_a_sentence_and_keep_nothing(client, api_settings, monkeypatch, tmp_path, movie):
    from api.main import create_app
    from media_pipeline.settings import load_settings

    monkeypatch.setenv("MEDIA_PIPELINE_LIBRARY_MAX_BYTES", "5000")
    monkeypatch.setenv("MEDIA_PIPELINE_LIBRARY_MAX_PIXELS", "1000")
    monkeypatch.setenv("MEDIA_PIPELINE_LIBRARY_MAX_DURATION", "1")
    from fastapi.testclient import TestClient

    with TestClient(create_app(load_settings(), gateway=client.app.state.gateway)) as small:
        big = small.post("/v1/media?filename=big.bin", content=b"\0" * 6000, headers=AUTH)
        assert "MEDIA_PIPELINE_LIBRARY_MAX_BYTES" in assert_problem(big, 413, "payload_too_large")["detail"]
        chunked = small.post("/v1/media?filename=big.bin", content=iter([b"\0" * 3000] * 3), headers=AUTH)
        assert_problem(chunked, 413, "payload_too_large")
        pixels = upload(small, png_bytes(gradient(40, 30)), "p.png")
        assert "MEDIA_PIPELINE_LIBRARY_MAX_PIXELS" in assert_problem(pixels, 422, "unsupported_media")["detail"]
    monkeypatch.setenv("MEDIA_PIPELINE_LIBRARY_MAX_BYTES", str(10**8))
    monkeypatch.setenv("MEDIA_PIPELINE_LIBRARY_MAX_PIXELS", "10000000")
    with TestClient(create_app(load_settings(), gateway=client.app.state.gateway)) as short:
        long = upload(short, movie.read_bytes(), "long.mp4")
        assert "MEDIA_PIPELINE_LIBRARY_MAX_DURATION" in assert_problem(long, 422, "unsupported_media")["detail"]
    assert stored_objects(api_settings) == []


def test_uploads_of_many_blocks_are_stored_byte_for_byte(client, api_settings, monkeypatch):
    import hashlib

    from fastapi.testclient import TestClient

    from api.main import create_app
    from media_pipeline.library.store import Incoming
    from media_pipeline.settings import load_settings

    # Noise does not compress: a PNG of several blocks, each hashed and written on a worker thread.
    noise = np.random.default_rng(3).integers(0, 256, (900, 1000, 3), dtype=np.uint8)
    data = png_bytes(Image.fromarray(noise))
    assert len(data) > 2 * Incoming.BLOCK + 1
    pieces = [data[start : start + 70_000] for start in range(0, len(data), 70_000)]
    raw = client.post("/v1/media?filename=noise.png", content=data, headers=AUTH)
    assert raw.status_code == 201, raw.text
    assert raw.json()["sha256"] == hashlib.sha256(data).hexdigest() and raw.json()["size"] == len(data)
    assert client.get(raw.json()["content_url"], headers=AUTH).content == data
    assert client.delete(raw.json()["url"], headers=AUTH).status_code == 204
    for send in (
        lambda: upload(client, data, "noise.png"),  # multipart
        lambda: client.post("/v1/media?filename=noise.png", content=iter(pieces), headers=AUTH),  # chunked
    ):
        answer = send()  # one at a time: each is new content once the one before is deleted
        assert answer.status_code == 201, answer.text
        assert answer.json()["sha256"] == hashlib.sha256(data).hexdigest()
        assert client.get(answer.json()["content_url"], headers=AUTH).content == data
        assert client.delete(answer.json()["url"], headers=AUTH).status_code == 204
    # Over the limit after blocks were already in flight: 413, and nothing is kept anywhere.
    monkeypatch.setenv("MEDIA_PIPELINE_LIBRARY_MAX_BYTES", str(2 * Incoming.BLOCK + 100))
    with TestClient(create_app(load_settings(), gateway=client.app.state.gateway)) as small:
        for answer in (
            small.post("/v1/media?filename=noise.png", content=iter(pieces), headers=AUTH),
            upload(small, data, "noise.png"),
        ):
            assert "MEDIA_PIPELINE_LIBRARY_MAX_BYTES" in assert_problem(answer, 413, "payload_too_large")["detail"]
    assert stored_objects(api_settings) == []
    assert not list((api_settings.artifact_root / "library" / "incoming").iterdir())


def test_list_filters_and_cursor_pages(client):
    ids = [upload(client, png_bytes(gradient(10 + n, 10)), f"{n}.png").json()["id"] for n in range(5)]
    seen, cursor = [], None
    while True:
        page = client.get(
            "/v1/media", params={"limit": 2, **({"cursor": cursor} if cursor else {})}, headers=AUTH
        ).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)
    assert client.get("/v1/media?type=video", headers=AUTH).json()["items"] == []
    assert (
        len(client.get("/v1/media?type=image&uploaded_after=2000-01-01T00:00:00Z", headers=AUTH).json()["items"]) == 5
    )
    assert client.get("/v1/media?uploaded_before=2000-01-01T00:00:00Z", headers=AUTH).json()["items"] == []
    one = client.get("/v1/media/" + str(ids[0]), headers=AUTH).json()
    assert [i["id"] for i in client.get(f"/v1/media?sha256={one['sha256']}", headers=AUTH).json()["items"]] == [ids[0]]
    original = client.get("/bucket/upload?type=image&uploadedAt=" + one["created_at"][:10], headers=AUTH).json()
    assert len(original["items"]) == 5
    assert client.get("/bucket/upload?type=image&uploadedAt=2001-01-01", headers=AUTH).json()["items"] == []
    raw = client.post("/bucket/upload", files={"file": ("x.png", png_bytes(gradient(3, 3)))}, headers=AUTH)
    assert raw.status_code == 201 and raw.json()["type"] == "image"
    assert client.post("/bucket/upload", files={"file": ("x.png", b"1")}).status_code == 401


def test_content_with_range_and_delete_rules(client, api_settings):
    data = png_bytes(gradient())
    item = upload(client, data).json()
    whole = client.get(item["content_url"], headers=AUTH)
    assert whole.status_code == 200 and whole.content == data and whole.headers["content-type"] == "image/png"
    part = client.get(item["content_url"], headers={**AUTH, "Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    edited = client.post(f"/v1/media/{item['id']}/edits?op=resize&width=32", headers=AUTH).json()["media"]
    problem = assert_problem(client.delete(f"/v1/media/{item['id']}", headers=AUTH), 409, "media_in_use")
    assert "force=true" in problem["detail"]
    assert client.delete(f"/v1/media/{item['id']}?force=true", headers=AUTH).status_code == 204
    assert_problem(client.get(f"/v1/media/{item['id']}", headers=AUTH), 404, "not_found")
    kept = client.get(f"/v1/media/{edited['id']}", headers=AUTH).json()
    assert kept["derived_from"]["source_id"] is None  # the lineage outlives its source, without the link
    assert len(stored_objects(api_settings)) == 1


def test_every_input_of_a_concat_holds_its_delete_and_force_leaves_null_in_the_lineage(client, tmp_path):
    a = make_indexed_movie(tmp_path / "a.mp4", frames=6, rate=Fraction(24), size=(160, 90))
    b = make_indexed_movie(tmp_path / "b.mp4", frames=4, rate=Fraction(24), size=(160, 90), first_index=50)
    first, second = (upload(client, path.read_bytes(), path.name).json()["id"] for path in (a, b))
    unused = upload(client, png_bytes(gradient(20, 10)), "unused.png").json()["id"]
    answer = client.post("/v1/media/concat", json={"items": [first, second]}, headers=AUTH)
    job = wait_for_job(client, answer.json()["id"], lambda j: j["status"] in ("succeeded", "failed"))
    assert job["status"] == "succeeded", job
    made = job["outputs"][0]["media_id"]
    for media_id in (second, first):  # the second input, not only the derivative's source_id
        problem = assert_problem(client.delete(f"/v1/media/{media_id}", headers=AUTH), 409, "media_in_use")
        assert problem["derivatives"] == [made] and problem["jobs"] == []
        assert f"media {made} was made from it" in problem["detail"] and "force=true" in problem["detail"]
    assert client.get(f"/v1/media/{second}", headers=AUTH).status_code == 200
    assert client.delete(f"/v1/media/{unused}", headers=AUTH).status_code == 204  # nothing reads it
    assert client.delete(f"/v1/media/{second}?force=true", headers=AUTH).status_code == 204
    lineage = client.get(f"/v1/media/{made}", headers=AUTH).json()["derived_from"]
    assert (lineage["source_id"], lineage["inputs"]) == (first, [first, None])
    assert client.delete(f"/v1/media/{first}?force=true", headers=AUTH).status_code == 204
    lineage = client.get(f"/v1/media/{made}", headers=AUTH).json()["derived_from"]
    assert (lineage["source_id"], lineage["inputs"]) == (None, [None, None])
    # What it was made from is still told by the recipe (the inputs' sha-256s, in order).
    assert len(lineage["recipe"]["concat"]) == 2


class QueueingGateway(InProcessGateway):
    """Leaves every library run waiting (NOT_STARTED: its job `queued`), as behind a busy run queue."""

    def submit(self, job_name, partition_key, run_config, tags):
        from api.dagster_gateway import PARTITION_TAG
        from media_pipeline.definitions import defs

        run = self.instance.create_run_for_job(
            defs.resolve_job_def(job_name),
            run_config=dict(run_config),
            tags={**tags, PARTITION_TAG: partition_key or ""},
        )
        return run.run_id


@contextlib.contextmanager
def queued_concat(api_settings, instance, tmp_path: Path) -> Iterator[tuple[Any, int, int, dict]]:
    """An API whose runs wait, two uploaded videos and a queued concat of them: (client, first,
    second, the concat's job)."""
    from fastapi.testclient import TestClient

    from api.main import create_app

    a = make_indexed_movie(tmp_path / "a.mp4", frames=4, rate=Fraction(24), size=(160, 90))
    b = make_indexed_movie(tmp_path / "b.mp4", frames=4, rate=Fraction(24), size=(160, 90), first_index=50)
    with TestClient(create_app(api_settings, gateway=QueueingGateway(instance))) as client:
        first, second = (upload(client, path.read_bytes(), path.name).json()["id"] for path in (a, b))
        concat = client.post("/v1/media/concat", json={"items": [first, second]}, headers=AUTH).json()
        assert concat["status"] == "queued", concat
        yield client, first, second, concat


def test_an_unfinished_job_holds_every_item_it_will_read(api_settings, instance, tmp_path):
    with queued_concat(api_settings, instance, tmp_path) as (client, first, second, concat):
        picture = upload(client, png_bytes(gradient())).json()["id"]
        workflow = client.post("/v1/workflows", json=WORKFLOW, headers=AUTH).json()
        run = client.post(f"{workflow['url']}/runs", json={"media_id": picture}, headers=AUTH).json()["job"]
        assert run["subject_type"] == "workflow" and run["status"] == "queued"
        for media_id, job_id in ((second, concat["id"]), (first, concat["id"]), (picture, run["id"])):
            problem = assert_problem(client.delete(f"/v1/media/{media_id}", headers=AUTH), 409, "media_in_use")
            assert problem["jobs"] == [job_id] and problem["derivatives"] == []
            assert f"unfinished job(s) {job_id} use it" in problem["detail"]
        assert client.delete(f"/v1/media/{second}?force=true", headers=AUTH).status_code == 204
        assert_problem(client.get(f"/v1/media/{second}", headers=AUTH), 404, "not_found")


def edit(client, media_id: int, *ops):
    return client.post(f"/v1/media/{media_id}/edits", json={"ops": list(ops)}, headers=AUTH)


def content_image(client, media: dict) -> Image.Image:
    return Image.open(io.BytesIO(client.get(media["content_url"], headers=AUTH).content))


def test_image_ops_on_pixels(client):
    source = gradient(64, 48)
    media_id = upload(client, png_bytes(source)).json()["id"]
    array = np.asarray(source)

    crop = edit(client, media_id, {"op": "crop", "x": 5, "y": 7, "width": 20, "height": 11})
    assert crop.status_code == 200, crop.text
    assert np.array_equal(np.asarray(content_image(client, crop.json()["media"]).convert("RGB")), array[7:18, 5:25])

    sizes = {
        (("width", 32),): (32, 24),
        (("height", 10),): (13, 10),
        (("width", 30), ("height", 30), ("fit", "contain")): (30, 22),
        (("width", 30), ("height", 30), ("fit", "cover")): (30, 30),
        (("width", 30), ("height", 30), ("fit", "fill")): (30, 30),
    }
    for options, size in sizes.items():
        answer = edit(client, media_id, {"op": "resize", **dict(options)}).json()["media"]
        assert (answer["width"], answer["height"]) == size
        assert content_image(client, answer).size == size

    faded = content_image(client, edit(client, media_id, {"op": "opacity", "value": 0.3}).json()["media"])
    assert faded.mode == "RGBA"
    assert set(np.asarray(faded)[..., 3].ravel()) == {int(255 * 0.3 + 0.5)}  # half up, as documented
    assert np.array_equal(np.asarray(faded)[..., :3], array)

    color = {"op": "color", "brightness": 1.2, "contrast": 0.8, "saturation": 0.5}
    got = content_image(client, edit(client, media_id, color).json()["media"]).convert("RGB")
    reference = ImageEnhance.Color(
        ImageEnhance.Contrast(ImageEnhance.Brightness(source).enhance(1.2)).enhance(0.8)
    ).enhance(0.5)
    assert np.array_equal(np.asarray(got), np.asarray(reference))
    grey = content_image(client, edit(client, media_id, {"op": "color", "grayscale": True}).json()["media"]).convert(
        "RGB"
    )
    assert np.array_equal(np.asarray(grey), np.asarray(source.convert("L").convert("RGB")))

    texted = content_image(
        client,
        edit(client, media_id, {"op": "text", "text": "Hi", "x": 2, "y": 2, "size": 20, "color": "#ff0000"}).json()[
            "media"
        ],
    ).convert("RGB")
    changed = np.any(np.asarray(texted) != array, axis=-1)
    assert changed.any() and not changed[30:, :].any()  # drawn where asked, nowhere else
    assert np.asarray(texted)[changed][:, 0].max() == 255

    jpeg = edit(client, media_id, {"op": "format", "format": "jpeg", "quality": 90}).json()["media"]
    assert jpeg["content_type"] == "image/jpeg" and content_image(client, jpeg).format == "JPEG"
    webp = client.post(f"/v1/media/{media_id}/edits?op=format&format=webp", headers=AUTH).json()["media"]
    assert content_image(client, webp).format == "WEBP"


def test_ops_are_validated_naming_the_field(client, movie):
    image_id = upload(client, png_bytes(gradient())).json()["id"]
    outside = assert_problem(
        edit(client, image_id, {"op": "crop", "x": 60, "y": 0, "width": 10, "height": 5}), 422, "validation_error"
    )
    assert outside["errors"][0]["field"] == "ops.0.width"
    trim = assert_problem(
        edit(client, image_id, {"op": "resize", "width": 5}, {"op": "trim", "start_frame": 1}), 422, "validation_error"
    )
    assert trim["errors"][0]["field"] == "ops.1.op" and "does not apply to images" in trim["detail"]
    assert (
        assert_problem(edit(client, image_id, {"op": "opacity", "value": 2}), 422, "validation_error")["errors"][0][
            "field"
        ]
        == "ops.0.value"
    )
    assert (
        assert_problem(edit(client, image_id, {"op": "resize"}), 422, "validation_error")["errors"][0]["field"]
        == "ops.0"
    )
    assert_problem(edit(client, image_id, {"op": "text", "text": "x", "color": "red"}), 422, "validation_error")
    assert_problem(edit(client, image_id, {"op": "format", "format": "mp4"}), 422, "validation_error")
    assert_problem(
        client.post(f"/v1/media/{image_id}/edits?op=resize&width=abc", headers=AUTH), 422, "validation_error"
    )
    video_id = upload(client, movie.read_bytes(), "m.mp4").json()["id"]
    crop = assert_problem(
        edit(client, video_id, {"op": "crop", "x": 0, "y": 0, "width": 5, "height": 5}), 422, "validation_error"
    )
    assert crop["errors"][0]["field"] == "ops.0.op"
    past = assert_problem(edit(client, video_id, {"op": "trim", "start_frame": 100}), 422, "validation_error")
    assert "48 frames" in past["detail"]


def test_the_same_edit_renders_once_and_is_recorded_in_dagster(client, gateway, api_settings):
    media_id = upload(client, png_bytes(gradient())).json()["id"]
    first = edit(client, media_id, {"op": "resize", "width": 16}).json()
    again = edit(client, media_id, {"op": "resize", "width": 16, "fit": "contain"}).json()  # the same, spelled out
    by_query = client.post(f"/v1/media/{media_id}/edits?op=resize&width=16", headers=AUTH).json()
    assert first["cached"] is False and again["cached"] is True and by_query["cached"] is True
    assert first["media"]["id"] == again["media"]["id"] == by_query["media"]["id"]
    lineage = first["media"]["derived_from"]
    assert lineage["source_id"] == media_id and lineage["run_id"] is None
    assert lineage["recipe"]["ops"][0] == {"op": "resize", "width": 16, "height": None, "fit": "contain"}
    assert lineage["recipe"]["ops"][1]["format"] == "png"  # the output format is part of the recipe
    events = gateway.instance.fetch_materializations(dg.AssetKey("library_derivatives"), limit=10).records
    assert len(events) == 1  # the cached repeats are not new derivatives
    metadata = events[0].asset_materialization.metadata
    assert metadata["media_id"].value == first["media"]["id"] and metadata["source_id"].value == media_id


def test_the_query_form_of_an_edit_is_in_the_openapi_document(client):
    operation = client.get("/openapi.json").json()["paths"]["/v1/media/{media_id}/edits"]["post"]
    query = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
    assert set(query["op"]["schema"]["enum"]) == {"crop", "resize", "opacity", "color", "text", "format", "trim"}
    assert "every field of that op may be given as a query parameter" in query["op"]["description"]
    assert {"x", "width", "fit", "value", "brightness", "text", "format", "quality", "start_frame", "end"} <= set(query)
    assert all(p["required"] is False for p in query.values())
    assert query["fit"]["schema"]["enum"] == ["contain", "cover", "fill"] and "resize" in query["fit"]["description"]
    assert {p["name"] for p in operation["parameters"] if p["in"] == "path"} == {"media_id"}
    assert operation["requestBody"]["required"] is False
    # Documented, not a second check: the query form still answers as before.
    media_id = upload(client, png_bytes(gradient())).json()["id"]
    made = client.post(f"/v1/media/{media_id}/edits?op=resize&width=16&fit=fill", headers=AUTH)
    assert made.status_code == 200 and (made.json()["media"]["width"], made.json()["media"]["height"]) == (16, 12)
    problem = assert_problem(
        client.post(f"/v1/media/{media_id}/edits?op=resize&width=0", headers=AUTH), 422, "validation_error"
    )
    assert problem["errors"][0]["field"] == "ops.0.width"


def test_large_images_are_edited_by_a_job(client, monkeypatch, api_settings):
    from fastapi.testclient import TestClient

    from api.main import create_app
    from media_pipeline.settings import load_settings

    monkeypatch.setenv("MEDIA_PIPELINE_LIBRARY_INLINE_PIXELS", "100")
    with TestClient(create_app(load_settings(), gateway=client.app.state.gateway)) as small:
        media_id = upload(small, png_bytes(gradient())).json()["id"]
        answer = edit(small, media_id, {"op": "crop", "x": 1, "y": 2, "width": 3, "height": 4})
        assert answer.status_code == 202, answer.text
        job = wait_for_job(small, answer.json()["job"]["id"], lambda j: j["status"] == "succeeded")
    assert job["kind"] == "media_edit" and job["subject_type"] == "media"
    [output] = job["outputs"]
    made = client.get(f"/v1/media/{output['media_id']}", headers=AUTH).json()
    assert (made["width"], made["height"]) == (3, 4) and made["derived_from"]["run_id"] == job["run_id"]


def test_derivatives_of_an_item_are_listed(client):
    source = upload(client, png_bytes(gradient())).json()["id"]
    other = upload(client, png_bytes(gradient(20, 20)), "other.png").json()["id"]
    small = edit(client, source, {"op": "resize", "width": 16}).json()["media"]["id"]
    cropped = edit(client, source, {"op": "crop", "x": 0, "y": 0, "width": 8, "height": 8}).json()["media"]["id"]
    smaller = edit(client, small, {"op": "resize", "width": 8}).json()["media"]["id"]

    def derived(media_id: int) -> list[int]:
        answer = client.get(f"/v1/media?derived_from={media_id}", headers=AUTH)
        assert answer.status_code == 200, answer.text
        return [item["id"] for item in answer.json()["items"]]

    assert derived(source) == [cropped, small]  # made from it directly, newest first
    assert derived(small) == [smaller]
    assert derived(other) == [] and derived(smaller) == []
    assert_problem(client.get("/v1/media?derived_from=0", headers=AUTH), 422, "validation_error")


def frame_indices(path_or_bytes, tmp_path: Path, name: str = "out.bin") -> list[int]:
    path = tmp_path / name
    path.write_bytes(path_or_bytes)
    return [read_index(frame) for frame in decode_frames(path)]


def test_trim_is_frame_exact(client, movie, tmp_path):
    media_id = upload(client, movie.read_bytes(), "m.mp4").json()["id"]
    cases = [
        ({"op": "trim", "start_frame": 7, "end_frame": 19}, list(range(7, 19))),
        ({"op": "trim", "start": "00:00:01:03", "end": "00:00:01:10"}, list(range(27, 34))),
        ({"op": "trim", "start": 0.5, "end": "1.25"}, list(range(12, 30))),
    ]
    for op, expected in cases:
        answer = edit(client, media_id, op, {"op": "format", "format": "mp4", "crf": 18})
        assert answer.status_code == 202, answer.text
        job = wait_for_job(client, answer.json()["job"]["id"], lambda j: j["status"] in ("succeeded", "failed"))
        assert job["status"] == "succeeded", job
        made = client.get(f"/v1/media/{job['outputs'][0]['media_id']}", headers=AUTH).json()
        assert made["frame_count"] == len(expected) and made["type"] == "video"
        content = client.get(made["content_url"], headers=AUTH).content
        assert frame_indices(content, tmp_path) == expected
    webm = edit(client, media_id, {"op": "trim", "start_frame": 40}, {"op": "format", "format": "webm"})
    job = wait_for_job(client, webm.json()["job"]["id"], lambda j: j["status"] in ("succeeded", "failed"))
    made = client.get(f"/v1/media/{job['outputs'][0]['media_id']}", headers=AUTH).json()
    assert made["codec"] == "vp9" and made["content_type"] == "video/webm"
    assert frame_indices(client.get(made["content_url"], headers=AUTH).content, tmp_path) == list(range(40, 48))
    gif = edit(client, media_id, {"op": "trim", "start_frame": 10, "end_frame": 14}, {"op": "format", "format": "gif"})
    job = wait_for_job(client, gif.json()["job"]["id"], lambda j: j["status"] in ("succeeded", "failed"))
    assert job["status"] == "succeeded", job
    made = client.get(f"/v1/media/{job['outputs'][0]['media_id']}", headers=AUTH).json()
    assert (made["codec"], made["content_type"], made["frame_count"]) == ("gif", "image/gif", 4)


def test_concat_copies_matching_streams_and_reencodes_others(client, tmp_path):
    a = make_indexed_movie(tmp_path / "a.mp4", frames=10, rate=Fraction(24), size=(160, 90))
    b = make_indexed_movie(tmp_path / "b.mp4", frames=6, rate=Fraction(24), size=(160, 90), first_index=100)
    c = make_indexed_movie(tmp_path / "c.mp4", frames=5, rate=Fraction(24), size=(320, 180), first_index=200)
    ids = [upload(client, path.read_bytes(), path.name).json()["id"] for path in (a, b, c)]
    copied = client.post("/v1/media/concat", json={"items": ids[:2]}, headers=AUTH)
    assert copied.status_code == 202, copied.text
    job = wait_for_job(client, copied.json()["id"], lambda j: j["status"] in ("succeeded", "failed"))
    assert job["status"] == "succeeded", job
    assert job["outputs"][0]["details"]["stream_copy"] is True
    made = client.get(f"/v1/media/{job['outputs'][0]['media_id']}", headers=AUTH).json()
    assert made["frame_count"] == 16
    assert frame_indices(client.get(made["content_url"], headers=AUTH).content, tmp_path) == [
        *range(10),
        *range(100, 106),
    ]
    mixed = client.post("/v1/media/concat", json={"items": [ids[0], ids[2]]}, headers=AUTH)
    job = wait_for_job(client, mixed.json()["id"], lambda j: j["status"] in ("succeeded", "failed"))
    assert job["status"] == "succeeded", job
    assert job["outputs"][0]["details"]["stream_copy"] is False
    made = client.get(f"/v1/media/{job['outputs'][0]['media_id']}", headers=AUTH).json()
    assert made["frame_count"] == 15 and (made["width"], made["height"]) == (160, 90)
    assert frame_indices(client.get(made["content_url"], headers=AUTH).content, tmp_path) == [
        *range(10),
        *range(200, 205),
    ]
    image = upload(client, png_bytes(gradient()), "i.png").json()["id"]
    assert (
        assert_problem(
            client.post("/v1/media/concat", json={"items": [ids[0], image]}, headers=AUTH), 422, "validation_error"
        )["errors"][0]["field"]
        == "items.1"
    )


WORKFLOW = {
    "name": "thumbs",
    "steps": [
        {"id": "small", "ops": [{"op": "resize", "width": 32}]},
        {"id": "faded", "use": "small", "ops": [{"op": "opacity", "value": 0.5}, {"op": "format", "format": "png"}]},
        {"id": "square", "ops": [{"op": "crop", "x": 0, "y": 0, "width": 48, "height": 48}]},
    ],
}


def test_workflows_are_checked_saved_as_sent_and_run_as_one_job(client):
    bad = {
        "cycle": {
            "name": "c",
            "steps": [
                {"id": "a", "use": "b", "ops": [{"op": "resize", "width": 2}]},
                {"id": "b", "use": "a", "ops": [{"op": "resize", "width": 2}]},
            ],
        },
        "unknown": {"name": "u", "steps": [{"id": "a", "use": "nope", "ops": [{"op": "resize", "width": 2}]}]},
        "types": {
            "name": "t",
            "steps": [
                {"id": "a", "ops": [{"op": "resize", "width": 2}]},
                {"id": "b", "use": "a", "ops": [{"op": "trim", "start_frame": 1}]},
            ],
        },
        "mixed": {
            "name": "m",
            "steps": [{"id": "a", "ops": [{"op": "resize", "width": 2}, {"op": "trim", "end_frame": 1}]}],
        },
        "twice": {
            "name": "d",
            "steps": [
                {"id": "a", "ops": [{"op": "resize", "width": 2}]},
                {"id": "a", "ops": [{"op": "resize", "width": 3}]},
            ],
        },
    }
    for case, body in bad.items():
        problem = assert_problem(client.post("/v1/workflows", json=body, headers=AUTH), 422, "validation_error")
        assert problem["detail"], case
    assert "cycle" in client.post("/v1/workflows", json=bad["cycle"], headers=AUTH).json()["detail"]
    saved = client.post("/v1/workflows", json=WORKFLOW, headers=AUTH)
    assert saved.status_code == 201, saved.text
    workflow = saved.json()
    assert workflow["definition"] == WORKFLOW and workflow["input_type"] == "image"
    assert client.get(workflow["url"], headers=AUTH).json()["definition"] == WORKFLOW
    media_id = upload(client, png_bytes(gradient(64, 48))).json()["id"]
    run = client.post(f"{workflow['url']}/runs", json={"media_id": media_id}, headers=AUTH)
    assert run.status_code == 202, run.text
    job = wait_for_job(client, run.json()["job"]["id"], lambda j: j["status"] in ("succeeded", "failed"))
    assert job["status"] == "succeeded", job
    by_step = {output["step"]: output for output in job["outputs"]}
    assert set(by_step) == {"small", "faded", "square"}
    faded = client.get(f"/v1/media/{by_step['faded']['media_id']}", headers=AUTH).json()
    assert (faded["width"], faded["height"]) == (32, 24) and faded["derived_from"]["source_id"] == by_step["small"][
        "media_id"
    ]
    square = content_image(client, client.get(f"/v1/media/{by_step['square']['media_id']}", headers=AUTH).json())
    assert square.size == (48, 48)
    runs = client.get(f"{workflow['url']}/runs", headers=AUTH).json()["items"]
    assert [r["job"]["id"] for r in runs] == [job["id"]] and runs[0]["job"]["status"] == "succeeded"
    assert client.delete(workflow["url"], headers=AUTH).status_code == 204
    assert_problem(client.get(workflow["url"], headers=AUTH), 404, "not_found")


def test_best_frames_name_exact_positions_and_scores(client, tmp_path):
    # Every frame blurred except three: those are the best, by the extraction area's scorer.
    sharp = [5, 21, 33]
    enable = "+".join(f"eq(n\\,{n})" for n in sharp)
    movie = make_indexed_movie(tmp_path / "blur.mp4", frames=40, rate=Fraction(25), levels=(64, 192),
                               extra_filters=f"boxblur=6:1:enable='not({enable})'")  # fmt: skip
    media_id = upload(client, movie.read_bytes(), "blur.mp4").json()["id"]
    answer = client.post(f"/v1/media/{media_id}/best-frames", json={"count": 3}, headers=AUTH)
    assert answer.status_code == 202, answer.text
    job = wait_for_job(client, answer.json()["id"], lambda j: j["status"] in ("succeeded", "failed"))
    assert job["status"] == "succeeded", job
    assert sorted(output["details"]["index"] for output in job["outputs"]) == sharp
    for output in job["outputs"]:
        details = output["details"]
        assert output["kind"] == "best_frame"
        assert details["seconds"] == str(Fraction(details["index"], 25)) and details["time_base"]
        assert set(details["score"]) == {"rank", "sharpness", "exposure", "total"}
        frame = content_image(client, client.get(f"/v1/media/{output['media_id']}", headers=AUTH).json())
        assert read_index(frame) == details["index"]
    ranks = [o["details"]["score"]["rank"] for o in job["outputs"]]
    assert ranks == sorted(ranks)
    image = upload(client, png_bytes(gradient()), "i.png").json()["id"]
    assert_problem(
        client.post(f"/v1/media/{image}/best-frames", json={"count": 1}, headers=AUTH), 422, "validation_error"
    )


def test_on_the_s3_backend_content_is_one_object_read_with_ranges_and_edited_by_jobs(
    api_settings, gateway, monkeypatch, request, tmp_path, movie
):
    from fastapi.testclient import TestClient

    from api.main import create_app
    from media_pipeline.settings import load_settings
    from media_pipeline_tests.s3_server import bucket_keys, s3_env

    endpoint, bucket = request.getfixturevalue("s3_endpoint"), request.getfixturevalue("s3_bucket")
    for name, value in s3_env(endpoint, bucket).items():
        monkeypatch.setenv(name, value)
    with TestClient(create_app(load_settings(), gateway=gateway)) as client:
        data = png_bytes(gradient())
        item = upload(client, data, "a.png").json()
        assert upload(client, data, "b.png").json()["duplicate"] is True
        key = f"library/sha256/{item['sha256'][:2]}/{item['sha256']}"
        assert {k for k in bucket_keys(endpoint, bucket) if k.startswith("library/")} == {key}
        part = client.get(item["content_url"], headers={**AUTH, "Range": "bytes=5-24"})
        assert part.status_code == 206 and part.content == data[5:25]
        # An inline edit reads the source back from the store; its output is published there too.
        small = edit(client, item["id"], {"op": "resize", "width": 16}).json()["media"]
        assert content_image(client, small).size == (16, 12)
        video = upload(client, movie.read_bytes(), "m.mp4").json()
        shutil.rmtree(api_settings.artifact_root / "library" / "sha256")  # the working copy is only a cache
        trimmed = edit(client, video["id"], {"op": "trim", "start_frame": 3, "end_frame": 9})
        job = wait_for_job(client, trimmed.json()["job"]["id"], lambda j: j["status"] in ("succeeded", "failed"))
        assert job["status"] == "succeeded", job
        made = client.get(f"/v1/media/{job['outputs'][0]['media_id']}", headers=AUTH).json()
        assert f"library/sha256/{made['sha256'][:2]}/{made['sha256']}" in bucket_keys(endpoint, bucket)
        assert frame_indices(client.get(made["content_url"], headers=AUTH).content, tmp_path) == list(range(3, 9))
        assert client.delete(f"/v1/media/{item['id']}?force=true", headers=AUTH).status_code == 204
        assert key not in bucket_keys(endpoint, bucket)


def test_a_concat_whose_input_is_deleted_before_it_runs_fails_with_a_sentence(api_settings, instance, tmp_path):
    """A delete can win the race against a concat that starts at the same moment (each checked
    before the other wrote) or be forced: either way the concat reads a deleted item. When it
    runs, it must fail saying so, and make nothing."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._core.execution.api import execute_run

    with queued_concat(api_settings, instance, tmp_path) as (client, _first, second, concat):
        assert client.delete(f"/v1/media/{second}?force=true", headers=AUTH).status_code == 204
        before = client.get("/v1/media", headers=AUTH).json()["items"]

        run = instance.get_run_by_id(concat["run_id"])
        job = ReconstructableRepository.for_module("media_pipeline.definitions", "defs").get_reconstructable_job(
            run.job_name
        )
        execute_run(job, run, instance)

        failed = client.get(f"/v1/jobs/{concat['id']}", headers=AUTH).json()
        assert failed["status"] == "failed", failed
        assert f"there is no media with id {second} (it was deleted)" in failed["error"], failed["error"]
        assert client.get("/v1/media", headers=AUTH).json()["items"] == before  # no new item


@pytest.mark.parametrize("starting", ["concat", "best_frames", "workflow_run", "video_edit", "inline_image_edit"])
def test_a_job_waits_for_a_delete_of_its_item_under_way_and_then_refuses(api_settings, instance, tmp_path, starting):
    """Postgres: the delete's row lock holds a request that would queue a job on that item (or edit
    it inline) until the delete commits; the request then answers 404/422, where it used to queue
    a job reading the deleted item (or, inline, record a derivative of it)."""
    if not api_settings.database_url.startswith("postgresql"):
        pytest.skip("row locks are Postgres's; SQLite serialises its writers instead")
    import sqlalchemy as sa

    from media_pipeline import db
    from media_pipeline.db.models import MediaItem

    with queued_concat(api_settings, instance, tmp_path) as (client, first, second, _concat):
        target = second
        if starting == "inline_image_edit":
            target = upload(client, png_bytes(gradient())).json()["id"]
            request = (f"/v1/media/{target}/edits", {"ops": [{"op": "resize", "width": 8}]})
        elif starting == "video_edit":
            request = (f"/v1/media/{second}/edits", {"ops": [{"op": "trim", "start_frame": 1}]})
        elif starting == "concat":
            request = ("/v1/media/concat", {"items": [first, second]})
        elif starting == "best_frames":
            request = (f"/v1/media/{second}/best-frames", {"count": 2})
        else:
            trim = {"name": "cutdown", "steps": [{"id": "a", "ops": [{"op": "trim", "start_frame": 1}]}]}
            workflow = client.post("/v1/workflows", json=trim, headers=AUTH).json()
            request = (f"{workflow['url']}/runs", {"media_id": second})
        answers: list = []
        with db.engine_for(api_settings.database_url).connect() as deleting:
            deleting.execute(sa.select(MediaItem.id).where(MediaItem.id == target).with_for_update())
            thread = threading.Thread(
                target=lambda: answers.append(client.post(request[0], json=request[1], headers=AUTH))
            )
            thread.start()
            thread.join(timeout=2)
            assert thread.is_alive() and not answers, "the request did not wait for the delete under way"
            deleting.execute(sa.delete(MediaItem).where(MediaItem.id == target))
            deleting.commit()
        thread.join(timeout=60)
        if starting in ("best_frames", "video_edit", "inline_image_edit"):
            assert_problem(answers[0], 404, "not_found")
        else:
            problem = assert_problem(answers[0], 422, "validation_error")
            assert f"there is no media with id {second}" in problem["detail"]
