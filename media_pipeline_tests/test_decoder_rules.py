"""Only media reach the decoders: protocols, demuxers, decoders and pixel limits checked first."""

from __future__ import annotations

import http.server
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest
from PIL import Image

from media_pipeline.core import ffmpeg
from media_pipeline.core.errors import MediaError
from media_pipeline.core.probe import probe
from media_pipeline.db.models import MediaStatus
from media_pipeline.editorial.media import MediaResolver
from media_pipeline.editorial.shots import extract_shots
from media_pipeline.samples import make_indexed_movie

FCP_SVG = """<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="1920" height="1080">
  <metadata><xmeml version="5"><sequence><name>reel1</name></sequence></xmeml></metadata>
  <rect width="1920" height="1080" fill="red"/>
</svg>
"""


def grab(source: Path | str, output: Path) -> None:
    ffmpeg.run(["-i", str(source), "-frames:v", "1"], output, what="a frame")


def test_an_fcp_xml_that_is_also_an_svg_is_refused_as_media(tmp_path: Path) -> None:
    fake = tmp_path / "reel1.mov"
    fake.write_text(FCP_SVG)
    with pytest.raises(MediaError, match=r"reel1\.mov is an XML document .* not media"):
        probe(fake)
    with pytest.raises(MediaError, match="not media"):
        grab(fake, tmp_path / "out.jpg")
    assert not (tmp_path / "out.jpg").exists()


def test_a_shot_pointing_at_a_non_media_file_is_missing_with_the_reason(tmp_path: Path) -> None:
    fake = tmp_path / "reel1.xml"
    fake.write_text(FCP_SVG)
    clip = otio.schema.Clip(
        name="sh010",
        media_reference=otio.schema.ExternalReference(target_url=fake.as_uri()),
        source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, 24), otio.opentime.RationalTime(12, 24)),
    )
    timeline = otio.schema.Timeline(tracks=[otio.schema.Track(children=[clip])])
    (shot,) = extract_shots(timeline).shots
    resolved = MediaResolver([tmp_path]).resolve(shot)
    assert resolved.status == MediaStatus.MISSING
    assert "reel1.xml is an XML document" in resolved.notes[-1] and "not media" in resolved.notes[-1]


@pytest.mark.parametrize("name", ["A001C001.mov", "stream.m3u8"])
def test_an_hls_playlist_is_refused_whatever_its_name(tmp_path: Path, name: str) -> None:
    make_indexed_movie(tmp_path / "seg0.mov", frames=12)
    playlist = tmp_path / name
    playlist.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:0.5,\nseg0.mov\n#EXT-X-ENDLIST\n")
    with pytest.raises(MediaError, match="is an HLS playlist, not media"):
        probe(playlist)
    with pytest.raises(MediaError, match="HLS playlist"):
        grab(playlist, tmp_path / "out.jpg")


def test_a_concat_list_named_as_a_movie_does_not_read_the_files_it_lists(tmp_path: Path) -> None:
    # ffmpeg recognises the list by its content and would read secret.mov through it.
    make_indexed_movie(tmp_path / "secret.mov", frames=12)
    listing = tmp_path / "A001C001.mov"
    listing.write_text("ffconcat version 1.0\nfile secret.mov\n")
    with pytest.raises(MediaError, match="is an FFmpeg concat list, not media"):
        probe(listing)
    with pytest.raises(MediaError, match="concat list"):
        grab(listing, tmp_path / "out.jpg")
    assert not (tmp_path / "out.jpg").exists()


def test_text_files_are_refused(tmp_path: Path) -> None:
    subtitles = tmp_path / "A001C001.mov"
    subtitles.write_text("1\n00:00:01,000 --> 00:00:02,000\nHello\n")
    with pytest.raises(MediaError, match="is a text file, not media"):
        probe(subtitles)


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:
        _Recorder.requests.append(self.path)
        body = (Path(self.server.media_dir) / self.path.lstrip("/")).read_bytes()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def media_server(tmp_path: Path) -> Iterator[str]:
    """A real HTTP server on loopback serving a real movie: nothing may ever ask it for one."""
    make_indexed_movie(tmp_path / "remote.mov", frames=12)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.media_dir = str(tmp_path)  # type: ignore[attr-defined]
    _Recorder.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/remote.mov"
    finally:
        server.shutdown()
        server.server_close()


def test_urls_and_protocols_are_refused_before_anything_is_opened(tmp_path: Path, media_server: str) -> None:
    local = make_indexed_movie(tmp_path / "local.mov", frames=12)
    for url in (media_server, f"concat:{local}|{local}", f"subfile,,start,0,end,0,,:{local}", f"file:{local}"):
        with pytest.raises(MediaError, match="is a URL or an FFmpeg protocol, not a media file"):
            probe(url)
        with pytest.raises(MediaError, match="URL or an FFmpeg protocol"):
            grab(url, tmp_path / "out.jpg")
    assert _Recorder.requests == []
    assert not (tmp_path / "out.jpg").exists()


def test_ffmpeg_itself_is_told_the_input_rules(tmp_path: Path) -> None:
    movie = make_indexed_movie(tmp_path / "a.mov", frames=2)
    args = ffmpeg.guarded_args(["-ss", "0", "-i", str(movie), "-f", "lavfi", "-i", "color=c=black", "-map", "0:v"])
    first = args.index("-i")
    assert args[:first][-8:-6] == ["-protocol_whitelist", "file"]
    assert "-format_whitelist" in args[:first] and "-codec_whitelist" in args[:first]
    assert args[first - 2 : first] == ["-max_pixels", "100000000"]
    # Generated inputs (lavfi) take no file rules: they read nothing.
    second = args.index("-i", first + 1)
    assert args[first + 2 : second] == ["-f", "lavfi"]


def huge_png(path: Path, width: int, height: int, rows: int = 400) -> Path:
    """A valid PNG header declaring `width`x`height`, with a few rows of real (zero) data: tiny on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    compressor = zlib.compressobj(9)
    row = b"\x00" + b"\x00" * (width * 3)
    idat = b"".join(compressor.compress(row) for _ in range(rows)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def test_a_small_png_declaring_a_huge_canvas_is_refused_from_its_header(tmp_path: Path) -> None:
    bomb = huge_png(tmp_path / "title.png", 60000, 40000)  # 2.4 gigapixels
    assert bomb.stat().st_size < 1_000_000
    started = time.monotonic()
    with pytest.raises(MediaError, match=r"title\.png declares a picture of .* above the limit of 100 MP"):
        probe(bomb)
    with pytest.raises(MediaError, match="above the limit"):
        ffmpeg.run(["-loop", "1", "-framerate", "24", "-i", str(bomb), "-frames:v", "24"], tmp_path / "still.mp4")
    assert time.monotonic() - started < 5
    assert not (tmp_path / "still.mp4").exists()
    # Between the default and Pillow's ceiling: refused by the size the header states.
    with pytest.raises(MediaError, match="12000x10000 pixels"):
        probe(huge_png(tmp_path / "big.png", 12000, 10000, rows=2))


def test_the_pixel_limit_is_a_parameter(tmp_path: Path) -> None:
    still = tmp_path / "card.png"
    Image.new("RGB", (400, 300)).save(still)
    movie = make_indexed_movie(tmp_path / "plate.mov", frames=2, rate=Fraction(24), size=(320, 180))
    assert probe(still, max_pixels=120_000).width == 400
    with pytest.raises(MediaError, match=r"400x300 pixels, above the limit of 0.1 MP"):
        probe(still, max_pixels=100_000)
    with pytest.raises(MediaError, match="320x180 pixels"):
        probe(movie, max_pixels=320 * 180 - 1)
    with pytest.raises(MediaError, match="320x180 pixels"):
        ffmpeg.run(["-i", str(movie), "-frames:v", "1"], tmp_path / "f.jpg", max_pixels=50_000)
    resolver = MediaResolver([tmp_path], max_pixels=50_000)
    with pytest.raises(MediaError, match="above the limit"):
        resolver.probe(movie)


def test_the_setting_sets_the_limit_of_the_code_location(tmp_path: Path) -> None:
    from media_pipeline.core import probe as probe_module
    from media_pipeline.platform.definitions import definitions
    from media_pipeline.settings import load_settings

    with pytest.raises(ValueError, match="MEDIA_PIPELINE_MAX_PIXELS must be a positive whole number, not '0'"):
        load_settings({"MEDIA_PIPELINE_HOME": str(tmp_path), "MEDIA_PIPELINE_MAX_PIXELS": "0"})
    assert load_settings({"MEDIA_PIPELINE_HOME": str(tmp_path)}).max_pixels == 100_000_000
    still = tmp_path / "card.png"
    Image.new("RGB", (400, 300)).save(still)
    before = probe_module.max_pixels_limit()
    try:
        definitions(load_settings({"MEDIA_PIPELINE_HOME": str(tmp_path), "MEDIA_PIPELINE_MAX_PIXELS": "100000"}))
        with pytest.raises(MediaError, match=r"above the limit of 0\.1 MP"):
            probe(still)
        with pytest.raises(MediaError, match=r"above the limit of 0\.1 MP"):
            ffmpeg.run(["-i", str(still), "-frames:v", "1"], tmp_path / "f.jpg")
    finally:
        probe_module.set_max_pixels(before)
    assert probe(still).width == 400
