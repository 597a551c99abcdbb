"""What a frame extraction request may ask for, validated once: the API's body and the run's config.

The same models check a request over HTTP (422 with the field) and inside the run (the run config
carries the request as JSON), so no limit is checked in two places.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from media_pipeline.settings import load_settings

MAX_FRAMES_PER_ITEM = 1000  # frames a `frames`, `timestamps` or `interval` item may write
MAX_BEST_COUNT = 100
MAX_WIDTH = 7680
_TIMECODE = re.compile(r"^\d{2}:\d{2}:\d{2}[:;]\d{2}$")
_PLATFORM = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

Format = Literal["jpg", "png", "webp"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ByIndex(_Strict):
    """Frames by index: 0 is the first frame the decoder hands out."""

    mode: Literal["frames"]
    frames: list[Annotated[int, Field(ge=0)]] = Field(min_length=1, max_length=MAX_FRAMES_PER_ITEM)


class Interval(_Strict):
    """Every N seconds (the frame displayed at 0, s, 2s, ...) or every N frames (0, N, 2N, ...)."""

    mode: Literal["interval"]
    every_seconds: float | None = Field(default=None, ge=0.001, le=86400)
    every_frames: int | None = Field(default=None, ge=1, le=10_000_000)

    @model_validator(mode="after")
    def _one_step(self) -> Interval:
        if (self.every_seconds is None) == (self.every_frames is None):
            raise ValueError("give exactly one of every_seconds and every_frames")
        return self


Timestamp = float | str


class Timestamps(_Strict):
    """Instants as seconds (1.5) or timecodes ("00:00:03:12"); each names the frame displayed then."""

    mode: Literal["timestamps"]
    timestamps: list[Timestamp] = Field(min_length=1, max_length=MAX_FRAMES_PER_ITEM)

    @field_validator("timestamps")
    @classmethod
    def _readable(cls, values: list[Timestamp]) -> list[Timestamp]:
        for value in values:
            seconds_of(value)  # raises with a sentence; timecodes are checked against the rate later
        return values


class Scenes(_Strict):
    """The first frame of each shot (hard cuts); the first frame of the video is always one."""

    mode: Literal["scenes"]
    threshold: float = Field(
        default=30.0, ge=1, le=255, description="Mean luma change (0..255) between two frames that counts as a cut"
    )


class Best(_Strict):
    """The `count` best frames: sharp, well exposed, not near-duplicates of each other."""

    mode: Literal["best"]
    count: int = Field(ge=1, le=MAX_BEST_COUNT)


FramesSpec = Annotated[ByIndex | Interval | Timestamps | Scenes | Best, Field(discriminator="mode")]


class CropBox(_Strict):
    x: int = Field(ge=0)
    y: int = Field(ge=0)
    width: int = Field(ge=1, le=MAX_WIDTH * 2)
    height: int = Field(ge=1, le=MAX_WIDTH * 2)


class AspectCrop(_Strict):
    aspect: str = Field(description="`W:H`, e.g. `1:1`, `9:16`; the largest centred box of that shape")

    @field_validator("aspect")
    @classmethod
    def _ratio(cls, value: str) -> str:
        aspect_ratio(value)
        return value


CropSpec = CropBox | AspectCrop | Literal["auto"] | None


def aspect_ratio(text: str) -> Fraction:
    left, sep, right = text.partition(":")
    if not sep or not left.strip().isdigit() or not right.strip().isdigit() or int(left) == 0 or int(right) == 0:
        raise ValueError(f"{text!r} is not an aspect ratio; write W:H with whole numbers, e.g. 16:9")
    return Fraction(int(left), int(right))


def seconds_of(value: Timestamp) -> Fraction | None:
    """Seconds for a number; None for a timecode (it needs the video's rate)."""
    if isinstance(value, str):
        text = value.strip()
        if _TIMECODE.match(text):
            return None
        try:
            seconds = Fraction(Decimal(text))
        except (InvalidOperation, ValueError):
            raise ValueError(f"{value!r} is neither seconds (1.5) nor a timecode (HH:MM:SS:FF)") from None
    else:
        # Through the decimal text, so 1.1 means 11/10 and not the nearest binary float.
        seconds = Fraction(Decimal(repr(float(value))))
    if seconds < 0:
        raise ValueError(f"{value!r} is before the start; timestamps count from 0 at the first frame")
    return seconds


class ExtractionItem(_Strict):
    """One video: exactly one of `source`, `media_id` or `platform` + `code`."""

    source: str | None = Field(default=None, max_length=2048, description="`file:///abs/path.mp4` or `https://...`")
    media_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    platform: str | None = Field(
        default=None, pattern=_PLATFORM.pattern, description="`youtube`, `instagram`, ...; `file` and `url` too"
    )
    code: str | None = Field(default=None, min_length=1, max_length=2048)
    frames: FramesSpec | None = None
    crop: CropSpec = None
    format: Format | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ExtractionItem:
        given = [self.source is not None, self.media_id is not None, self.platform is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of source, media_id or platform (with code)")
        if self.platform is not None:
            if not self.code:
                raise ValueError(f"platform {self.platform!r} needs a code (the video's id, a path or a URL)")
            if self.platform not in ("file", "url") and "://" in self.code:
                # yt-dlp would fetch any address it is handed (its generic extractor), past the
                # checks a download gets: loopback, private networks, redirects to them.
                raise ValueError(
                    f"platform {self.platform!r} takes the video's id on {self.platform}, not a URL; send a URL as "
                    '{"platform": "url", "code": URL} or as source, where downloads are checked'
                )
        elif self.code is not None:
            raise ValueError("code goes with platform; give platform too")
        if self.source is not None and not self.source.startswith(("file://", "http://", "https://")):
            raise ValueError("source must be a file:///absolute/path or an http(s):// URL")
        return self

    @property
    def crop_given(self) -> bool:
        return "crop" in self.model_fields_set


class ExtractionRequest(_Strict):
    """A batch: the videos, and what to take from each (an item may override frames, crop, format)."""

    # The real limit is MEDIA_PIPELINE_MAX_VIDEOS_PER_REQUEST (below); this bounds the schema.
    items: list[ExtractionItem] = Field(min_length=1, max_length=10_000)
    frames: FramesSpec = Field(default_factory=lambda: Interval(mode="interval", every_seconds=1.0))
    crop: CropSpec = None
    format: Format = "jpg"
    width: int | None = Field(default=None, ge=16, le=MAX_WIDTH, description="Output width; height keeps the shape")

    @field_validator("items")
    @classmethod
    def _item_limit(cls, items: list[ExtractionItem]) -> list[ExtractionItem]:
        limit = load_settings().max_videos_per_request
        if len(items) > limit:
            raise ValueError(
                f"{len(items)} videos is more than one request may hold ({limit}, "
                "MEDIA_PIPELINE_MAX_VIDEOS_PER_REQUEST); split them into several requests"
            )
        return items

    def frames_for(self, item: ExtractionItem) -> ByIndex | Interval | Timestamps | Scenes | Best:
        return item.frames or self.frames

    def crop_for(self, item: ExtractionItem) -> CropSpec:
        return item.crop if item.crop_given else self.crop

    def format_for(self, item: ExtractionItem) -> Format:
        return item.format or self.format
