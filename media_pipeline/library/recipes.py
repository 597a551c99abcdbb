"""Edit recipes: every op validated once (422 naming the field), canonicalised for the cache.

A recipe is an ordered list of ops. Image ops: crop, resize, opacity, color, text, format
(png | jpeg | webp). Video ops: trim, format (mp4 | webm | mkv | gif). Whether an op fits the
item's type is checked against the item (`check_applies`), so "trim on an image" names the op.
The canonical form has every default filled in and keys sorted: two requests that mean the same
edit have the same canonical recipe, hence the same cache key.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from media_pipeline.core.frames import timecode_seconds
from media_pipeline.extraction.request import seconds_of

MAX_SIDE = 16384
MAX_OPS = 32
_TIMECODE = re.compile(r"^\d{2}:\d{2}:\d{2}[:;]\d{2}$")
_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")

IMAGE_FORMATS = ("png", "jpeg", "webp")
VIDEO_FORMATS = ("mp4", "webm", "mkv", "gif")


class _Op(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Crop(_Op):
    """The box `x, y, width, height` (pixels, from the top left); it must lie inside the picture."""

    op: Literal["crop"]
    x: int = Field(ge=0, le=MAX_SIDE)
    y: int = Field(ge=0, le=MAX_SIDE)
    width: int = Field(ge=1, le=MAX_SIDE)
    height: int = Field(ge=1, le=MAX_SIDE)


class Resize(_Op):
    """To `width` and/or `height`. One side given: the other keeps the shape. Both: `fit` says how.

    contain: the whole picture inside the box, shape kept (one side may come out smaller);
    cover: the box filled, shape kept, the overflow cut off evenly (exactly the box);
    fill: stretched to exactly the box.
    """

    op: Literal["resize"]
    width: int | None = Field(default=None, ge=1, le=MAX_SIDE)
    height: int | None = Field(default=None, ge=1, le=MAX_SIDE)
    fit: Literal["contain", "cover", "fill"] = "contain"

    @model_validator(mode="after")
    def _a_side(self) -> Resize:
        if self.width is None and self.height is None:
            raise ValueError("give width, height or both")
        return self


class Opacity(_Op):
    """Multiplies the alpha channel by `value` (0 transparent .. 1 unchanged); the output has alpha."""

    op: Literal["opacity"]
    value: float = Field(ge=0, le=1)


class Color(_Op):
    """Pillow's ImageEnhance factors (1 = unchanged), in this order, then optional greyscale."""

    op: Literal["color"]
    brightness: float = Field(default=1.0, ge=0, le=10)
    contrast: float = Field(default=1.0, ge=0, le=10)
    saturation: float = Field(default=1.0, ge=0, le=10)
    grayscale: bool = False


class Text(_Op):
    """`text` drawn with its top left at `x, y`, `size` pixels high, in `color` (#rgb, #rrggbb, #rrggbbaa)."""

    op: Literal["text"]
    text: str = Field(min_length=1, max_length=500)
    x: int = Field(default=0, ge=-MAX_SIDE, le=MAX_SIDE)
    y: int = Field(default=0, ge=-MAX_SIDE, le=MAX_SIDE)
    size: int = Field(default=32, ge=4, le=1024)
    color: str = "#ffffff"

    @field_validator("text")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(ord(ch) < 32 and ch not in "\n\t" for ch in value):
            raise ValueError("control characters are not allowed (newlines and tabs are)")
        return value

    @field_validator("color")
    @classmethod
    def _color(cls, value: str) -> str:
        if not _COLOR.match(value):
            raise ValueError(f"{value!r} is not a colour; write #rgb, #rrggbb or #rrggbbaa")
        return value.lower()


class Format(_Op):
    """The output format: images png | jpeg | webp (`quality` 1..100 for jpeg and webp); videos
    mp4 (H.264) | webm (VP9) | mkv (H.264) | gif, `crf` 0..63 (default 23 for H.264, 32 for VP9)."""

    op: Literal["format"]
    format: Literal["png", "jpeg", "webp", "mp4", "webm", "mkv", "gif"]
    quality: int | None = Field(default=None, ge=1, le=100)
    crf: int | None = Field(default=None, ge=0, le=63)

    @model_validator(mode="after")
    def _options(self) -> Format:
        if self.format in IMAGE_FORMATS:
            if self.crf is not None:
                raise ValueError("crf is for video formats; images take quality")
            if self.format != "png" and self.quality is None:
                self.quality = 85
        else:
            if self.quality is not None:
                raise ValueError("quality is for image formats; videos take crf")
            if self.format in ("mp4", "mkv") and self.crf is None:
                self.crf = 23
            if self.format == "webm" and self.crf is None:
                self.crf = 32
            if self.format in ("mp4", "mkv") and self.crf is not None and self.crf > 51:
                raise ValueError("H.264 crf goes from 0 to 51")
        return self


Instant = int | float | str


class Trim(_Op):
    """Frames `start_frame` (first kept) to `end_frame` (first not kept), counted from 0; or `start`
    and `end` as timecode HH:MM:SS:FF (from 00:00:00:00 at the first frame) or seconds, each
    naming the frame displayed then. Frame-exact: the output has exactly end - start frames."""

    op: Literal["trim"]
    start_frame: int | None = Field(default=None, ge=0)
    end_frame: int | None = Field(default=None, ge=1)
    start: Instant | None = None
    end: Instant | None = None

    @field_validator("start", "end")
    @classmethod
    def _instant(cls, value: Instant | None) -> Instant | None:
        if value is not None:
            instant_seconds(value)
        return value

    @model_validator(mode="after")
    def _one_form(self) -> Trim:
        frames = self.start_frame is not None or self.end_frame is not None
        times = self.start is not None or self.end is not None
        if frames and times:
            raise ValueError("give start_frame/end_frame or start/end, not both")
        if not frames and not times:
            raise ValueError("give start_frame and/or end_frame (or start and/or end)")
        if self.start_frame is not None and self.end_frame is not None and self.end_frame <= self.start_frame:
            raise ValueError("end_frame must be after start_frame (the end frame is not kept)")
        return self

    def frames(self, rate: Fraction, frame_count: int) -> tuple[int, int]:
        """[first, end) in frames of a video at `rate` with `frame_count` frames."""
        if self.start is not None or self.end is not None:
            first = frame_at(self.start, rate) if self.start is not None else 0
            end = frame_at(self.end, rate) if self.end is not None else frame_count
        else:
            first = self.start_frame or 0
            end = self.end_frame if self.end_frame is not None else frame_count
        return first, end


def instant_seconds(value: Instant) -> Fraction | None:
    """Seconds of a number or decimal text; None for a timecode (it needs the rate). The same
    reading as the extraction area's timestamps."""
    if isinstance(value, bool):
        raise ValueError("give seconds (1.5) or a timecode (HH:MM:SS:FF)")
    return seconds_of(float(value) if isinstance(value, int) else value)


def frame_at(value: Instant, rate: Fraction) -> int:
    """The frame a timecode names (drop-frame when written with `;` at 29.97/59.94), or the frame displayed at
    `value` seconds: floor(seconds x rate), exact rationals throughout."""
    seconds = instant_seconds(value)
    if seconds is None:
        seconds = timecode_seconds(str(value).strip(), rate)
    return math.floor(seconds * rate)  # the frame on screen at that instant


EditOp = Annotated[Crop | Resize | Opacity | Color | Text | Format | Trim, Field(discriminator="op")]
IMAGE_OPS = {"crop", "resize", "opacity", "color", "text", "format"}
VIDEO_OPS = {"trim", "format"}


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ops: list[EditOp] = Field(min_length=1, max_length=MAX_OPS)


class OpRefused(ValueError):
    """An op that does not fit the item; `field` is where it is (`ops.0.op`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_applies(ops: list[Any], media_type: str, *, prefix: str = "ops") -> None:
    allowed = IMAGE_OPS if media_type == "image" else VIDEO_OPS
    for number, op in enumerate(ops):
        if op.op not in allowed:
            kinds = ", ".join(sorted(allowed))
            raise OpRefused(
                f"{prefix}.{number}.op", f"{op.op} does not apply to {media_type}s; {media_type} ops are: {kinds}"
            )
        if op.op == "format":
            formats = IMAGE_FORMATS if media_type == "image" else VIDEO_FORMATS
            if op.format not in formats:
                raise OpRefused(
                    f"{prefix}.{number}.format",
                    f"{op.format} is not a {media_type} format; use one of {', '.join(formats)}",
                )
    formats = [op for op in ops if op.op == "format"]
    if len(formats) > 1:
        raise OpRefused(f"{prefix}.{ops.index(formats[1])}.op", "give at most one format op (it sets the output)")
    trims = [op for op in ops if op.op == "trim"]
    if len(trims) > 1:
        raise OpRefused(f"{prefix}.{ops.index(trims[1])}.op", "give at most one trim op")


def canonical(ops: list[Any]) -> list[dict[str, Any]]:
    return [op.model_dump(mode="json") for op in ops]


def recipe_sha256(recipe: Any) -> str:
    text = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
