"""What a client sends: the scene list and the render request (camelCase or snake_case).

Only the structure is checked here; whether the named files exist is checked when a render
starts (VALIDATE), so scenes may be put before their assets are uploaded.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from media_pipeline.core.ffmpeg import X264_CRF_MAX, X264_CRF_MIN, X264Preset, exact_rate
from media_pipeline.core.resolution import parse_resolution

# A file name inside one of the slideshow's asset folders: no folders, no hidden files.
AssetName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_][A-Za-z0-9 ._()+-]*$")]
SLIDESHOW_ID = r"^[A-Za-z0-9_-]{1,64}$"
SUBDIRS = ("images", "voiceovers", "music")
# Whole frames of up to an hour at any rate stay small integers; a longer scene is a typo.
MAX_SECONDS = 3600.0
# UHD, smaller than an editorial output's 8K: each panned scene is drawn on a canvas larger than
# the output (PAN_MARGIN on every side), per image, before its crossfades.
LARGEST = (3840, 2160)


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Scene(_Model):
    images: list[AssetName] = Field(min_length=1, max_length=3, description="1-3 file names under images/")
    voiceover: AssetName | None = Field(default=None, description="A file under the voice folder, or null")
    text: str | None = Field(default=None, max_length=5000, description="Narration synthesised with `tts`")
    duration: float | None = Field(default=None, gt=0, le=MAX_SECONDS, description="Seconds; null: see timing")
    caption: str | None = Field(default=None, max_length=500, description="Text drawn over the scene")
    fit: Literal["cover", "contain"] = Field(default="cover", description="cover crops, contain letterboxes")
    motion: Literal["pan", "none"] = Field(default="pan", description="A slow pan across each image, or none")

    @model_validator(mode="after")
    def _one_narration(self) -> Scene:
        if self.voiceover is not None and self.text is not None:
            raise ValueError("a scene has either a voiceover file or text to synthesise, not both")
        return self


class SceneList(_Model):
    scenes: list[Scene] = Field(min_length=1, max_length=500)


class Tts(_Model):
    engine: Literal["espeak-ng", "piper"]
    voice: str | None = Field(
        default=None, max_length=200, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.+/-]*$",
        description="espeak-ng voice (`en`, `en-us+f3`) or a piper model path (.onnx)",
    )  # fmt: skip


def parse_rate(value: Any) -> Fraction:
    """25, 29.97, "30000/1001" -> an exact rate; ValueError with a sentence otherwise."""
    try:
        rate = Fraction(str(value).strip()) if not isinstance(value, bool) else None
    except (ValueError, ZeroDivisionError):
        rate = None
    if rate is None or not (1 <= rate <= 120):
        raise ValueError(f"fps must be a number or a ratio like 30000/1001 between 1 and 120, not {value!r}")
    # 29.97 means 30000/1001: decimals are what editorial tools print for NTSC rates.
    return exact_rate(rate)


class RenderOptions(_Model):
    """Every option; `None` means the server's default (MEDIA_PIPELINE_SLIDESHOW_*)."""

    fps: int | str | None = Field(default=None, description='25, 30 or a ratio such as "30000/1001"')
    min_shot: float | None = Field(default=None, gt=0, le=MAX_SECONDS, description="Shortest scene, seconds")
    max_shot: float | None = Field(default=None, gt=0, le=MAX_SECONDS, description="Longest scene, seconds")
    xfade: float | None = Field(default=None, ge=0, le=60, description="Overlap of consecutive scenes, seconds")
    crf: int | None = Field(default=None, ge=X264_CRF_MIN, le=X264_CRF_MAX)
    preset: X264Preset | None = None
    resolution: str | None = Field(default=None, pattern=r"^\d{2,4}x\d{2,4}$", description="WIDTHxHEIGHT, even")
    tts: Tts | None = None
    voice_dir: Literal["voiceovers"] = "voiceovers"
    music: AssetName | None = Field(default=None, description="A file under music/, looped or trimmed")
    ducking: bool = Field(default=False, description="Duck the music under the voice (sidechain compression)")
    loudness: float | None = Field(default=None, ge=-40, le=-5, description="Integrated loudness target, LUFS")

    @field_validator("fps")
    @classmethod
    def _rate(cls, value: int | str | None) -> int | str | None:
        if value is not None:
            parse_rate(value)
        return value

    @field_validator("resolution")
    @classmethod
    def _size(cls, value: str | None) -> str | None:
        if value is not None:
            parse_resolution(value, LARGEST)
        return value


class RenderRequest(_Model):
    output_name: str = Field(
        default="video.mp4", max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*\.mp4$",
        description="File name under output/, ending in .mp4",
    )  # fmt: skip
    render_options: RenderOptions = Field(default_factory=RenderOptions)

    @field_validator("output_name")
    @classmethod
    def _not_a_scene_file(cls, value: str) -> str:
        if value.startswith("scene_"):
            raise ValueError("output names starting with scene_ are the per-scene files; choose another name")
        return value
