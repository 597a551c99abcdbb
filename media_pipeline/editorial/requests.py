"""What a client asks of the editorial area's jobs: the bodies of its POST routes.

Each model is validated once, by pydantic, before anything is created; the job kinds
(`job_kinds.py`) turn a validated request into the run config of the step that does the work.
The limits (widths, resolutions, presets) are the same ones the assets check in their own config,
so a launchpad run and an API request are held to the same rules.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidatorFunctionWrapHandler, field_validator
from pydantic_core import PydanticCustomError

from media_pipeline.core.ffmpeg import X264_CRF_MAX, X264_CRF_MIN, X264Preset
from media_pipeline.core.resolution import parse_resolution

# The thumbnail widths a request or a Launchpad run may ask for (the step checks the same bounds).
THUMBNAIL_WIDTHS = (16, 4096)

FrameChoice = Literal["first", "middle", "last"] | Annotated[int, Field(ge=0, strict=True)]


class ThumbnailRequest(BaseModel):
    """Options of one thumbnail render."""

    # Strict: "480" is not a width, and an unknown option is a typo worth reporting.
    model_config = ConfigDict(extra="forbid", strict=True)

    frame: FrameChoice = Field(
        default="middle",
        description="`first`, `middle` (first + duration // 2), `last`, or a frame offset from the shot's first frame",
    )
    width: int = Field(
        default=480,
        ge=THUMBNAIL_WIDTHS[0],
        le=THUMBNAIL_WIDTHS[1],
        description="Pixels; the height follows the display aspect",
    )
    force: bool = Field(default=False, description="Render even where an identical thumbnail can be reused")

    @field_validator("frame", mode="wrap")
    @classmethod
    def _frame_choice(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise PydanticCustomError(
                "frame_choice",
                "must be 'first', 'middle', 'last' or a whole number of frames (0 or more) from the shot's first frame",
            ) from None


class FinalVideoRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    resolution: str = Field(
        default="1920x1080",
        pattern=r"^\d{1,5}x\d{1,5}$",
        description="Output `WIDTHxHEIGHT` in pixels: even numbers from 16x16 up to 7680x4320. The picture is "
        "scaled to fit and letterboxed",
        examples=["1920x1080", "1280x720", "3840x2160"],
    )
    crf: int = Field(
        default=18,
        ge=X264_CRF_MIN,
        le=X264_CRF_MAX,
        description="x264 constant rate factor; lower is better and larger",
    )
    preset: X264Preset = Field(
        default="medium", description="x264 preset: faster encodes are larger at the same quality"
    )
    audio: bool = Field(default=True, description="Include the cut's audio")

    @field_validator("resolution", mode="wrap")
    @classmethod
    def _resolution(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        # One sentence for every way a resolution can be wrong, instead of a regex in the answer.
        try:
            text = handler(value)
            parse_resolution(text)
        except ValidationError:
            raise PydanticCustomError("resolution", "must be WIDTHxHEIGHT in pixels, like 1920x1080") from None
        except ValueError as exc:
            raise PydanticCustomError("resolution", str(exc)) from None
        return text

    def size(self) -> tuple[int, int]:
        return parse_resolution(self.resolution)


class ThumbnailJob(ThumbnailRequest):
    """A thumbnail request as its run carries it out: for every shot of the cut, or the shots named."""

    shot_ids: list[Annotated[int, Field(ge=1)]] = Field(
        default=[], description="Only these shots (ids from `/v1/cuts/{id}/shots`); empty: every shot"
    )


class IngestRequest(BaseModel):
    """An ingest takes no options of its own: everything it needs was stored with the cut at publish."""

    model_config = ConfigDict(extra="forbid")
