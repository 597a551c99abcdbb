"""Artifact storage backends: the local folder and S3 (a real S3-protocol server on loopback,
moto's server mode in a child process). The same calls, the same downloads and byte ranges on
both; every area's outputs land in the bucket; a broken bucket is a sentence; nothing
half-written is ever visible."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.dagster_gateway import InProcessGateway
from api.main import create_app
from media_pipeline.core.files import atomic_path
from media_pipeline.core.storage import MULTIPART_BYTES, InvalidKey, StorageError
from media_pipeline.resources import ArtifactStore
from media_pipeline.samples import read_index
from media_pipeline.settings import Settings, load_settings
from media_pipeline_tests.s3_server import *  # noqa: F403  (fixtures)
from media_pipeline_tests.s3_server import SECRET_KEY, bucket_keys, free_port, s3_client, s3_env, s3_store
from media_pipeline_tests.test_api_support import *  # noqa: F403  (fixtures)
from media_pipeline_tests.test_api_support import AUTH, assert_problem, three_shot_cut, upload, wait_for_job

DATA = bytes(range(256)) * 4  # 1024 bytes, every offset recognisable


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/domain.db"


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> ArtifactStore:
    root = tmp_path / "artifacts"
    root.mkdir()
    if backend == "local":
        return ArtifactStore(root=str(root))
    endpoint = request.getfixturevalue("s3_endpoint")
    return s3_store(root, endpoint, request.getfixturevalue("s3_bucket"), prefix="mp")


def _forget_working_copy(store: ArtifactStore) -> None:
    """What another machine sees: the bucket only (the local backend keeps its folder, its store)."""
    if store.storage == "s3":
        shutil.rmtree(store.root_path)
        store.root_path.mkdir()


def test_put_stat_read_ranges_localize_delete(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "upload.tmp"
    source.write_bytes(DATA)
    key = "library/ab/cdef.mp4"
    stored = store.put_file(key, source)
    assert source.read_bytes() == DATA  # the source is left alone
    assert (stored.key, stored.size, stored.content_type) == (key, len(DATA), "video/mp4")
    assert stored.etag.startswith('"') and stored.etag.endswith('"')
    assert store.exists(key) and store.stat(key) == stored
    _forget_working_copy(store)
    assert b"".join(store.iter_bytes(key)) == DATA
    assert b"".join(store.iter_bytes(key, 10, 20)) == DATA[10:30]
    assert b"".join(store.iter_bytes(key, 1000)) == DATA[1000:]
    with store.open(key) as handle:  # seekable: fetched into the working copy when missing
        handle.seek(512)
        assert handle.read(4) == DATA[512:516]
    assert store.localize(key) == store.path(key) and store.path(key).read_bytes() == DATA
    store.delete(key)
    assert not store.exists(key) and store.stat(key) is None and not store.path(key).exists()
    store.delete(key)  # deleting what is not there is no error
    with pytest.raises(FileNotFoundError):
        store.localize(key)
    assert not store.exists("nothing/here.jpg")


def test_publish_uploads_finished_files_of_the_working_copy(store: ArtifactStore) -> None:
    final = store.path("cuts/show.reel.v001/thumbnails/0000_sh010.jpg")
    with atomic_path(final) as tmp:
        tmp.write_bytes(b"\xff\xd8\xff\xe0 jpeg")
    [stored] = store.publish(final)
    assert stored.key == "cuts/show.reel.v001/thumbnails/0000_sh010.jpg" and stored.content_type == "image/jpeg"
    _forget_working_copy(store)
    assert b"".join(store.iter_bytes(stored.key)) == b"\xff\xd8\xff\xe0 jpeg"
    # A half-written name is never published, and no key leaves the root.
    for bad in ("cuts/.0000_sh010.partial-1234abcd.jpg", "../outside.jpg", "/etc/passwd", ""):
        with pytest.raises((InvalidKey, ValueError)):
            store.publish(bad)


def test_a_large_file_is_uploaded_in_parts_with_its_content_type(
    s3_endpoint: str,
    s3_bucket: str,
    tmp_path: Path,
) -> None:
    store = s3_store(tmp_path / "artifacts", s3_endpoint, s3_bucket)
    payload = (bytes(range(256)) * (MULTIPART_BYTES // 256 + 4096))[: MULTIPART_BYTES + 1_000_000]
    big = store.path("cuts/x/final_video.mp4")
    big.parent.mkdir(parents=True)
    big.write_bytes(payload)
    [stored] = store.publish(big)
    head = s3_client(s3_endpoint).head_object(Bucket=s3_bucket, Key="cuts/x/final_video.mp4")
    assert head["ContentType"] == "video/mp4" and head["ContentLength"] == len(payload)
    assert stored.etag.rstrip('"').endswith("-2"), stored.etag  # an S3 multipart ETag: two parts
    assert b"".join(store.iter_bytes(stored.key, MULTIPART_BYTES - 5, 10)) == payload[MULTIPART_BYTES - 5 :][:10]


# -- downloads through the API, on both backends ------------------------------------------------


@pytest.fixture
def storage_settings(
    backend: str, api_settings: Settings, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    if backend == "local":
        return api_settings
    for name, value in s3_env(request.getfixturevalue("s3_endpoint"), request.getfixturevalue("s3_bucket")).items():
        monkeypatch.setenv(name, value)
    return load_settings()


@pytest.fixture
def storage_client(storage_settings: Settings, gateway: InProcessGateway) -> Iterator[TestClient]:
    with TestClient(create_app(storage_settings, gateway=gateway)) as test_client:
        yield test_client


def _artifacts(client: TestClient) -> ArtifactStore:
    store: ArtifactStore = client.app.state.artifacts  # type: ignore[attr-defined]
    return store


def _get(client: TestClient, key: str, **headers: str) -> Any:
    return client.get(f"/v1/artifacts/{key}", headers={**AUTH, **headers})


def test_downloads_and_ranges_are_the_same_on_both_backends(storage_client: TestClient, tmp_path: Path) -> None:
    store = _artifacts(storage_client)
    source = tmp_path / "data.bin"
    source.write_bytes(DATA)
    store.put_file("cuts/show.reel.v001/data.bin", source)
    store.put_file("cuts/show.reel.v001/space name.mp4", source)
    ranges: list[str] = []
    if store.storage == "s3":
        _forget_working_copy(store)
        # Observe (not replace) what boto3 asks the server for: the range, never the whole object.
        store.backend._client.meta.events.register(  # type: ignore[attr-defined]
            "provide-client-params.s3.GetObject", lambda params, **_: ranges.append(params.get("Range"))
        )
    key = "cuts/show.reel.v001/data.bin"

    whole = _get(storage_client, key)
    assert whole.status_code == 200 and whole.content == DATA
    assert whole.headers["content-length"] == "1024" and whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-type"] == "application/octet-stream"
    etag = whole.headers["etag"]
    assert _get(storage_client, "cuts/show.reel.v001/space%20name.mp4").headers["content-type"] == "video/mp4"

    # A player's several calls: each answers its own range, together the whole file.
    parts = []
    for header, start, end in (("bytes=0-99", 0, 99), ("bytes=100-899", 100, 899), ("bytes=900-", 900, 1023)):
        part = _get(storage_client, key, Range=header)
        assert part.status_code == 206, part.text
        assert part.headers["content-range"] == f"bytes {start}-{end}/1024"
        assert part.headers["content-length"] == str(end - start + 1)
        parts.append(part.content)
    assert b"".join(parts) == DATA
    suffix = _get(storage_client, key, Range="bytes=-24")
    assert suffix.status_code == 206 and suffix.content == DATA[-24:]
    clamped = _get(storage_client, key, Range="bytes=1000-5000")
    assert clamped.status_code == 206 and clamped.content == DATA[1000:]

    past = _get(storage_client, key, Range="bytes=1024-")
    assert_problem(past, 416, "range_not_satisfiable")
    assert past.headers["content-range"] == "bytes */1024"
    matching = _get(storage_client, key, Range="bytes=0-9", **{"If-Range": etag})
    assert matching.status_code == 206 and matching.content == DATA[:10]
    stale = _get(storage_client, key, Range="bytes=0-9", **{"If-Range": '"something-else"'})
    assert stale.status_code == 200 and stale.content == DATA
    ignored = _get(storage_client, key, Range="bytes=0-1,5-6")  # several ranges: the whole file
    assert ignored.status_code == 200 and ignored.content == DATA

    for hidden in ("cuts/show.reel.v001/nothing.bin", "cuts/show.reel.v001/.data.partial-1234abcd.bin", "../x"):
        assert_problem(_get(storage_client, hidden), 404, "not_found")
    if store.storage == "s3":
        asked = [r for r in ranges if r]
        assert "bytes=100-899" in asked and "bytes=1000-1023" in asked and "bytes=0-1023" in asked, ranges


@pytest.mark.parametrize("backend", ["s3"])  # the local backend's are hidden names (test_api_artifacts)
def test_a_half_written_upload_is_never_visible(
    s3_endpoint: str,
    s3_bucket: str,
    storage_client: TestClient,
    backend: str,
) -> None:
    store = _artifacts(storage_client)
    key = "cuts/show.reel.v001/final_video.mp4"
    client = s3_client(s3_endpoint)
    # A multipart upload in progress (a worker still uploading, or killed mid-upload).
    upload_id = client.create_multipart_upload(Bucket=s3_bucket, Key=key, ContentType="video/mp4")["UploadId"]
    part = client.upload_part(
        Bucket=s3_bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"x" * (5 * 1024 * 1024)
    )
    assert store.stat(key) is None and not store.exists(key)
    assert_problem(_get(storage_client, key), 404, "not_found")
    assert_problem(_get(storage_client, key, Range="bytes=0-9"), 404, "not_found")
    client.complete_multipart_upload(
        Bucket=s3_bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    done = _get(storage_client, key, Range="bytes=0-9")
    assert done.status_code == 206 and done.content == b"x" * 10

    # A write that fails before its rename publishes nothing.
    before = bucket_keys(s3_endpoint, s3_bucket)
    with pytest.raises(RuntimeError), atomic_path(store.path("cuts/show.reel.v001/contact_sheet.jpg")) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("the encoder died")
    assert bucket_keys(s3_endpoint, s3_bucket) == before
    assert not list(store.path("cuts/show.reel.v001").glob(".*partial*"))


# -- health: a broken bucket is a sentence --------------------------------------------------------


def _readiness(settings: Settings, gateway: InProcessGateway) -> Any:
    with TestClient(create_app(settings, gateway=gateway)) as client:
        return client.get("/readyz")


def test_readiness_reports_the_bucket(
    api_settings: Settings,
    gateway: InProcessGateway,
    s3_endpoint: str,
    s3_endpoint_with_auth: str,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def settings_with(**env: str) -> Settings:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return load_settings()

    ok = _readiness(settings_with(**s3_env(s3_endpoint, s3_bucket)), gateway)
    assert ok.status_code == 200, ok.text
    assert ok.json()["checks"]["artifact_store"] == {"ok": True, "detail": None}

    cases = {
        "missing bucket": (
            s3_env(s3_endpoint, "no-such-bucket-here"),
            "the bucket 'no-such-bucket-here' does not exist",
        ),
        "bad credentials": (s3_env(s3_endpoint_with_auth, s3_bucket), "refused the credentials"),
        "no server": (s3_env(f"http://127.0.0.1:{free_port()}", s3_bucket), "cannot be reached"),
    }
    for case, (env, sentence) in cases.items():
        response = _readiness(settings_with(**env), gateway)
        body = assert_problem(response, 503, "not_ready")
        detail = body["checks"]["artifact_store"]["detail"]
        assert body["checks"]["artifact_store"]["ok"] is False, case
        assert sentence in detail and "MEDIA_PIPELINE_S3_" in detail, (case, detail)
        assert "Traceback" not in detail and "media-pipeline-test-secret" not in detail, (case, detail)
        assert sentence in body["detail"], (case, body["detail"])


def test_a_download_from_an_unreachable_store_is_a_503_sentence(
    api_settings: Settings, gateway: InProcessGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in s3_env(f"http://127.0.0.1:{free_port()}", "media").items():
        monkeypatch.setenv(name, value)
    with TestClient(create_app(load_settings(), gateway=gateway)) as client:
        body = assert_problem(_get(client, "cuts/a/b.jpg"), 503, "storage_unavailable")
        assert "cannot be reached; check MEDIA_PIPELINE_S3_ENDPOINT_URL" in body["detail"], body


def test_settings_refuse_an_unknown_backend_or_a_bucketless_s3(tmp_path: Path) -> None:
    base = {"MEDIA_PIPELINE_HOME": str(tmp_path)}
    assert load_settings(base).storage.backend == "local"
    with pytest.raises(ValueError, match="local or s3"):
        load_settings({**base, "MEDIA_PIPELINE_STORAGE": "ftp"})
    with pytest.raises(ValueError, match="MEDIA_PIPELINE_S3_BUCKET"):
        load_settings({**base, "MEDIA_PIPELINE_STORAGE": "s3"})
    s3 = load_settings({**base, **s3_env("http://minio:9000/", "media", "prod/")})
    assert (s3.storage.backend, s3.storage.s3_endpoint_url, s3.storage.s3_bucket) == (
        "s3",
        "http://minio:9000",
        "media",
    )


def test_unusable_storage_errors_are_sentences(tmp_path: Path) -> None:
    store = s3_store(tmp_path / "artifacts", f"http://127.0.0.1:{free_port()}", "media")
    source = tmp_path / "x.jpg"
    source.write_bytes(b"x")
    with pytest.raises(StorageError, match="cannot be reached; check MEDIA_PIPELINE_S3_ENDPOINT_URL") as raised:
        store.put_file("cuts/a/x.jpg", source)
    # The secret is in no error and no representation (Dagster and loggers print resources).
    assert SECRET_KEY not in str(raised.value) and SECRET_KEY not in repr(store)
    assert SECRET_KEY not in repr(store.backend.config)  # type: ignore[attr-defined]


# -- every area's outputs go to the bucket and come back from it -----------------------------------


def test_an_ingest_and_a_final_video_are_stored_in_and_served_from_s3(
    api_settings: Settings,
    instance: dg.DagsterInstance,
    plate: Path,
    tmp_path: Path,
    s3_endpoint: str,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Runs execute in their own process with these settings, as under the daemon.
    for name, value in s3_env(s3_endpoint, s3_bucket, prefix="site-a").items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    gateway = InProcessGateway(instance, background=True)
    with TestClient(create_app(settings, gateway=gateway)) as client:
        created = upload(client, three_shot_cut(tmp_path, plate))
        assert created.status_code == 202, created.text
        cut = created.json()["cut"]
        wait_for_job(client, created.json()["job"]["id"], lambda job: job["status"] == "succeeded", timeout=600)
        key = cut["partition_key"]
        stored = {k.removeprefix("site-a/") for k in bucket_keys(s3_endpoint, s3_bucket)}
        assert all(k.startswith("site-a/") for k in bucket_keys(s3_endpoint, s3_bucket))
        folder = f"cuts/{key}"
        assert {f"{folder}/source/reel1.otio", f"{folder}/timeline.otio", f"{folder}/shots.json"} <= stored
        assert f"{folder}/contact_sheet.jpg" in stored and f"{folder}/cut_diff.json" in stored
        assert len([k for k in stored if k.startswith(f"{folder}/thumbnails/")]) == 3, stored

        # Another machine: nothing local. Thumbnails come from the bucket, exactly as stored.
        shutil.rmtree(settings.artifact_root)
        settings.artifact_root.mkdir()
        shots = client.get(f"/v1/cuts/{cut['id']}/shots", headers=AUTH).json()["items"]
        for shot in shots:
            response = client.get(shot["thumbnail_url"], headers=AUTH)
            assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
            object_key = "site-a/" + shot["thumbnail_url"].removeprefix("/v1/artifacts/")
            body = s3_client(s3_endpoint).get_object(Bucket=s3_bucket, Key=object_key)["Body"].read()
            assert response.content == body
            assert Image.open(io.BytesIO(response.content)).size[0] > 0
        assert not any(settings.artifact_root.rglob("*.jpg"))  # served from S3, not a local copy

        # The final video reads the stored timeline from the bucket (the working copy is empty).
        body = {"resolution": "160x90", "crf": 30, "preset": "ultrafast", "audio": True}
        started = client.post(f"/v1/cuts/{cut['id']}/final-video", json=body, headers=AUTH)
        assert started.status_code == 202, started.text
        job = wait_for_job(client, started.json()["id"], lambda seen: seen["status"] == "succeeded", timeout=600)
        url = job["outputs"][0]["url"]
        assert url == f"/v1/artifacts/{folder}/final_video.mp4"
        stored = {k.removeprefix("site-a/") for k in bucket_keys(s3_endpoint, s3_bucket)}
        assert f"{folder}/final_video.mp4" in stored
        # The chunk steps publish the segments they encode (a join elsewhere fetches them).
        assert any(k.startswith("segments/") for k in stored), stored
        shutil.rmtree(settings.artifact_root / "cuts")
        head = client.get(url, headers={**AUTH, "Range": "bytes=0-1023"})
        assert head.status_code == 206 and head.headers["content-type"] == "video/mp4"
        size = int(head.headers["content-range"].rsplit("/", 1)[1])
        rest = client.get(url, headers={**AUTH, "Range": "bytes=1024-"})
        assert rest.status_code == 206 and len(head.content) + len(rest.content) == size
        video = tmp_path / "from_s3.mp4"
        video.write_bytes(head.content + rest.content)
        from media_pipeline.core.ffmpeg import probe

        info = probe(video)
        assert (info.width, info.height, info.frame_count) == (160, 90, 12 + 24 + 30)
    gateway.join()


def test_extraction_frames_and_manifests_are_stored_in_s3(
    tmp_path: Path,
    instance: dg.DagsterInstance,
    indexed_movie_24: Path,
    s3_endpoint: str,
    s3_bucket: str,
) -> None:
    from media_pipeline.extraction.assets import extraction_frames
    from media_pipeline.extraction.partitions import extraction_batches
    from media_pipeline.extraction.request import ExtractionRequest
    from media_pipeline.extraction.resources import ExtractionSources
    from media_pipeline.resources import DatabaseResource, FFmpegResource

    store = s3_store(tmp_path / "artifacts", s3_endpoint, s3_bucket)
    request = ExtractionRequest.model_validate(
        {"items": [{"source": indexed_movie_24.as_uri()}], "frames": {"mode": "frames", "frames": [0, 7, 50]}}
    )
    batch = "ex_storage0000000001"
    instance.add_dynamic_partitions(extraction_batches.name, [batch])
    result = dg.materialize(
        [extraction_frames],
        instance=instance,
        partition_key=batch,
        resources={
            "artifacts": store,
            "ffmpeg": FFmpegResource(concurrency=1),
            "extraction_sources": ExtractionSources(media_roots=str(indexed_movie_24.parent)),
            "database": DatabaseResource(url=f"sqlite:///{tmp_path / 'domain.db'}"),
        },
        run_config={"ops": {"extraction_frames": {"config": {"request": request.model_dump_json()}}}},
    )
    assert result.success
    keys = bucket_keys(s3_endpoint, s3_bucket)
    frames = sorted(k for k in keys if "/frames/" in k)
    assert len(frames) == 3, keys
    assert f"extractions/{batch}/manifest.json" in keys
    assert f"extractions/{batch}/items/0000/manifest.json" in keys or any(
        k.endswith("/manifest.json") and "/items/" in k for k in keys
    )
    shutil.rmtree(store.root_path)
    indices = []
    for key in frames:
        with store.open(key) as handle:
            indices.append(read_index(Image.open(handle).convert("L")))
    assert sorted(indices) == [0, 7, 50]


def test_a_slideshow_stored_through_the_api_renders_on_another_machine_from_s3(
    api_settings: Settings,
    gateway: InProcessGateway,
    instance: dg.DagsterInstance,
    tmp_path: Path,
    s3_endpoint: str,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from media_pipeline.resources import FFmpegResource
    from media_pipeline.slideshows.assets import slideshow_video
    from media_pipeline.slideshows.partitions import slideshow_renders
    from media_pipeline_tests.slideshow_media import COLOURS, make_image, make_tone, video_frames

    for name, value in s3_env(s3_endpoint, s3_bucket).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MEDIA_PIPELINE_MAX_UPLOAD_BYTES", str(8 * 1024 * 1024))  # a WAV is larger than 64 KiB
    settings = load_settings()
    incoming = tmp_path / "incoming"
    files = [
        ("images", make_image(incoming / "a.png", COLOURS[0])),
        ("images", make_image(incoming / "b.png", COLOURS[1])),
        ("voiceovers", make_tone(incoming / "v.wav", frequency=1000, seconds=1.2)),
    ]
    scenes = {"scenes": [{"images": ["a.png"], "voiceover": "v.wav"}, {"images": ["b.png"], "duration": 1.5}]}
    with TestClient(create_app(settings, gateway=gateway)) as client:
        assert client.put("/v1/slideshows/demo/scenes", json=scenes, headers=AUTH).status_code == 200
        for subdir, path in files:
            response = client.post(
                "/v1/slideshows/demo/assets",
                files={"files": (path.name, path.read_bytes())},
                data={"subdir": subdir},
                headers=AUTH,
            )
            assert response.status_code in (200, 201), response.text
    keys = bucket_keys(s3_endpoint, s3_bucket)
    assert {"slideshows/demo/scenes.json", "slideshows/demo/images/a.png", "slideshows/demo/voiceovers/v.wav"} <= keys

    # The render on a machine whose working copy is empty: its inputs come from the bucket.
    other = s3_store(tmp_path / "other_machine", s3_endpoint, s3_bucket)
    instance.add_dynamic_partitions(slideshow_renders.name, ["demo.r1"])
    config = {"resolution": "320x180", "preset": "veryfast", "fps": "25", "min_shot": 1.0, "max_shot": 3.0}
    result = dg.materialize(
        [slideshow_video],
        instance=instance,
        partition_key="demo.r1",
        resources={"artifacts": other, "ffmpeg": FFmpegResource(concurrency=2)},
        run_config={"ops": {"slideshow_video": {"config": {**config, "xfade": 0.2}}}},
    )
    assert result.success
    keys = bucket_keys(s3_endpoint, s3_bucket)
    outputs = {"output/video.mp4", "output/scene_01.mp4", "output/scene_02.mp4", "renders/r1.json"}
    assert {f"slideshows/demo/{name}" for name in outputs} <= keys, keys
    shutil.rmtree(other.root_path)
    assert video_frames(other.localize("slideshows/demo/output/video.mp4")) == 30 + 38 - 5
    # The API, with nothing of it on its own disk, lists and serves the outputs from the bucket.
    shutil.rmtree(settings.artifact_root)
    settings.artifact_root.mkdir()
    with TestClient(create_app(settings, gateway=gateway)) as client:
        listed = client.get("/v1/slideshows/demo/outputs", headers=AUTH)
        assert listed.status_code == 200, listed.text
        names = {f["name"]: f for f in listed.json()["files"]}
        assert set(names) == {"video.mp4", "scene_01.mp4", "scene_02.mp4"}
        assert names["video.mp4"]["url"] == "/v1/artifacts/slideshows/demo/output/video.mp4"
        video = client.get("/v1/projects/demo/outputs/video", headers={**AUTH, "Range": "bytes=0-99"})
        assert video.status_code == 206 and len(video.content) == 100
        assert video.headers["content-range"] == f"bytes 0-99/{names['video.mp4']['size']}"
        assert_problem(client.get("/v1/slideshows/nothing/outputs", headers=AUTH), 404, "not_found")


def test_listing_a_prefix_is_the_same_on_both_backends(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "x.mp4"
    source.write_bytes(b"x" * 10)
    for key in ("slideshows/a/output/video.mp4", "slideshows/a/output/scene_01.mp4", "slideshows/ab/output/v.mp4"):
        store.put_file(key, source)
    # A half-written file in the working copy is not listed (nor published).
    store.path("slideshows/a/output").mkdir(parents=True, exist_ok=True)
    (store.path("slideshows/a/output") / ".video.partial-1234abcd.mp4").write_bytes(b"half")
    listed = store.list_objects("slideshows/a/")
    assert [o.key for o in listed] == ["slideshows/a/output/scene_01.mp4", "slideshows/a/output/video.mp4"]
    assert all(o.size == 10 and o.content_type == "video/mp4" for o in listed)
    assert store.list_objects("slideshows/none/") == [] and store.list_objects("../") == []


def test_up_refuses_to_start_on_a_bucket_that_does_not_exist(tmp_path: Path, s3_endpoint: str) -> None:
    import os
    import subprocess
    import sys

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MEDIA_PIPELINE_")},
        **s3_env(s3_endpoint, "nobody-made-this-bucket"),
        "MEDIA_PIPELINE_HOME": str(tmp_path / "home"),
        "MEDIA_PIPELINE_UI_PORT": str(free_port()),
        "MEDIA_PIPELINE_API_PORT": str(free_port()),
    }
    command = [str(Path(sys.executable).with_name("media-pipeline")), "up", "--no-sample"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "the bucket 'nobody-made-this-bucket' does not exist" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_publish_to_an_unreachable_store_is_a_503_and_leaves_nothing(
    api_settings: Settings, gateway: InProcessGateway, plate: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in s3_env(f"http://127.0.0.1:{free_port()}", "media").items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    with TestClient(create_app(settings, gateway=gateway)) as client:
        body = assert_problem(upload(client, three_shot_cut(tmp_path, plate)), 503, "storage_unavailable")
        assert "could not upload cuts/show.reel1.v001/source/reel1.otio to the S3 storage" in body["detail"], body
        assert "cannot be reached; check MEDIA_PIPELINE_S3_ENDPOINT_URL" in body["detail"], body
        assert client.get("/v1/cuts", headers=AUTH).json()["items"] == []
        assert client.get("/v1/jobs", headers=AUTH).json()["items"] == []
    assert not [p for p in settings.artifact_root.rglob("*") if p.is_file()]


@pytest.mark.stack
def test_up_on_s3_stores_the_sample_cut_in_the_bucket_and_serves_it(
    tmp_path: Path, s3_endpoint: str, s3_bucket: str
) -> None:
    """The real stack (webserver, daemon, API, run workers in their own processes) on the bucket."""
    import os
    import signal
    import subprocess
    import sys

    import httpx
    import sqlalchemy as sa

    from media_pipeline import db
    from media_pipeline.db.models import Render
    from media_pipeline_tests.waiting import running, service_environment, wait_until

    home = tmp_path / "home"
    ui_port, api_port = free_port(), free_port()
    env = service_environment(
        {
            **s3_env(s3_endpoint, s3_bucket, prefix="stack"),
            "MEDIA_PIPELINE_SENSOR_INTERVAL": "1",
            "MEDIA_PIPELINE_SETTLE_SECONDS": "0.5",
            "MEDIA_PIPELINE_API_TOKEN": "stack-test-token",
        }
    )
    command = [str(Path(sys.executable).with_name("media-pipeline")), "up", "--home", str(home)]
    command += ["--ui-port", str(ui_port), "--api-port", str(api_port)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        url = f"sqlite:///{home}/media_pipeline.db"

        def contact_sheet_done() -> bool:
            try:
                with db.session_scope(url) as session:
                    return session.scalar(sa.select(Render.id).where(Render.kind == "contact_sheet")) is not None
            except sa.exc.OperationalError:  # `up` has not created or migrated the database yet
                return False

        wait_until(
            contact_sheet_done,
            timeout=600,
            what="the sample cut's contact sheet",
            alive=running(process, "media-pipeline up"),
        )
        folder = "stack/cuts/demo.sample_cut.v001"
        keys = bucket_keys(s3_endpoint, s3_bucket)
        assert f"{folder}/contact_sheet.jpg" in keys and f"{folder}/source/sample_cut.otio" in keys, keys
        assert len([k for k in keys if k.startswith(f"{folder}/thumbnails/")]) == 6, keys

        (home / "artifacts" / "cuts" / "demo.sample_cut.v001" / "contact_sheet.jpg").unlink()
        api = f"http://127.0.0.1:{api_port}"
        ready = httpx.get(f"{api}/readyz", timeout=30).json()
        assert ready["checks"]["artifact_store"]["ok"] is True, ready
        sheet = httpx.get(
            f"{api}/v1/artifacts/cuts/demo.sample_cut.v001/contact_sheet.jpg",
            headers={"Authorization": "Bearer stack-test-token", "Range": "bytes=0-1"},
            timeout=30,
        )
        assert sheet.status_code == 206 and sheet.content == b"\xff\xd8", sheet.text  # a JPEG, from the bucket
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
