"""Extraction sources: files only under the media roots, downloads from a real HTTP server on
loopback (allowed only with MEDIA_PIPELINE_FETCH_ALLOW_PRIVATE), platform codes without yt-dlp."""

from __future__ import annotations

import hashlib
import http.server
import importlib.util
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from media_pipeline.extraction.request import ExtractionItem
from media_pipeline.extraction.sources import SourcePolicy, SourceRefused, check_host, fetch

PAYLOAD = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 400


class Handler(http.server.BaseHTTPRequestHandler):
    release: threading.Event

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        if self.path == "/video.mp4":
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{port}/video.mp4")
            self.end_headers()
        elif self.path == "/to-file":
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
            self.end_headers()
        elif self.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
        elif self.path == "/stall":
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            self.release.wait(60)  # until the test is over; the client gives up long before
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    release = threading.Event()
    handler = type("BoundHandler", (Handler,), {"release": release})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=30)


def item(**fields: object) -> ExtractionItem:
    return ExtractionItem.model_validate(fields)


def test_download_from_loopback_with_the_setting_on(server, tmp_path):
    policy = SourcePolicy(allow_private=True)
    fetched = fetch(item(source=f"{server}/moved"), tmp_path, policy)
    assert fetched.path.read_bytes() == PAYLOAD
    assert fetched.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    assert fetched.provenance["final_url"] == f"{server}/video.mp4"
    assert fetched.provenance["redirects"] == [f"{server}/moved"]
    assert fetched.provenance["bytes"] == len(PAYLOAD)
    assert fetched.provenance["content_type"] == "video/mp4"
    same = fetch(item(platform="url", code=f"{server}/video.mp4"), tmp_path / "b", policy)
    assert same.sha256 == fetched.sha256


def test_loopback_private_and_link_local_are_refused_with_the_setting_off(server, tmp_path):
    policy = SourcePolicy(allow_private=False)
    with pytest.raises(SourceRefused, match="loopback, private or link-local"):
        fetch(item(source=f"{server}/video.mp4"), tmp_path, policy)
    for url in ["http://10.1.2.3/v.mp4", "http://169.254.169.254/latest", "http://[::1]/v.mp4",
                "http://[::ffff:127.0.0.1]/v.mp4", "http://100.64.0.1/v.mp4", "http://localhost/v.mp4"]:  # fmt: skip
        with pytest.raises(SourceRefused, match="MEDIA_PIPELINE_FETCH_ALLOW_PRIVATE"):
            check_host(url, policy)
    assert not list(tmp_path.iterdir())


def test_every_redirect_is_checked_and_limits_hold(server, tmp_path):
    allowed = SourcePolicy(allow_private=True)
    with pytest.raises(SourceRefused, match="only http:// and https://"):
        fetch(item(source=f"{server}/to-file"), tmp_path, allowed)
    with pytest.raises(SourceRefused, match="redirected more than 5 times"):
        fetch(item(source=f"{server}/loop"), tmp_path, allowed)
    with pytest.raises(SourceRefused, match="larger than this server downloads"):
        fetch(item(source=f"{server}/video.mp4"), tmp_path, SourcePolicy(allow_private=True, max_bytes=1000))
    with pytest.raises(SourceRefused, match="HTTP 404"):
        fetch(item(source=f"{server}/nothing.mp4"), tmp_path, allowed)
    with pytest.raises(SourceRefused, match=r"timed out|took longer"):
        fetch(item(source=f"{server}/stall"), tmp_path, SourcePolicy(allow_private=True, timeout=1))
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == []  # nothing half-downloaded is left


def test_files_only_under_the_media_roots(tmp_path):
    root = tmp_path / "media"
    (root / "show").mkdir(parents=True)
    inside = root / "show" / "a.mp4"
    inside.write_bytes(PAYLOAD)
    outside = tmp_path / "secret.mp4"
    outside.write_bytes(b"secret")
    (root / "link.mp4").symlink_to(outside)
    policy = SourcePolicy(media_roots=(root.resolve(),))

    fetched = fetch(item(source=inside.as_uri()), tmp_path / "work", policy)
    assert fetched.path == inside.resolve() and fetched.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    assert fetch(item(platform="file", code=str(inside)), tmp_path / "work", policy).path == inside.resolve()

    sentences = set()
    for path in [outside, tmp_path / "does-not-exist.mp4", root / "link.mp4", root / ".." / "secret.mp4"]:
        with pytest.raises(SourceRefused) as caught:
            fetch(item(source=path.as_uri() if path.is_absolute() else str(path)), tmp_path / "work", policy)
        sentences.add(str(caught.value))
    assert len(sentences) == 1  # the same sentence whether the file exists or not
    (sentence,) = sentences
    assert "MEDIA_PIPELINE_MEDIA_ROOTS" in sentence and str(tmp_path) not in sentence
    with pytest.raises(SourceRefused, match="no such file in the media folders"):
        fetch(item(source=(root / "show" / "missing.mp4").as_uri()), tmp_path / "work", policy)


def test_media_library_and_platforms_fail_with_a_sentence(tmp_path):
    with pytest.raises(SourceRefused, match="this run has no media library to read from"):
        fetch(item(media_id=12), tmp_path, SourcePolicy())
    if importlib.util.find_spec("yt_dlp") is not None:
        pytest.skip("yt-dlp is installed here; this checks the sentence given without it")
    with pytest.raises(SourceRefused, match=r"pip install 'media_pipeline\[platforms\]'"):
        fetch(item(platform="youtube", code="XYZ789"), tmp_path, SourcePolicy())


def test_item_shapes_are_validated():
    with pytest.raises(ValueError, match="exactly one of source, media_id or platform"):
        item(source="file:///a.mp4", media_id=3)
    with pytest.raises(ValueError, match="needs a code"):
        item(platform="youtube")
    # A URL as a platform code would reach yt-dlp's generic extractor, past the download checks.
    for code in ("http://127.0.0.1:8080/private.mp4", "https://169.254.169.254/latest"):
        with pytest.raises(ValueError, match="takes the video's id on youtube, not a URL"):
            item(platform="youtube", code=code)
    assert item(platform="url", code="https://example.com/v.mp4").code == "https://example.com/v.mp4"
    with pytest.raises(ValueError, match="file:///absolute/path or an http"):
        item(source="/etc/passwd")
    assert Path(item(source="file:///a.mp4").source or "").name == "a.mp4"
