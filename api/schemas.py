"""Request and response bodies. Kept apart from the ORM models so the database can change
without changing what clients see."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from media_pipeline.editorial.requests import FinalVideoConfig, ThumbnailConfig, ThumbnailOptions

T = TypeVar("T")
R = TypeVar("R", bound=BaseModel)

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
CutStatus = Literal["published", "ingested", "failed"]

# Ids are Postgres `integer`s: bounding them keeps a huge id a 404-able request instead of a
# database overflow error.
MAX_ID = 2**31 - 1


class Problem(BaseModel):
    """An RFC 9457 problem document (`application/problem+json`)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(
        description="`urn:media-pipeline:problem:<code>`", examples=["urn:media-pipeline:problem:not_found"]
    )
    title: str = Field(description="The HTTP status phrase")
    status: int
    detail: str = Field(description="What went wrong and what to do about it, for humans")
    code: str = Field(description="Stable machine-readable code; branch on this, not on `detail`")
    instance: str | None = Field(default=None, description="The request path")
    errors: list[FieldError] | None = Field(default=None, description="Per-field errors of a `validation_error`")


class FieldError(BaseModel):
    field: str = Field(description="The offending field, e.g. `frame`, `limit`, `Idempotency-Key`")
    loc: list[str | int] = Field(description="Where the field is: `body`, `query`, `path`, `header`, then its path")
    message: str
    type: str


class Page(BaseModel, Generic[T]):
    """One page of a list; pass `next_cursor` back as `cursor` for the next page (null: no more)."""

    items: list[T]
    next_cursor: str | None


# -- cuts and shots ---------------------------------------------------------------------------


class Cut(BaseModel):
    id: int
    project: str
    name: str
    version: int
    partition_key: str = Field(description="The cut's Dagster partition in `cut_versions`")
    status: str = Field(description="`published` (stored, not ingested yet), `ingested` or `failed`")
    error: str | None = Field(description="Why ingesting failed, when `status` is `failed`")
    rate: str | None = Field(description="Exact timeline frame rate, e.g. `24` or `24000/1001`; null until ingested")
    drop_frame: bool = Field(default=False, description="The cut's timecode is drop-frame (29.97 and 59.94 only)")
    start_tc: str = Field(default="00:00:00:00", description="Timecode of the cut's first frame (record side)")
    notes: list[str] = Field(
        default_factory=list, description="What reading the timeline left out or changed (disabled clips, ...)"
    )
    source_filename: str
    source_url: str | None = Field(description="Download URL of the stored timeline file")
    media_roots: list[str]
    shot_count: int | None
    missing_count: int | None = Field(description="Shots whose media was not found")
    contact_sheet_url: str | None = Field(description="Latest contact sheet (its first page), if one was rendered")
    contact_sheet_urls: list[str] = Field(
        default=[], description="Every page of the latest contact sheet, 200 shots a page, in timeline order"
    )
    created_at: dt.datetime
    updated_at: dt.datetime


class FrameRange(BaseModel):
    """A range in whole frames, with its timecodes (drop-frame, `HH:MM:SS;FF`, where the timeline or
    the media's timecode track is)."""

    start: int = Field(description="First frame")
    duration: int = Field(description="Number of frames")
    end: int = Field(description="One past the last frame (exclusive, like an EDL out point)")
    rate: str = Field(description="Exact frame rate of these frame numbers")
    start_tc: str = Field(description="Timecode of `start`")
    end_tc: str = Field(description="Timecode of `end` (exclusive)")
    drop_frame: bool = Field(default=False, description="The timecodes are drop-frame (29.97 and 59.94 only)")


class Shot(BaseModel):
    id: int
    cut_id: int
    index: int = Field(description="0-based position in timeline order")
    name: str
    track: str
    rate: str | None = Field(description="The cut's timeline rate (the record range's rate)")
    record: FrameRange = Field(
        description="Where the shot sits in the cut: frames from the cut's first frame; the timecodes include "
        "the timeline's start timecode"
    )
    source: FrameRange = Field(description="The source frames the shot uses, as the timeline names them")
    media_path: str | None = Field(
        description="The media file (a sequence: its printf pattern) relative to the media root that holds it; "
        "null when missing"
    )
    media_status: str = Field(description="`linked`, `missing` or `generator`")
    media_kind: str | None = Field(description="`movie`, `sequence`, `still` or `generator`")
    notes: list[str] = Field(description="Everything worth telling a user: relinked from, missing because, ...")
    thumbnail_url: str | None = Field(description="Latest successful thumbnail, or null")
    proxy_url: str | None = Field(default=None, description="Latest review proxy (H.264 MP4), or null")
    filmstrip_url: str | None = Field(default=None, description="The latest proxy's filmstrip (JPEG), or null")


class WatchEvent(BaseModel):
    """A file dropped into a watch folder that did not become a cut version, and why."""

    id: str = Field(description="Sorts by time; pass the last one's id back as `before` for older events")
    at: dt.datetime
    sensor: str = Field(description="The watch folder's sensor in the Dagster UI (`watch_<folder>`)")
    file: str = Field(description="The file's path relative to its watch folder")
    outcome: Literal["skipped", "failed"] = Field(
        description="`skipped`: refused by the intake rules (not a regular file, too large, bad watch.json); "
        "`failed`: an unexpected error while publishing it"
    )
    reason: str = Field(description="What was wrong and how to fix it")


# Every status of media_pipeline.editorial.cut_diff, in its PRECEDENCE order (a test keeps them equal).
DiffStatus = Literal["new", "reinstated", "omitted", "rescan", "cut_change", "media_changed", "moved", "no_change"]


class DiffEntry(BaseModel):
    """One shot of either cut, in change-list order: this cut's shots in edit order, each omitted
    shot right after the shot that preceded it in the other cut."""

    status: DiffStatus = Field(description="The first of `categories` in precedence order")
    categories: list[DiffStatus] = Field(
        description="Every category that applies (a shot can be both moved and trimmed); `status` first"
    )
    name: str = Field(description="The shot's name in this cut (in the other cut for an omitted shot)")
    old_name: str | None = Field(description="The name in the other cut, when it was matched under another name")
    shot_id: int | None = Field(description="The shot in this cut (null when omitted)")
    against_shot_id: int | None = Field(description="The shot in the other cut (null when new or reinstated)")
    index: int | None = Field(description="0-based position in this cut")
    against_index: int | None = Field(description="0-based position in the other cut")
    changes: list[str] = Field(
        description="What changed, one sentence each (`head trimmed 4 frames`, `moved from position 3 to 1 in the "
        "edit order`); positions in sentences count from 1"
    )
    old_source: FrameRange | None = Field(description="The source range in the other cut")
    new_source: FrameRange | None = Field(description="The source range in this cut")


class DiffSummary(BaseModel):
    """How many entries have each status (every status is present, 0 when none)."""

    new: int
    reinstated: int
    omitted: int
    rescan: int
    cut_change: int
    media_changed: int
    moved: int
    no_change: int


class CutDiff(BaseModel):
    cut_id: int
    against: int
    handles: int = Field(description="Frames of handle on each side of the other cut's source ranges")
    summary: DiffSummary
    entries: list[DiffEntry]


# -- jobs -------------------------------------------------------------------------------------


class JobOutput(BaseModel):
    kind: str = Field(description="`thumbnail`, `contact_sheet`, `final_video`, ...")
    url: str = Field(description="`/v1/artifacts/...` or `/v1/media/{id}/content` download URL")
    shot_id: int | None = None
    media_id: int | None = Field(default=None, description="The library item it is (library jobs)")
    step: str | None = Field(default=None, description="The workflow step that made it (workflow runs)")
    cached: bool | None = Field(default=None, description="Found in the edit cache instead of rendered")
    details: dict[str, Any] | None = Field(
        default=None, description="Lineage (source, recipe) and, for best frames, the exact position and score"
    )


class JobLog(BaseModel):
    ts: dt.datetime
    level: str = Field(description="`DEBUG`, `INFO`, `WARNING` or `ERROR`")
    msg: str
    step: str | None = Field(default=None, description="The step that logged it")
    item: str | None = Field(default=None, description="The item (`items[].id`) it is about")


class JobItem(BaseModel):
    """One unit of work inside the run: a shot, a segment, a scene, a source."""

    id: str = Field(description="Stable within the job (a shot's id, a segment's label, ...)")
    name: str = Field(description="What to show (a shot's name, ...)")
    step: str = Field(description="The step that works on it")
    status: Literal["queued", "running", "succeeded", "failed", "skipped", "reused"]
    progress: float = Field(ge=0, le=1)
    error: str | None = Field(description="Why it failed, when `status` is `failed`")
    cache: Literal["hit", "miss"] | None = Field(
        default=None, description="Made before and reused (`hit`) or made by this job (`miss`), where items are cached"
    )
    task_id: str | None = Field(default=None, description="The item's task at an external provider, if it has one")


class WebhookDelivery(BaseModel):
    """One attempt to POST the finished job to its `callback_url`."""

    attempt: int = Field(description="1 for the first attempt")
    ts: dt.datetime
    status_code: int | None = Field(description="The receiver's HTTP status; null when no answer came")
    error: str | None = Field(description="Why the attempt failed, if it did")


class JobSummary(BaseModel):
    id: str
    kind: str = Field(description="The registered job kind: `ingest_cut`, `thumbnails`, `final_video`, ...")
    status: JobStatus = Field(
        description="queued (waiting or starting), running (including while a cancel is being carried out), "
        "succeeded, failed or cancelled"
    )
    progress: float = Field(
        ge=0,
        le=1,
        description="0..1; moves as steps, individual shots and (for a final video) frames finish; never goes back",
    )
    percent: int = Field(ge=0, le=100, description="`progress` as a whole percentage, rounded down")
    stage: str | None = Field(
        description="`queued`, `starting`, the step running or where it stopped (`cut_timeline`, `cut_shots`, "
        "`cut_diff`, `shot_thumbnails`, `contact_sheet`, `final_video`), `cancelling`, or `done`"
    )
    error: str | None = Field(description="For a failed job: what went wrong, in a sentence a user can act on")
    run_id: str | None = Field(description="The Dagster run (null until it is launched)")
    subject_type: str | None = Field(
        description="What the job is about, as its kind names it: `cut`, `shot`, ... (null: a run whose subject "
        "could not be told, e.g. started from the Dagster UI for a partition the API does not know)"
    )
    subject_id: str | None = Field(description="The subject's id, e.g. the cut's id for `subject_type` `cut`")
    source: Literal["api", "sensor", "ui", "retry"] = Field(
        description="Who started the run: the API, a sensor (watch folders), the Dagster UI, or a re-execution "
        "or retry of another run"
    )
    callback_url: str | None = Field(default=None, description="Where the job's final state is POSTed, if anywhere")
    params: dict[str, Any]
    outputs: list[JobOutput]
    created_at: dt.datetime
    updated_at: dt.datetime


class Job(JobSummary):
    items: list[JobItem] = Field(default_factory=list, description="Per shot, segment, scene or source, in plan order")
    logs: list[JobLog] = Field(description="The run's recent log lines, oldest first")
    deliveries: list[WebhookDelivery] = Field(
        default_factory=list, description="Every attempt to deliver the webhook, oldest first"
    )


class CutCreated(BaseModel):
    cut: Cut
    job: Job


# -- requests ---------------------------------------------------------------------------------
# The options of each kind are the area's (media_pipeline/editorial/requests.py); the routes' bodies
# add `callback_url`, which is the API's: it is stored on the job, never put in the run config.

CALLBACK_DESCRIPTION = (
    "Where to POST the job once it has finished (succeeded, failed or cancelled): the job body as "
    "`GET /v1/jobs/{id}` answers it, signed `X-Signature: sha256=<hex HMAC-SHA256 of the raw body>` with the "
    "server's webhook secret (`MEDIA_PIPELINE_WEBHOOK_SECRET`); retried with backoff until a 2xx answer, every "
    "attempt listed in the job's `deliveries`. http(s) only; loopback and private addresses only where the "
    "operator allows them."
)
CallbackUrl = Annotated[str | None, Field(max_length=2048, description=CALLBACK_DESCRIPTION)]


class ThumbnailBody(ThumbnailOptions):
    """A shot's thumbnail render, and where to POST the finished job."""

    callback_url: CallbackUrl = None


class CutThumbnailsBody(ThumbnailConfig):
    """A cut's thumbnail render (all shots or those named), and where to POST the finished job."""

    callback_url: CallbackUrl = None


class FinalVideoBody(FinalVideoConfig):
    """A final video render, and where to POST the finished job."""

    callback_url: CallbackUrl = None


def without_callback(body: BaseModel, model: type[R]) -> R:
    """The kind's own request from a route's body: everything but `callback_url`."""
    return model.model_validate(body.model_dump(exclude={"callback_url"}))


# -- health -----------------------------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok"]


class Check(BaseModel):
    ok: bool
    detail: str | None = None


class Readiness(BaseModel):
    status: Literal["ok"]
    checks: dict[str, Check]


Problem.model_rebuild()
