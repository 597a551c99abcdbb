"""What a library job is asked to do: the API's request and the run's config, validated once."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from media_pipeline.library.recipes import MAX_OPS, EditOp

MediaId = Annotated[int, Field(ge=1, le=2**31 - 1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EditJob(_Strict):
    action: Literal["edit"] = "edit"
    media_id: MediaId
    ops: list[EditOp] = Field(min_length=1, max_length=MAX_OPS)


class ConcatJob(_Strict):
    action: Literal["concat"] = "concat"
    items: list[MediaId] = Field(min_length=2, max_length=100)


class WorkflowJob(_Strict):
    action: Literal["workflow"] = "workflow"
    workflow_id: MediaId
    media_id: MediaId


class BestFramesJob(_Strict):
    action: Literal["best_frames"] = "best_frames"
    media_id: MediaId
    count: int = Field(default=5, ge=1, le=100)


LibraryJob = Annotated[EditJob | ConcatJob | WorkflowJob | BestFramesJob, Field(discriminator="action")]


class LibraryJobConfig(_Strict):
    job: LibraryJob
