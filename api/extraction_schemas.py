"""Request and response bodies of the extraction routes (`/v1/extractions`, and the original
`/process` and `/status/{jobId}` API kept unchanged for its clients)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import JobStatus

ItemStatus = Literal["queued", "running", "succeeded", "failed"]


class ExtractionFrame(BaseModel):
    index: int = Field(description="The frame's position in decode (presentation) order, from 0")
    pts: int = Field(description="Its presentation timestamp, in units of `time_base`")
    time_base: str = Field(description="The stream's time base, e.g. `1/12800`")
    seconds: float = Field(description="(pts - first frame's pts) x time_base")
    seconds_exact: str = Field(description="The same, exactly, as a fraction, e.g. `1001/24000`")
    timecode: str = Field(description="Non-drop-frame HH:MM:SS:FF at the stream's nominal rate")
    crop: dict[str, int] = Field(description="The box taken from the decoded frame: x, y, width, height")
    width: int
    height: int
    requested: list[str] = Field(description="What in the request named this frame")
    score: dict[str, float] | None = Field(default=None, description="`best`: rank, sharpness, exposure, total")
    url: str


class ExtractionItemOut(BaseModel):
    item: str = Field(description="`item-000`, `item-001`, ... in request order")
    source: str = Field(description="What the request named: a file:// or http(s) URL, `media:<id>`, `platform:code`")
    status: ItemStatus
    error: str | None = None
    sha256: str | None = None
    provenance: dict[str, Any] | None = Field(default=None, description="Where the video came from, when")
    stream: dict[str, Any] | None = Field(default=None, description="Size, codec, time base, nominal rate")
    frames: list[ExtractionFrame] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class ExtractionLog(BaseModel):
    ts: dt.datetime
    level: str
    msg: str
    item: str | None = None


class ExtractionJob(BaseModel):
    id: str
    kind: Literal["frame_extraction"]
    status: JobStatus
    progress: float = Field(ge=0, le=1)
    run_id: str | None
    url: str
    created_at: dt.datetime
    updated_at: dt.datetime


class Extraction(BaseModel):
    id: str = Field(description="The batch id, also its Dagster partition in `extraction_batches`")
    status: Literal["queued", "running", "succeeded", "partial", "failed", "cancelled"] = Field(
        description="`partial`: the run succeeded but some items failed (each says why)"
    )
    progress: float = Field(ge=0, le=1, description="Frames written over frames planned; 1 only once finished")
    percent: int = Field(ge=0, le=100)
    error: str | None = None
    counts: dict[str, int]
    items: list[ExtractionItemOut]
    manifest_url: str | None = Field(description="The batch manifest (JSON), once the run has finished")
    logs: list[ExtractionLog]
    job: ExtractionJob
    created_at: dt.datetime
    updated_at: dt.datetime


class ExtractionAccepted(BaseModel):
    extraction: Extraction
    job: ExtractionJob


# -- the original API -------------------------------------------------------------------------


class ProcessItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        description="`youtube`, `instagram`, ...; `file` (code: a path) or `url` (code: a URL)",
    )
    code: str = Field(min_length=1, max_length=2048)


class ProcessRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The real limit is MEDIA_PIPELINE_MAX_VIDEOS_PER_REQUEST (checked with the extraction request).
    items: list[ProcessItem] = Field(min_length=1, max_length=10_000)


class ProcessAccepted(BaseModel):
    jobId: str  # camelCase: the original API's field names


class StatusLog(BaseModel):
    ts: dt.datetime
    level: str
    msg: str


class StatusItem(BaseModel):
    platform: str
    code: str
    status: ItemStatus
    error: str | None = None
    frames: list[ExtractionFrame] = Field(default_factory=list)


class StatusOut(BaseModel):
    jobId: str
    status: Literal["pending", "running", "completed", "failed"]
    progress: int = Field(ge=0, le=100)
    createdAt: dt.datetime
    updatedAt: dt.datetime
    items: list[StatusItem]
    logs: list[StatusLog]
