"""Response bodies of the composition routes (the requests are the area's own models)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.schemas import Job


class TransitionOut(BaseModel):
    type: Literal["cut", "crossfade"]
    frames: int | None = Field(default=None, description="A crossfade's length, frames at the composition's rate")


class SegmentOut(BaseModel):
    id: int
    composition_id: int
    position: int = Field(description="0-based order in the composition")
    generator: str
    prompt: str
    negative_prompt: str
    params: dict[str, Any] = Field(description="As the generator's schema completed them")
    seed: int = Field(description='The stored seed (drawn once if "random" was asked)')
    frames: int = Field(description="Length in frames at the composition's rate")
    seconds: str | None = Field(description="The seconds the client gave, if it gave seconds (converted once)")
    inputs: list[int] = Field(description="Media library ids the generator works from")
    transition: TransitionOut


class CompositionOut(BaseModel):
    id: int
    name: str
    rate: str = Field(description='Exact: "24", "30000/1001"')
    resolution: str
    width: int
    height: int
    soundtrack: int | None = Field(description="The media library id whose audio is the soundtrack; null: silent")
    segments: list[SegmentOut]
    total_frames: int = Field(description="Frames the video will have: every segment's, less each crossfade's")
    created_at: dt.datetime
    updated_at: dt.datetime


class GeneratorOut(BaseModel):
    id: str
    version: str
    description: str
    params_schema: dict[str, Any] = Field(description="JSON Schema of the generator's `params`")
    durations: list[str] | None = Field(description="Clip lengths it makes, seconds; null: any length")
    max_seconds: str
    sizes: list[str] | None = Field(description="Sizes it makes, WIDTHxHEIGHT; null: any size")
    inputs: int = Field(description="How many inputs (media library ids) it takes")
    input_types: list[Literal["image", "video"]] = Field(description="The library media types it takes as inputs")
    requires_input: bool
    needs_key: bool
    key_set: bool
    available: bool
    unavailable_reason: str | None
    pool: str = Field(description="The Dagster pool its generation runs in")
    can_cancel: bool


class RenderOut(BaseModel):
    id: str = Field(description="The render's id; its Dagster partition is `<composition id>.<render id>`")
    composition_id: int
    partition_key: str
    output_url: str = Field(description="Where the video will be once the job has succeeded")


class RenderCreated(BaseModel):
    render: RenderOut
    job: Job
