"""The slideshow frame plan and spec validation (no media): whole frames once, exact rates."""

from __future__ import annotations

from fractions import Fraction

import pytest
from pydantic import ValidationError

from media_pipeline.slideshows.plan import PlanError, TimingOptions, frame_to_sample, plan_frames, seconds_to_frames
from media_pipeline.slideshows.spec import RenderRequest, SceneList, parse_rate

NTSC = Fraction(30000, 1001)


def timing(rate: Fraction, min_shot: float = 2.5, max_shot: float = 8.0, xfade: float = 0.5) -> TimingOptions:
    return TimingOptions(rate=rate, min_shot=min_shot, max_shot=max_shot, xfade=xfade)


@pytest.mark.parametrize(
    ("seconds", "rate", "frames"),
    [
        (2.5, Fraction(25), 63),  # 62.5 rounds half up
        (2.5, Fraction(30), 75),
        (2.5, NTSC, 75),  # 74.925 -> 75
        (0.5, NTSC, 15),  # 14.985 -> 15
        (0.1, Fraction(25), 3),  # 2.5 -> 3: read as 1/10 exactly, not 0.1000000000000000055
        (5.0, NTSC, 150),  # 149.85 -> 150
        (90.0, NTSC, 2697),  # 2697.3
    ],
)
def test_seconds_become_nearest_frame_halves_up(seconds: float, rate: Fraction, frames: int) -> None:
    assert seconds_to_frames(seconds, rate) == frames


@pytest.mark.parametrize("rate", [Fraction(25), Fraction(30), NTSC], ids=["25", "30", "30000/1001"])
def test_plan_total_is_sum_of_scene_frames_minus_crossfades(rate: Fraction) -> None:
    # 90 s of 5.0 s scenes would drift by 0.3 frame per scene at 29.97 if each were rounded from
    # its start time in seconds; here every scene is rounded once and starts are sums of frames.
    durations: list[float | None] = [5.0] * 18
    plan = plan_frames(durations, [None] * 18, timing(rate))
    per_scene = seconds_to_frames(5.0, rate)
    xfade = seconds_to_frames(0.5, rate)
    assert [s.frames for s in plan.scenes] == [per_scene] * 18
    assert plan.total_frames == 18 * per_scene - 17 * xfade
    assert [s.start for s in plan.scenes] == [i * (per_scene - xfade) for i in range(18)]
    assert plan.scenes[-1].end == plan.total_frames


@pytest.mark.parametrize("rate", [Fraction(25), Fraction(30), NTSC], ids=["25", "30", "30000/1001"])
def test_scene_length_comes_from_duration_then_voiceover_then_min_shot_clamped(rate: Fraction) -> None:
    voice = Fraction(144000 + 1, 48000)  # 3 s and one sample: rounds up to the next frame
    plan = plan_frames([3.0, None, None, 20.0, 1.0], [None, voice, None, None, None], timing(rate))
    first, second, third, fourth, fifth = plan.scenes
    assert (first.source, first.frames) == ("duration", seconds_to_frames(3.0, rate))
    assert second.source == "voiceover" and second.frames == -(-voice * rate // 1)
    assert second.frames * 48000 >= voice * rate * 48000  # the whole voice fits
    assert (third.source, third.frames) == ("minShot", seconds_to_frames(2.5, rate))
    assert fourth.clamped and fourth.frames == seconds_to_frames(8.0, rate)
    assert fifth.clamped and fifth.frames == seconds_to_frames(2.5, rate)
    assert plan.total_frames == sum(s.frames for s in plan.scenes) - 4 * seconds_to_frames(0.5, rate)


def test_frame_starts_map_to_the_nearest_audio_sample() -> None:
    assert frame_to_sample(25, Fraction(25)) == 48000
    assert frame_to_sample(1, Fraction(30)) == 1600
    assert frame_to_sample(1, NTSC) == 1602  # 1601.6
    assert frame_to_sample(30000, NTSC) == 48048000


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (timing(Fraction(25), min_shot=0.01), "minShot"),
        (timing(Fraction(25), min_shot=3.0, max_shot=2.0), "maxShot"),
        (timing(Fraction(25), min_shot=1.0, xfade=0.6), "xfade"),
    ],
)
def test_impossible_timing_names_the_option(options: TimingOptions, field: str) -> None:
    with pytest.raises(PlanError) as raised:
        plan_frames([None], [None], options)
    assert raised.value.field == field and field in str(raised.value)


def test_rates_are_exact() -> None:
    assert parse_rate(25) == 25 and parse_rate("30000/1001") == NTSC and parse_rate("29.97") == NTSC
    for bad in ("fast", "0", "1/0", True, 500):
        with pytest.raises(ValueError, match="fps must be"):
            parse_rate(bad)


def test_spec_accepts_camel_and_snake_case() -> None:
    camel = RenderRequest.model_validate(
        {
            "outputName": "a.mp4",
            "renderOptions": {"fps": "30000/1001", "minShot": 2, "maxShot": 6, "voiceDir": "voiceovers"},
        }
    )
    snake = RenderRequest.model_validate(
        {"output_name": "a.mp4", "render_options": {"fps": "30000/1001", "min_shot": 2, "max_shot": 6}}
    )
    assert camel == snake and camel.render_options.min_shot == 2


def test_spec_errors_carry_field_paths() -> None:
    with pytest.raises(ValidationError) as raised:
        SceneList.model_validate({"scenes": [{"images": ["a.jpg"]}, {"images": []}, {"images": ["../x.jpg"]}]})
    locations = {tuple(e["loc"]) for e in raised.value.errors()}
    assert ("scenes", 1, "images") in locations and ("scenes", 2, "images", 0) in locations
    with pytest.raises(ValidationError) as raised:
        SceneList.model_validate({"scenes": []})
    assert raised.value.errors()[0]["loc"] == ("scenes",)
    with pytest.raises(ValidationError) as raised:
        RenderRequest.model_validate({"renderOptions": {"fps": "fast", "unknown": 1}})
    locations = {tuple(e["loc"]) for e in raised.value.errors()}
    assert ("renderOptions", "fps") in locations and ("renderOptions", "unknown") in locations
