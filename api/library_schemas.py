"""Bodies of the media library's routes (apart from the ORM models in media_pipeline/db)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from api.schemas import Job
from media_pipeline.library.recipes import Recipe
from media_pipeline.library.requests import MediaId
from media_pipeline.library.workflows import WorkflowDefinition

# Bodies the routes read themselves (to name a bad op's field as `ops.0.width`, and to take a
# single edit as query parameters); documented by reference, their schemas added to the document.
BODY_MODELS: tuple[type[BaseModel], ...] = (Recipe, WorkflowDefinition)


def body_ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}


def with_body_models(schema: dict[str, Any]) -> dict[str, Any]:
    _, definitions = models_json_schema(
        [(model, "validation") for model in BODY_MODELS], ref_template="#/components/schemas/{model}"
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, body in definitions.get("$defs", {}).items():
        components.setdefault(name, body)
    return schema


class Lineage(BaseModel):
    source_id: int | None = Field(description="The item it was made from (null once that was deleted)")
    inputs: list[int | None] = Field(
        description="Every item it read, in order (a concat reads several); null where that item was deleted since"
    )
    recipe: dict[str, Any] = Field(description="The canonical recipe: every default filled in")
    run_id: str | None = Field(description="The Dagster run that made it; null: rendered inline")


class Media(BaseModel):
    id: int
    sha256: str
    size: int = Field(description="Bytes")
    type: Literal["image", "video"] = Field(description="From the content (probed), never from the file name")
    filename: str
    content_type: str
    container: str = Field(description="The demuxer that read it (`png_pipe`, `mov,mp4,m4a,3gp,3g2,mj2`, ...)")
    width: int | None
    height: int | None
    codec: str | None
    rate: str | None = Field(description="Exact frame rate, `30000/1001` (videos)")
    frame_count: int | None = Field(description="Frames, counted (videos)")
    duration: str | None = Field(description="Exact seconds as a fraction, `5/2` (videos)")
    duration_seconds: float | None
    has_audio: bool
    created_at: dt.datetime
    url: str
    content_url: str
    derived_from: Lineage | None = Field(default=None, description="How it was made, if it is an edit's output")


class MediaUpload(Media):
    duplicate: bool = Field(description="The content was already in the library: this is the existing item")


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha256: list[str] = Field(min_length=1, max_length=1000)


class CheckAnswer(BaseModel):
    existing: dict[str, int] = Field(description="sha-256 -> media id, for content already in the library")
    missing: list[str]


class EditAnswer(BaseModel):
    """200: rendered inline (`media`, `cached`); 202: running as a job (`job`)."""

    media: Media | None = None
    cached: bool | None = Field(default=None, description="The same edit of the same content was made before")
    job: Job | None = None


class ConcatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[MediaId] = Field(min_length=2, max_length=100)


class BestFramesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(default=5, ge=1, le=100)


class WorkflowOut(BaseModel):
    id: int
    name: str
    input_type: Literal["image", "video"]
    definition: dict[str, Any] = Field(description="The JSON as saved")
    created_at: dt.datetime
    url: str


class WorkflowRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    media_id: MediaId


class WorkflowRunOut(BaseModel):
    id: int
    workflow_id: int
    media_id: int
    created_at: dt.datetime
    job: Job
