"""GET /v1/artifacts/{path}: content types, byte ranges, and no way out of the artifact root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.artifacts import ByteRange, RangeNotSatisfiable, parse_range, resolve_artifact
from api.problems import ApiProblem
from media_pipeline.settings import Settings
from media_pipeline_tests.test_api_support import *  # noqa: F403  (fixtures)
from media_pipeline_tests.test_api_support import AUTH, assert_problem


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """Files only: the domain database is not involved, so one (SQLite) is enough."""
    return f"sqlite:///{tmp_path}/domain.db"


DATA = bytes(range(256)) * 4  # 1024 bytes, every offset recognisable


@pytest.fixture
def files(api_settings: Settings, tmp_path: Path) -> Path:
    root = api_settings.artifact_root
    folder = root / "cuts" / "show.reel.v001"
    folder.mkdir(parents=True)
    (folder / "data.bin").write_bytes(DATA)
    (folder / "thumb.jpg").write_bytes(b"\xff\xd8\xff\xe0 jpeg")
    (folder / "timeline.otio").write_text("{}")
    (folder / "cut.edl").write_text("TITLE: x\n")
    (folder / "space name.bin").write_bytes(b"spaced")
    (folder / ".thumb.partial-1234abcd.jpg").write_bytes(b"half written")
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the artifact root")
    (folder / "escape.txt").symlink_to(secret)
    (folder / "escape_dir").symlink_to(tmp_path, target_is_directory=True)
    (folder / "inside_link.bin").symlink_to(folder / "data.bin")
    return folder


def get(client: TestClient, path: str, **headers: str):  # type: ignore[no-untyped-def]
    return client.get(f"/v1/artifacts/{path}", headers={**AUTH, **headers})


def test_whole_file_with_content_type(client: TestClient, files: Path) -> None:
    response = get(client, "cuts/show.reel.v001/data.bin")
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-length"] == "1024"
    assert response.headers["content-type"] == "application/octet-stream"
    expected = {
        "thumb.jpg": "image/jpeg",
        "timeline.otio": "application/json",
        "cut.edl": "text/plain; charset=utf-8",
    }
    for name, content_type in expected.items():
        assert get(client, f"cuts/show.reel.v001/{name}").headers["content-type"] == content_type
    assert get(client, "cuts/show.reel.v001/space%20name.bin").content == b"spaced"
    assert get(client, "cuts/show.reel.v001/inside_link.bin").content == DATA


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=100-199", 100, 199),
        ("bytes=1000-", 1000, 1023),
        ("bytes=1000-5000", 1000, 1023),
        ("bytes=-24", 1000, 1023),  # suffix: the last 24 bytes
        ("bytes=-5000", 0, 1023),  # a suffix longer than the file is the whole file
        ("bytes=1023-1023", 1023, 1023),
        ("BYTES = 5-9", 5, 9),
    ],
)
def test_byte_ranges(client: TestClient, files: Path, header: str, start: int, end: int) -> None:
    response = get(client, "cuts/show.reel.v001/data.bin", Range=header)
    assert response.status_code == 206, response.text
    assert response.content == DATA[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/1024"
    assert response.headers["content-length"] == str(end - start + 1)


@pytest.mark.parametrize("header", ["bytes=1024-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable_ranges_are_416(client: TestClient, files: Path, header: str) -> None:
    response = get(client, "cuts/show.reel.v001/data.bin", Range=header)
    assert_problem(response, 416, "range_not_satisfiable")
    assert response.headers["content-range"] == "bytes */1024"


@pytest.mark.parametrize("header", ["bytes=abc", "items=0-5", "bytes=0-1,5-6", "bytes=9-3", "bytes=-", "bytes"])
def test_ranges_we_do_not_serve_get_the_whole_file(client: TestClient, files: Path, header: str) -> None:
    response = get(client, "cuts/show.reel.v001/data.bin", Range=header)
    assert response.status_code == 200 and response.content == DATA


def test_if_range(client: TestClient, files: Path) -> None:
    etag = get(client, "cuts/show.reel.v001/data.bin").headers["etag"]
    same = get(client, "cuts/show.reel.v001/data.bin", Range="bytes=0-9", **{"If-Range": etag})
    assert same.status_code == 206 and same.content == DATA[:10]
    changed = get(client, "cuts/show.reel.v001/data.bin", Range="bytes=0-9", **{"If-Range": '"stale"'})
    assert changed.status_code == 200 and changed.content == DATA


@pytest.mark.parametrize(
    "path",
    [
        "cuts/show.reel.v001/%2e%2e/%2e%2e/%2e%2e/secret.txt",
        "%2e%2e/secret.txt",
        "cuts/%2E%2E%2F%2E%2E%2Fsecret.txt",
        "..%2fsecret.txt",
        "cuts/show.reel.v001/..%5c..%5csecret.txt",
        "%2Fetc%2Fpasswd",
        "/etc/passwd",
        "cuts/show.reel.v001/escape.txt",  # symlink to a file outside
        "cuts/show.reel.v001/escape_dir/secret.txt",  # through a symlinked folder
        "cuts/show.reel.v001/.thumb.partial-1234abcd.jpg",  # half-written
        "cuts/show.reel.v001",  # a folder
        "cuts/show.reel.v001/missing.jpg",
        "cuts/show.reel.v001/data.bin%00.jpg",
        "cuts/%2e/show.reel.v001/data.bin",  # a "." segment (encoded: clients remove plain ones)
        "cuts//show.reel.v001/data.bin",
        "%252e%252e/secret.txt",
    ],
)
def test_no_way_out_of_the_artifact_root(client: TestClient, files: Path, path: str) -> None:
    response = get(client, path)
    body = assert_problem(response, 404, "not_found")
    assert "outside the artifact root" not in response.text
    assert body["code"] == "not_found"


def test_resolver_directly(api_settings: Settings, files: Path, tmp_path: Path) -> None:
    root = api_settings.artifact_root
    assert resolve_artifact(root, "cuts/show.reel.v001/data.bin") == files / "data.bin"
    for bad in [
        "../secret.txt",
        "cuts/../../secret.txt",
        str(tmp_path / "secret.txt"),
        "cuts\\..\\..\\secret.txt",
        "cuts/show.reel.v001/escape.txt",
        "",
        "a\x00b",
        "cuts/./show.reel.v001/data.bin",
    ]:
        with pytest.raises(ApiProblem) as caught:
            resolve_artifact(root, bad)
        assert caught.value.status == 404
    # A root that is itself reached through a symlink still confines correctly.
    alias = tmp_path / "alias"
    os.symlink(root, alias)
    assert resolve_artifact(alias, "cuts/show.reel.v001/data.bin") == (files / "data.bin").resolve()


def test_parse_range_rules() -> None:
    assert parse_range(None, 10) is None
    assert parse_range("bytes=2-4", 10) == ByteRange(2, 4)
    assert parse_range("bytes=-3", 10) == ByteRange(7, 9)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=0-", 0)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=-1", 0)
