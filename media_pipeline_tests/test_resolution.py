"""Output sizes: one rule and one sentence in every area, each area its own largest size."""

from __future__ import annotations

import pytest

from media_pipeline.compositions.spec import CompositionUpdate
from media_pipeline.core.resolution import parse_resolution
from media_pipeline.editorial.requests import FinalVideoConfig
from media_pipeline.slideshows.spec import RenderOptions


@pytest.mark.parametrize(
    ("text", "sentence"),
    [
        ("1921x1080", "resolution must be even in width and height"),
        ("8", "resolution must be WIDTHxHEIGHT in pixels, like 1920x1080, not '8'"),
        ("8x8", "resolution must be between 16x16 and 7680x4320, not 8x8"),
        ("8192x4320", "resolution must be between 16x16 and 7680x4320, not 8192x4320"),
    ],
)
def test_a_wrong_size_is_named_with_what_is_accepted(text: str, sentence: str) -> None:
    with pytest.raises(ValueError, match="^" + sentence.replace("(", r"\(")):
        parse_resolution(text)


def final_video_check(resolution: str) -> None:
    # The editorial request is its step's config: its values are checked by problems(), not on construction.
    for _, sentence in FinalVideoConfig(resolution=resolution).problems():
        raise ValueError(sentence)


def test_each_area_answers_with_the_same_sentence_and_its_own_largest_size() -> None:
    assert parse_resolution("7680x4320") == (7680, 4320)
    cases = [
        (lambda: final_video_check("7682x4320"), "between 16x16 and 7680x4320, not 7682x4320"),
        (lambda: RenderOptions(resolution="3842x2160"), "between 16x16 and 3840x2160, not 3842x2160"),
        (lambda: CompositionUpdate(name="c", resolution="4098x2160"), "between 16x16 and 4096x4096, not 4098x2160"),
        (lambda: RenderOptions(resolution="1921x1080"), "even in width and height"),
    ]
    for build, sentence in cases:
        with pytest.raises(ValueError, match=f"resolution must be {sentence}"):
            build()
    assert RenderOptions(resolution="3840x2160").resolution == "3840x2160"
    assert CompositionUpdate(name="c", resolution="4096x4096").resolution == "4096x4096"
