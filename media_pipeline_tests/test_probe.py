"""Probing with PyAV on real generated media: exact frame counts, rates, timecode, audio samples."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from PIL import Image

from media_pipeline.core import ffmpeg
from media_pipeline.core.errors import MediaError
from media_pipeline.core.probe import probe
from media_pipeline.samples import make_indexed_movie, make_indexed_sequence


def remux(source: Path, output: Path) -> Path:
    ffmpeg.run(["-i", str(source), "-map", "0:v", "-c", "copy"], output)
    return output


@pytest.mark.parametrize(
    "rate", [Fraction(24), Fraction(25), Fraction(24000, 1001), Fraction(30000, 1001), Fraction(60000, 1001)],
    ids=str,
)  # fmt: skip
def test_frame_counts_and_rates_are_exact_in_mov_and_mkv(tmp_path: Path, rate: Fraction) -> None:
    movie = make_indexed_movie(tmp_path / "a.mov", frames=37, rate=rate, size=(320, 180))
    # Matroska states no frame count and keeps time in milliseconds: counted, and the rate snapped.
    for path in (movie, remux(movie, tmp_path / "a.mkv")):
        info = probe(path)
        assert info.rate == rate, path.suffix
        assert info.frame_count == 37, path.suffix
        assert (info.width, info.height, info.codec) == (320, 180, "h264")
        assert info.video is not None and info.video.pixel_format == "yuv420p"
        assert info.sample_aspect == 1 and info.display_aspect == Fraction(16, 9)
        assert info.video.time_base > 0 and not info.is_image
    time_base = probe(movie).require_video().time_base
    assert (1 / rate / time_base).denominator == 1  # a frame lasts a whole number of ticks


def test_audio_longer_than_the_picture_does_not_add_frames(tmp_path: Path) -> None:
    # 24 pictures (1 s at 24 fps) and 2.5 s of PCM: the container lasts 2.5 s.
    movie = tmp_path / "long_audio.mov"
    ffmpeg.run(
        [
            "-f", "lavfi", "-t", "1", "-i", "testsrc2=size=160x90:rate=24", "-f", "lavfi", "-t", "2.5",
            "-i", "sine=frequency=440:sample_rate=48000",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "pcm_s16le", "-ac", "2",
        ],
        movie,
    )  # fmt: skip
    info = probe(movie)
    assert info.duration >= Fraction(5, 2)
    assert info.frame_count == 24  # the old probe said round(2.5 * 24) = 60
    assert info.audio is not None
    assert (info.audio.sample_rate, info.audio.channels, info.audio.codec) == (48000, 2, "pcm_s16le")
    assert info.audio.samples == 120000 and info.audio.duration == Fraction(5, 2)


def test_wav_is_probed_to_the_sample(tmp_path: Path) -> None:
    wav = tmp_path / "dialogue.wav"
    ffmpeg.run(["-f", "lavfi", "-i", "sine=frequency=220:sample_rate=48000", "-t", "1.2345", "-c:a", "pcm_s24le"], wav)
    info = probe(wav)
    assert info.video is None and info.audio is not None
    assert info.audio.samples == 59256  # 1.2345 s at 48 kHz, rounded to the sample by ffmpeg's -t
    with pytest.raises(MediaError, match="has no video stream"):
        _ = info.frame_count


@pytest.mark.parametrize("suffix", [".mov", ".mkv"])
def test_start_timecode_from_the_stream(tmp_path: Path, suffix: str) -> None:
    movie = make_indexed_movie(tmp_path / "tc.mov", frames=12, rate=Fraction(25), start_timecode="10:00:00:12")
    path = movie if suffix == ".mov" else remux(movie, tmp_path / "tc.mkv")
    assert probe(path).start_timecode == "10:00:00:12"
    assert probe(make_indexed_movie(tmp_path / "none.mov", frames=2)).start_timecode is None


def test_stills_and_image_sequence_files(tmp_path: Path) -> None:
    files = make_indexed_sequence(tmp_path / "seq", prefix="plate.", start=1001, frames=3)
    info = probe(files[0])
    assert info.is_image and info.frame_count == 1 and (info.width, info.height) == (160, 90)
    jpeg = tmp_path / "title.jpg"
    Image.new("RGB", (200, 100), (10, 20, 30)).save(jpeg)
    assert probe(jpeg).is_image and probe(jpeg).codec == "mjpeg"
    # A sequence pattern given to ffmpeg is checked on its first file, then read as a sequence.
    out = tmp_path / "seq.mp4"
    pattern = str(tmp_path / "seq" / "plate.%04d.png")
    ffmpeg.run(["-framerate", "24", "-start_number", "1001", "-i", pattern, "-c:v", "libx264", "-pix_fmt", "yuv420p"],
               out)  # fmt: skip
    assert probe(out).frame_count == 3


@pytest.mark.parametrize(
    "damage, words",
    [
        ("empty", "is empty, not a readable media file"),
        ("truncated", "not a readable media file"),
        ("garbage", "not a readable media file"),
    ],
)
def test_a_corrupt_file_is_a_sentence(tmp_path: Path, damage: str, words: str) -> None:
    good = make_indexed_movie(tmp_path / "good.mov", frames=24).read_bytes()
    content = {"empty": b"", "truncated": good[: len(good) // 2], "garbage": bytes(range(256)) * 40}[damage]
    bad = tmp_path / "A001C001.mov"
    bad.write_bytes(content)
    with pytest.raises(MediaError, match=words) as raised:
        probe(bad)
    message = str(raised.value)
    assert "A001C001.mov" in message and str(tmp_path) not in message and "Traceback" not in message


def test_missing_files_and_folders(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="does not exist"):
        probe(tmp_path / "nope.mov")
    with pytest.raises(MediaError, match="not a regular file"):
        probe(tmp_path)
