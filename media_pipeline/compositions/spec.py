"""What a client sends: a composition and its segments (structure only; the generator's own
params schema is applied by `store.py` when a segment is saved).

Lengths: a segment gives `frames` (a whole count at the composition's rate) or `seconds`,
converted to frames once, when saved, as `floor(seconds * rate + 1/2)` (the nearest frame,
halves up), with the seconds read exactly as written (2.5 is 5/2, not a float). The frame count
is what is stored: changing the composition's rate later keeps every segment's frames.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from media_pipeline.core.rates import seconds_to_frames
from media_pipeline.core.resolution import parse_resolution
from media_pipeline.core.timecode import RateError, parse_rate, rate_text

MAX_SEGMENT_SECONDS = 600
MAX_SEGMENTS = 500
SEED_MAX = 2**32 - 1
Text = Annotated[str, Field(max_length=5000, pattern=r"^[^\x00]*$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def exact_seconds(value: float | int | str) -> Fraction:
    """Seconds as written: 2.5 -> 5/2, "1001/1000" -> 1001/1000."""
    try:
        seconds = Fraction(str(value).strip())
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"seconds must be a number such as 2.5 or a ratio such as 1001/500, not {value!r}") from None
    if not 0 < seconds <= MAX_SEGMENT_SECONDS:
        raise ValueError(f"seconds must be above 0 and at most {MAX_SEGMENT_SECONDS}, not {value}")
    return seconds


class Transition(_Model):
    """Into the next segment: a cut, or a crossfade of `frames` (or `seconds`, converted once)."""

    type: Literal["cut", "crossfade"] = "cut"
    frames: int | None = Field(default=None, ge=1, le=10_000)
    seconds: float | str | None = Field(default=None, description="Crossfade length in seconds; or give `frames`")

    @model_validator(mode="after")
    def _length(self) -> Transition:
        if self.type == "cut" and (self.frames is not None or self.seconds is not None):
            raise ValueError("a cut has no length; give frames or seconds only with type crossfade")
        if self.type == "crossfade" and (self.frames is None) == (self.seconds is None):
            raise ValueError("a crossfade needs its length as frames or seconds (one of them)")
        if self.seconds is not None:
            exact_seconds(self.seconds)
        return self

    def stored(self, rate: Fraction) -> dict[str, Any]:
        if self.type == "cut":
            return {"type": "cut"}
        frames = self.frames if self.frames is not None else seconds_to_frames(exact_seconds(self.seconds or 0), rate)
        return {"type": "crossfade", "frames": max(1, frames)}


class SegmentIn(_Model):
    generator: str = Field(min_length=1, max_length=100, description="A generator id from GET /v1/generators")
    prompt: Text = ""
    negative_prompt: Text = ""
    params: dict[str, Any] = Field(default_factory=dict, description="Checked against the generator's params schema")
    seed: int | Literal["random"] = Field(
        default="random",
        description='0..4294967295, or "random": drawn once when saved and stored, so a re-render is reproducible',
    )
    frames: int | None = Field(default=None, ge=1, le=100_000, description="Length at the composition's rate")
    seconds: float | str | None = Field(default=None, description="Length in seconds, converted to frames once")
    inputs: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(
        default_factory=list,
        max_length=8,
        description="Media library ids (POST /v1/media): the images or videos the generator works from",
    )
    transition: Transition = Field(default_factory=Transition, description="Into the next segment")

    @field_validator("seed")
    @classmethod
    def _seed(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 0 <= value <= SEED_MAX:
            raise ValueError(f'seed must be between 0 and {SEED_MAX}, or "random"')
        return value

    @model_validator(mode="after")
    def _one_length(self) -> SegmentIn:
        if (self.frames is None) == (self.seconds is None):
            raise ValueError("give the segment's length as frames or as seconds (one of them)")
        if self.seconds is not None:
            exact_seconds(self.seconds)
        return self

    def frames_at(self, rate: Fraction) -> int:
        if self.frames is not None:
            return self.frames
        return max(1, seconds_to_frames(exact_seconds(self.seconds or 0), rate))


def check_rate(value: str) -> str:
    """The stored form of a rate ("24", "30000/1001"); 29.97 is taken to mean 30000/1001."""
    try:
        rate = parse_rate(value)
    except RateError as exc:
        raise ValueError(str(exc)) from None
    if not 1 <= rate <= 120:
        raise ValueError(f"rate must be between 1 and 120 fps, not {value}")
    return rate_text(rate)


# The `still` generator supersamples its pictures up to 4096 pixels wide; past that a clip would
# be drawn at less than its output size.
LARGEST = (4096, 4096)


def check_resolution(value: str) -> str:
    parse_resolution(value, LARGEST)
    return value


class CompositionUpdate(_Model):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
    rate: str = Field(default="24", max_length=32, description='Exact: "24", "25", "30000/1001" (29.97 also read so)')
    resolution: str = Field(default="1920x1080", pattern=r"^\d{2,4}x\d{2,4}$", description="WIDTHxHEIGHT, even")
    soundtrack: int | None = Field(
        default=None, ge=1, le=2**31 - 1,
        description="A media library id: a video whose audio is mixed under the whole video, trimmed or padded "
        "with silence to its exact length",
    )  # fmt: skip

    _rate = field_validator("rate")(classmethod(lambda cls, v: check_rate(v)))
    _resolution = field_validator("resolution")(classmethod(lambda cls, v: check_resolution(v)))

    @property
    def size(self) -> tuple[int, int]:
        width, height = (int(v) for v in self.resolution.split("x"))
        return width, height


class CompositionIn(CompositionUpdate):
    segments: list[SegmentIn] = Field(default_factory=list, max_length=MAX_SEGMENTS)


class Reorder(_Model):
    order: list[int] = Field(min_length=1, max_length=MAX_SEGMENTS, description="Every segment id, in the new order")


class RenderRequest(_Model):
    force_segments: list[int] = Field(
        default_factory=list, max_length=MAX_SEGMENTS, description="Segment ids to generate again, cached or not"
    )
