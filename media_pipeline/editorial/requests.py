"""What a client asks of the editorial area's jobs, which is also the config of the step that does it.

Each model is both the body of a POST route and its step's Dagster config (`RequestConfig`), so a
run launched from the Dagster UI and a request over HTTP are described and checked the same way:
types by pydantic (strict, no unknown options), values by the model's `problems()`, answered as a
422 naming each field by the API and as the run's failure by the step.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

import dagster as dg
from pydantic import BaseModel, ConfigDict, Field, field_validator

from media_pipeline.core.ffmpeg import X264_PRESETS, crf_problem, exact_rate
from media_pipeline.core.resolution import parse_resolution
from media_pipeline.editorial.conform import EncodeOptions
from media_pipeline.editorial.thumbnails import NAMED_FRAMES
from media_pipeline.platform.job_kinds import RequestConfig

# The thumbnail widths a request or a Launchpad run may ask for.
THUMBNAIL_WIDTHS = (16, 4096)
# A frame offset as the config spells it ("12"): ASCII digits only, as in the OpenAPI pattern.
FRAME_OFFSET = re.compile(r"[0-9]+")


def _frame_schema(schema: dict[str, Any]) -> None:
    # The config holds text (Dagster config has no int-or-string type); a client may send either.
    frame = schema["properties"]["frame"]
    frame.pop("type", None)
    frame["anyOf"] = [
        {"type": "string", "enum": list(NAMED_FRAMES)},
        {"type": "integer", "minimum": 0},
        {"type": "string", "pattern": f"^{FRAME_OFFSET.pattern}$"},
    ]


class ShotSelection(dg.Config):
    shot_ids: list[int] = Field(
        default=[], description="Only these shots (ids from `/v1/cuts/{id}/shots`); empty: every shot"
    )
    shot_names: list[str] = Field(default=[], description="Only shots with these names; empty: every shot")


class ThumbnailOptions(RequestConfig):
    """Options of a thumbnail render (the body of a single shot's)."""

    model_config = ConfigDict(json_schema_extra=_frame_schema)

    frame: str = Field(
        default="middle",
        description="`first`, `middle` (first + duration // 2), `last`, or a frame offset from the shot's first frame "
        "(a whole number, 0 or more)",
    )
    width: int = Field(
        default=480,
        description=f"Pixels, {THUMBNAIL_WIDTHS[0]} to {THUMBNAIL_WIDTHS[1]}; the height follows the display aspect",
    )
    force: bool = Field(default=False, description="Render even where an identical thumbnail can be reused")

    @field_validator("frame", mode="before")
    @classmethod
    def _offset_as_text(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    def problems(self) -> list[tuple[str, str]]:
        problems = []
        if self.frame not in NAMED_FRAMES and not FRAME_OFFSET.fullmatch(self.frame):
            problems.append(
                ("frame", f"frame must be 'first', 'middle', 'last' or a whole number of frames (0 or more) from the "
                          f"shot's first frame, not {self.frame!r}")
            )  # fmt: skip
        narrowest, widest = THUMBNAIL_WIDTHS
        if not narrowest <= self.width <= widest:
            problems.append(("width", f"width must be between {narrowest} and {widest} pixels, not {self.width}"))
        return problems


class ThumbnailConfig(ThumbnailOptions, ShotSelection):
    """A thumbnail render for every shot of the cut, or the shots named: the `shot_thumbnails` config."""


class FinalVideoConfig(RequestConfig):
    """The final video's options: the `final_video` config."""

    resolution: str = Field(
        default="1920x1080",
        description="Output `WIDTHxHEIGHT` in pixels: even numbers from 16x16 up to 7680x4320. The picture is "
        "scaled to fit and letterboxed",
        examples=["1920x1080", "1280x720", "3840x2160"],
    )
    fps: str = Field(default="", description="Output frame rate, e.g. `24000/1001` or `25`; empty: the timeline's")
    crf: int = Field(default=18, description="x264 constant rate factor, 0-51; lower is better and larger")
    preset: str = Field(
        default="medium",
        description="x264 preset: faster encodes are larger at the same quality",
        json_schema_extra={"enum": list(X264_PRESETS)},
    )
    audio: bool = Field(default=True, description="Conform the cut's audio tracks (else no audio stream)")

    def problems(self) -> list[tuple[str, str]]:
        problems = []
        try:
            parse_resolution(self.resolution)
        except ValueError as exc:
            problems.append(("resolution", str(exc)))
        if self.fps and self._fps() is None:
            problems.append(("fps", f"fps must be a number or a ratio like 24000/1001, not {self.fps!r}"))
        if crf := crf_problem(self.crf):
            problems.append(("crf", crf))
        if self.preset not in X264_PRESETS:
            problems.append(("preset", f"preset must be one of {', '.join(X264_PRESETS)}, not {self.preset!r}"))
        return problems

    def _fps(self) -> Fraction | None:
        try:
            rate = exact_rate(self.fps)
        except (ValueError, ZeroDivisionError):
            return None
        return rate if rate > 0 else None

    def options(self, timeline_rate: Fraction) -> EncodeOptions:
        """The encode options, the timeline's rate unless `fps` names another; dg.Failure if any is wrong."""
        self.check()
        width, height = parse_resolution(self.resolution)
        return EncodeOptions(width, height, self._fps() or timeline_rate, self.crf, self.preset, self.audio)


class IngestRequest(BaseModel):
    """An ingest takes no options of its own: everything it needs was stored with the cut at publish."""

    model_config = ConfigDict(extra="forbid")
