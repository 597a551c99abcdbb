"""Frame extraction on generated movies whose every frame shows its index: exact frames, the
timestamp rule on constant and variable frame rates, scenes, best frames, crops, formats."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from PIL import Image

from media_pipeline.core import ffmpeg
from media_pipeline.core import frames as core_frames
from media_pipeline.core.ffmpeg import MediaError
from media_pipeline.extraction.crops import CropError
from media_pipeline.extraction.extract import ItemPlan, extract_item
from media_pipeline.extraction.request import (
    AspectCrop,
    Best,
    ByIndex,
    CropBox,
    Interval,
    Scenes,
    Timestamps,
)
from media_pipeline.extraction.selection import ByIndexSelector, InstantSelector
from media_pipeline.samples import make_indexed_movie, make_scene_movie, read_index

RATES = [Fraction(25), Fraction(24000, 1001), Fraction(30000, 1001)]
VFR_FRAMES = 40


def vfr_seconds(n: int) -> Fraction:
    # Frame durations alternate 1/30 s and 2/30 s (see the vfr_movie fixture's setpts expression).
    return Fraction(n + n // 2, 30)


@pytest.fixture(scope="module")
def movies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("extraction_movies")
    made = {
        str(rate): make_indexed_movie(folder / f"cfr_{rate.numerator}.mp4", frames=90, rate=rate, gop=12)
        for rate in RATES
    }
    made["vfr"] = make_indexed_movie(
        folder / "vfr.mp4",
        frames=VFR_FRAMES,
        rate=Fraction(30),
        pts_expr="(N+floor(N/2))/30/TB",
        timescale=90000,
    )
    return made


def plan(frames: object, crop: object = None, fmt: str = "jpg", width: int | None = None) -> ItemPlan:
    return ItemPlan(frames=frames, crop=crop, format=fmt, width=width)  # type: ignore[arg-type]


def indices_in(out: Path, records: list[dict]) -> list[int]:
    """The index each written image shows, read back from its pixels."""
    shown = []
    for record in records:
        with Image.open(out / record["file"]) as image:
            shown.append(read_index(image))
    return shown


@pytest.mark.parametrize("key", [*(str(r) for r in RATES), "vfr"])
def test_frames_by_index_are_exactly_the_named_frames(movies, tmp_path, key):
    wanted = [0, 1, 7, 13, 38, 39]
    result = extract_item(movies[key], plan(ByIndex(mode="frames", frames=wanted)), tmp_path)
    assert [r["index"] for r in result.frames] == wanted
    assert indices_in(tmp_path, result.frames) == wanted
    for record in result.frames:
        expected = vfr_seconds(record["index"]) if key == "vfr" else record["index"] / Fraction(key)
        assert Fraction(record["seconds_exact"]) == expected
        assert Fraction(record["pts"]) * Fraction(record["time_base"]) == expected
        assert record["seconds"] == float(expected)
    assert result.warnings == []


def test_indices_past_the_end_are_named_in_a_warning(movies, tmp_path):
    result = extract_item(movies["25"], plan(ByIndex(mode="frames", frames=[89, 90, 400])), tmp_path)
    assert [r["index"] for r in result.frames] == [89]
    assert result.warnings == ["frames 90, 400 do not exist: the video has 90 frames (0..89)"]


@pytest.mark.parametrize("rate", RATES, ids=str)
def test_a_timestamp_names_the_frame_displayed_at_that_instant(movies, tmp_path, rate):
    # Exactly at frame 30's start -> 30; a hair before -> 29; half-way through 30 -> 30; timecodes
    # count frames at the nominal rate (00:00:01:05 at 25 fps is frame 30).
    fps = -(-rate.numerator // rate.denominator)
    start_30 = Fraction(30) / rate
    timecode = f"00:00:01:{30 - fps:02d}"
    stamps = [float(start_30 + Fraction(1, 1000)), f"{float(start_30 - Fraction(1, 1000)):.6f}", timecode, 0.0]
    spec = Timestamps(mode="timestamps", timestamps=stamps)
    result = extract_item(movies[str(rate)], plan(spec), tmp_path)
    by_index = {r["index"]: r["requested"] for r in result.frames}
    assert sorted(by_index) == [0, 29, 30]
    assert sorted(by_index[30]) == sorted([str(stamps[0]), timecode])
    assert indices_in(tmp_path, result.frames) == [0, 29, 30]
    assert result.frames[2]["timecode"] == timecode


def test_timestamps_on_variable_frame_rate_follow_each_frames_own_pts(movies, tmp_path):
    # Frame 5 starts at 7/30 s and lasts 2/30 s (until frame 6 at 9/30 s).
    stamps = [7 / 30 + 0.0001, 8 / 30, "0.29", 9 / 30 + 0.0001, 100.0]
    result = extract_item(movies["vfr"], plan(Timestamps(mode="timestamps", timestamps=stamps)), tmp_path)
    assert [r["index"] for r in result.frames] == [5, 6]
    assert len(result.frames[0]["requested"]) == 3
    assert indices_in(tmp_path, result.frames) == [5, 6]
    assert result.warnings == ["100.0: after the last frame; no frame is displayed then"]


def expected_by_rule(positions: list[Fraction], instants: list[Fraction]) -> list[int]:
    """The rule written out plainly: the last frame whose position is <= t."""
    picked = []
    for t in instants:
        index = max(i for i, position in enumerate(positions) if position <= t)
        if index not in picked:
            picked.append(index)
    return picked


def test_every_seconds_on_variable_frame_rate(movies, tmp_path):
    result = extract_item(movies["vfr"], plan(Interval(mode="interval", every_seconds=0.1)), tmp_path)
    positions = [vfr_seconds(n) for n in range(VFR_FRAMES)]
    last_end = positions[-1] + Fraction(1, 30)
    instants = [k * Fraction(1, 10) for k in range(100) if k * Fraction(1, 10) < last_end]
    expected = expected_by_rule(positions, instants)
    assert [r["index"] for r in result.frames] == expected
    assert indices_in(tmp_path, result.frames) == expected


@pytest.mark.parametrize("rate", RATES, ids=str)
def test_every_seconds_and_every_frames_on_constant_rates(movies, tmp_path, rate):
    seconds = extract_item(movies[str(rate)], plan(Interval(mode="interval", every_seconds=1.0)), tmp_path / "s")
    positions = [n / rate for n in range(90)]
    instants = [Fraction(k) for k in range(4) if Fraction(k) < 90 / rate]
    assert [r["index"] for r in seconds.frames] == expected_by_rule(positions, instants)
    assert indices_in(tmp_path / "s", seconds.frames) == [r["index"] for r in seconds.frames]
    by_frames = extract_item(movies[str(rate)], plan(Interval(mode="interval", every_frames=20)), tmp_path / "f")
    assert indices_in(tmp_path / "f", by_frames.frames) == [0, 20, 40, 60, 80]


def test_scenes_finds_each_hard_cut_at_its_first_frame(tmp_path):
    cuts = [0, 17, 18, 41, 70]
    movie = make_scene_movie(tmp_path / "scenes.mp4", frames=90, cuts=cuts, rate=Fraction(24000, 1001))
    out = tmp_path / "out"
    result = extract_item(movie, plan(Scenes(mode="scenes")), out)
    assert [r["index"] for r in result.frames] == cuts
    for record in result.frames:
        with Image.open(out / record["file"]) as image:
            band = image.crop((0, image.height * 2 // 5 + 3, image.width, image.height * 3 // 5 - 3))
            assert read_index(band) == record["index"]
        assert record["score"]["change"] >= 30 or record["index"] == 0


def test_best_picks_the_sharp_frames_among_blurred_ones(tmp_path):
    sharp = [12, 40, 77]
    enable = "+".join(f"eq(n\\,{n})" for n in sharp)
    movie = make_indexed_movie(
        tmp_path / "blurred.mp4",
        frames=100,
        rate=Fraction(25),
        levels=(64, 192),
        extra_filters=f"boxblur=6:1:enable='not({enable})'",
    )
    out = tmp_path / "out"
    result = extract_item(movie, plan(Best(mode="best", count=3)), out)
    assert [r["index"] for r in result.frames] == sharp
    assert indices_in(out, result.frames) == sharp
    for record in result.frames:
        assert set(record["score"]) == {"rank", "sharpness", "exposure", "total"}
        assert 0 < record["score"]["exposure"] <= 1


def test_best_skips_near_duplicates(tmp_path):
    # A still picture: every frame is the same, so only one is not a near-duplicate of another.
    movie = make_indexed_movie(tmp_path / "still.mp4", frames=30, levels=(64, 192), extra_filters="setpts=N/TB")
    still = tmp_path / "still_one.mp4"
    ffmpeg.run(
        ["-i", str(movie), "-vf", "select=eq(n\\,5),loop=29:1:0", "-c:v", "libx264", "-preset", "ultrafast"], still
    )
    result = extract_item(still, plan(Best(mode="best", count=3)), tmp_path / "out")
    assert len(result.frames) == 1
    assert result.warnings == ["only 1 frames are not near-duplicates of each other; asked for 3"]


def test_crop_boxes_are_exact(movies, tmp_path):
    box = CropBox(x=40, y=20, width=200, height=100)
    result = extract_item(movies["25"], plan(ByIndex(mode="frames", frames=[21]), crop=box), tmp_path / "box")
    assert result.frames[0]["crop"] == {"x": 40, "y": 20, "width": 200, "height": 100}
    with Image.open(tmp_path / "box" / result.frames[0]["file"]) as image:
        assert image.size == (200, 100)
    square = extract_item(
        movies["25"], plan(ByIndex(mode="frames", frames=[21]), crop=AspectCrop(aspect="1:1")), tmp_path / "sq"
    )
    assert square.frames[0]["crop"] == {"x": 70, "y": 0, "width": 180, "height": 180}
    tall = extract_item(
        movies["25"], plan(ByIndex(mode="frames", frames=[21]), crop=AspectCrop(aspect="9:16")), tmp_path / "t"
    )
    assert tall.frames[0]["crop"] == {"x": 109, "y": 0, "width": 101, "height": 180}
    with pytest.raises(CropError, match="does not fit in the 320x180 frame"):
        extract_item(
            movies["25"],
            plan(ByIndex(mode="frames", frames=[0]), crop=CropBox(x=300, y=0, width=40, height=10)),
            tmp_path,
        )


def test_auto_crop_removes_letterbox_and_pillarbox(tmp_path):
    movie = make_indexed_movie(
        tmp_path / "boxed.mp4",
        frames=10,
        size=(240, 120),
        levels=(64, 192),
        extra_filters="pad=320:180:40:30:black",
    )
    out = tmp_path / "out"
    result = extract_item(movie, plan(ByIndex(mode="frames", frames=[0, 5]), crop="auto"), out)
    for record in result.frames:
        assert record["crop"] == {"x": 40, "y": 30, "width": 240, "height": 120}
    assert indices_in(out, result.frames) == [0, 5]


@pytest.mark.parametrize("fmt", ["jpg", "png", "webp"])
def test_formats_and_width(movies, tmp_path, fmt):
    result = extract_item(movies["25"], plan(ByIndex(mode="frames", frames=[9]), fmt=fmt, width=160), tmp_path)
    record = result.frames[0]
    assert record["file"] == f"frame_000009.{fmt}"
    with Image.open(tmp_path / record["file"]) as image:
        assert image.format == {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}[fmt]
        assert image.size == (160, 90) == (record["width"], record["height"])
        assert read_index(image) == 9
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_a_truncated_file_fails_with_a_sentence_and_no_path(movies, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(movies["25"].read_bytes()[:3000])
    with pytest.raises(MediaError) as caught:
        extract_item(broken, plan(ByIndex(mode="frames", frames=[0])), tmp_path / "out")
    assert "broken.mp4 is not a readable video file" in caught.value.summary
    assert str(tmp_path) not in caught.value.summary
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("hello")
    with pytest.raises(MediaError, match="not a readable video file"):
        core_frames.stream_info(not_video)


def test_timecodes(movies):
    rate = Fraction(30000, 1001)
    assert core_frames.timecode(Fraction(30) / rate, rate) == "00:00:01:00"
    assert core_frames.timecode_seconds("00:00:01:00", rate) == Fraction(30) / rate
    with pytest.raises(ValueError, match="frames go up to 24"):
        core_frames.timecode_seconds("00:00:01:25", Fraction(25))
    # Drop-frame, as written with `;`: a minute's first two numbers do not exist, so 00:01:00;02
    # is frame 1800 (a non-drop count would say 1802, two frames late).
    assert core_frames.timecode_seconds("00:01:00;02", rate) == Fraction(1800) / rate
    assert core_frames.timecode_seconds("00:10:00;00", rate) == Fraction(17982) / rate
    assert core_frames.timecode(Fraction(1800) / rate, rate, drop_frame=True) == "00:01:00;02"
    assert core_frames.timecode_seconds("00:01:00;02", Fraction(25)) == Fraction(1502, 25)  # no drop-frame at 25


def test_decoding_stops_after_the_last_frame_asked_for(movies, tmp_path):
    decoded = []
    selector = ByIndexSelector([2, 4])
    for _, frame in core_frames.decode(movies["25"]):
        decoded.append(frame.index)
        selector.feed(frame)
        if selector.done:
            break
    assert decoded == [0, 1, 2, 3, 4]
    instants = InstantSelector(iter([(Fraction(1, 10), "0.1")]), rate=Fraction(25), open_ended=False)
    picks = []
    for _, frame in core_frames.decode(movies["25"]):
        picks += instants.feed(frame)
        if instants.done:
            break
    assert [p.frame.index for p in picks] == [2] and frame.index == 3  # 0.1 s is frame 2, known at frame 3
