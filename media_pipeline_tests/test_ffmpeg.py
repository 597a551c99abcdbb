"""The ffmpeg layer: probing, progress, clear errors, and no half-written outputs."""

from __future__ import annotations

import threading
import time
from fractions import Fraction
from pathlib import Path

import pytest

from media_pipeline.core import ffmpeg
from media_pipeline.samples import make_indexed_movie


def test_probe_reads_rate_size_duration_and_timecode(tmp_path):
    movie = make_indexed_movie(
        tmp_path / "a.mov", frames=48, rate=Fraction(30000, 1001), size=(320, 180), start_timecode="01:02:03:04"
    )
    info = ffmpeg.probe(movie)
    assert info.rate == Fraction(30000, 1001)
    assert (info.width, info.height) == (320, 180)
    assert info.frame_count == 48
    assert info.start_timecode == "01:02:03:04"
    assert not info.has_audio
    assert ffmpeg.probe(make_indexed_movie(tmp_path / "b.mov", frames=10, audio=True)).has_audio


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", "not a readable media file"),
        (b"\x00\x00\x00\x18ftypqt  " + b"x" * 100, "not a readable media file"),
    ],
)
def test_probe_explains_unreadable_files(tmp_path, content, words):
    bad = tmp_path / "bad.mov"
    bad.write_bytes(content)
    with pytest.raises(ffmpeg.MediaError, match=words):
        ffmpeg.probe(bad)


def test_probe_of_a_missing_file(tmp_path):
    with pytest.raises(ffmpeg.MediaError, match="does not exist"):
        ffmpeg.probe(tmp_path / "nope.mov")


def test_progress_is_reported_while_encoding(tmp_path):
    seen: list[ffmpeg.Progress] = []
    ffmpeg.run(
        [
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x90:rate=25",
            "-frames:v",
            "50",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
        tmp_path / "out.mp4",
        on_progress=seen.append,
    )
    assert seen and seen[-1].done and seen[-1].frame == 50
    assert ffmpeg.probe(tmp_path / "out.mp4").frame_count == 50


def test_a_failed_encode_raises_with_ffmpegs_words_and_leaves_no_file(tmp_path):
    output = tmp_path / "out.mp4"
    with pytest.raises(ffmpeg.FFmpegError) as raised:
        ffmpeg.run(["-i", str(tmp_path / "missing.mov"), "-c:v", "libx264"], output, what="proxy of sh010")
    assert "proxy of sh010 failed" in str(raised.value)
    assert "No such file" in raised.value.stderr_tail
    assert list(tmp_path.iterdir()) == []


def test_a_killed_encode_leaves_no_file_under_the_final_name(tmp_path):
    output = tmp_path / "long.mp4"
    errors: list[BaseException] = []

    def encode() -> None:
        try:
            ffmpeg.run(
                ["-f", "lavfi", "-re", "-i", "testsrc2=size=160x90:rate=25", "-t", "30", "-c:v", "libx264"],
                output,
                timeout=1.0,
            )
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=encode)
    started = time.monotonic()
    worker.start()
    worker.join(20)
    assert time.monotonic() - started < 20
    assert errors and isinstance(errors[0], ffmpeg.FFmpegError) and "stopped" in str(errors[0])
    assert not output.exists()
    assert [p for p in tmp_path.iterdir()] == []  # the partial file is gone too


def test_seek_targets_half_a_frame_early():
    rate = Fraction(24000, 1001)
    assert ffmpeg.seek_seconds(0, rate) == 0
    assert ffmpeg.seek_seconds(10, rate) == Fraction(19, 2) / rate


@pytest.mark.parametrize(
    "decimal, exact",
    [
        (23.976, Fraction(24000, 1001)),
        (29.97, Fraction(30000, 1001)),
        ("59.94", Fraction(60000, 1001)),
        (25, Fraction(25)),
        (12.5, Fraction(25, 2)),
    ],
)
def test_exact_rate(decimal, exact):
    assert ffmpeg.exact_rate(decimal) == exact


def test_arguments_are_never_a_shell_string(tmp_path):
    odd = tmp_path / "name with spaces; $(touch pwned) 'quotes'.mp4"
    ffmpeg.run(["-f", "lavfi", "-i", "testsrc2=size=64x64:rate=5", "-frames:v", "2"], odd)
    assert odd.exists() and not Path("pwned").exists()
