"""The domain database: what was published, what it contains, what was made from it.

Every table carries the `mp_` prefix so the domain database can share one Postgres database with
Dagster's own storage (which already owns `runs`, `jobs`, `alembic_version`, ...).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: sa.JSON, list[Any]: sa.JSON}


class Timestamped:
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Project(Timestamped, Base):
    __tablename__ = "mp_projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)

    cut_versions: Mapped[list[CutVersion]] = relationship(back_populates="project")


class CutStatus:
    PUBLISHED = "published"  # stored, not yet ingested
    INGESTED = "ingested"  # shots extracted
    FAILED = "failed"


class CutVersion(Timestamped, Base):
    __tablename__ = "mp_cut_versions"
    __table_args__ = (sa.UniqueConstraint("project_id", "name", "version", name="uq_mp_cut_versions_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("mp_projects.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    version: Mapped[int]
    partition_key: Mapped[str] = mapped_column(sa.String(255), unique=True)
    source_path: Mapped[str] = mapped_column(sa.Text)  # the stored copy under the artifact root
    source_filename: Mapped[str] = mapped_column(sa.String(255))  # as the user named it
    source_sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    # Exact rational frame rate, "24000/1001"; set at publish for EDLs, at ingest otherwise.
    rate: Mapped[str | None] = mapped_column(sa.String(32))
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)  # adapter options, media roots
    status: Mapped[str] = mapped_column(sa.String(20), default=CutStatus.PUBLISHED)
    error: Mapped[str | None] = mapped_column(sa.Text)
    shot_count: Mapped[int | None]
    missing_count: Mapped[int | None]

    project: Mapped[Project] = relationship(back_populates="cut_versions")
    shots: Mapped[list[Shot]] = relationship(back_populates="cut_version", order_by="Shot.index")


class MediaStatus:
    LINKED = "linked"
    MISSING = "missing"
    GENERATOR = "generator"


class Shot(Base):
    __tablename__ = "mp_shots"
    __table_args__ = (sa.UniqueConstraint("cut_version_id", "index", name="uq_mp_shots_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cut_version_id: Mapped[int] = mapped_column(sa.ForeignKey("mp_cut_versions.id", ondelete="CASCADE"), index=True)
    index: Mapped[int]  # 0-based, timeline order
    name: Mapped[str] = mapped_column(sa.String(255))
    track: Mapped[str] = mapped_column(sa.String(255), default="")
    # Record range: frames at the timeline rate, counted from the timeline's start.
    record_start: Mapped[int]
    record_duration: Mapped[int]
    # Source range: frames at the source rate, as the timeline names them (timecode frames).
    source_start: Mapped[int]
    source_duration: Mapped[int]
    source_rate: Mapped[str] = mapped_column(sa.String(32))
    media_path: Mapped[str | None] = mapped_column(sa.Text)
    media_url: Mapped[str | None] = mapped_column(sa.Text)  # as recorded in the timeline
    media_status: Mapped[str] = mapped_column(sa.String(20))
    media_kind: Mapped[str | None] = mapped_column(sa.String(20))  # movie | sequence | still | generator
    # Frame of the shot's first source frame inside the media: a decode index for movies, a
    # file number for image sequences. Null when the media is missing.
    media_frame: Mapped[int | None]
    media_rate: Mapped[str | None] = mapped_column(sa.String(32))
    media_frame_count: Mapped[int | None]
    # Everything worth telling a user about this shot: relinked from, missing because, ...
    notes: Mapped[list[Any]] = mapped_column(default=list)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)  # effects, transitions, generator kind

    cut_version: Mapped[CutVersion] = relationship(back_populates="shots")


class RenderStatus:
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Render(Timestamped, Base):
    __tablename__ = "mp_renders"

    id: Mapped[int] = mapped_column(primary_key=True)
    shot_id: Mapped[int | None] = mapped_column(sa.ForeignKey("mp_shots.id", ondelete="CASCADE"), index=True)
    cut_version_id: Mapped[int] = mapped_column(sa.ForeignKey("mp_cut_versions.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(40))  # thumbnail | contact_sheet | slate ...
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Hash of everything that determines the output (media identity, frame, options): two
    # renders with the same key produce the same file, which is what makes reuse safe.
    cache_key: Mapped[str] = mapped_column(sa.String(64), index=True)
    output_path: Mapped[str | None] = mapped_column(sa.Text)  # relative to the artifact root
    status: Mapped[str] = mapped_column(sa.String(20), default=RenderStatus.RUNNING)
    reused_from: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(sa.Text)
    run_id: Mapped[str | None] = mapped_column(sa.String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class JobSource:
    API = "api"  # POSTed to the HTTP API
    SENSOR = "sensor"  # started by a sensor or schedule (watch folders)
    UI = "ui"  # launched from the Dagster UI (launchpad, materialize, backfill)
    RETRY = "retry"  # a re-execution or automatic retry of another run


class Job(Timestamped, Base):
    __tablename__ = "mp_jobs"
    __table_args__ = (sa.Index("ix_mp_jobs_subject", "subject_type", "subject_id"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40), index=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="queued", index=True)
    run_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    # What the job is about, as its job kind names it ("cut" 12, "shot" 7, ...). No foreign key:
    # subjects live in every area's tables, and a job's history outlives its subject.
    subject_type: Mapped[str | None] = mapped_column(sa.String(40))
    subject_id: Mapped[str | None] = mapped_column(sa.String(64))
    source: Mapped[str] = mapped_column(sa.String(20), default=JobSource.API)
    # Where the finished job is POSTed (media_pipeline/platform/webhooks.py); null: nowhere.
    callback_url: Mapped[str | None] = mapped_column(sa.Text)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    request_hash: Mapped[str | None] = mapped_column(sa.String(64))
    error: Mapped[str | None] = mapped_column(sa.Text)
    outputs: Mapped[list[Any]] = mapped_column(default=list)
    # From the run's record (the job tracker writes them): with created_at, the queue wait and
    # processing time /metrics reports. Null until the run has started / ended.
    started_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))


class WebhookDelivery(Base):
    """One attempt to POST a finished job to its callback URL (the API shows them on the job)."""

    __tablename__ = "mp_webhook_deliveries"
    __table_args__ = (sa.UniqueConstraint("job_id", "attempt", name="uq_mp_webhook_deliveries_attempt"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(sa.ForeignKey("mp_jobs.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int]
    ts: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(sa.Text)
    delivered: Mapped[bool] = mapped_column(default=False)
    # When the next attempt is due; null when there is none (delivered, or out of attempts).
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True), index=True)


class MediaItem(Timestamped, Base):
    """One piece of content in the media library: an upload or an edit's output, stored once by sha-256.

    The stored bytes live in the artifact store under `storage_key` (content-addressed); what the
    probe read from the content (not the file name) is recorded beside it.
    """

    __tablename__ = "mp_media"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    type: Mapped[str] = mapped_column(sa.String(10), index=True)  # image | video
    filename: Mapped[str] = mapped_column(sa.String(255))
    content_type: Mapped[str] = mapped_column(sa.String(100))
    container: Mapped[str] = mapped_column(sa.String(100))  # the demuxer that read it: png_pipe, mov,mp4,...
    storage_key: Mapped[str] = mapped_column(sa.String(255))
    width: Mapped[int | None]
    height: Mapped[int | None]
    codec: Mapped[str | None] = mapped_column(sa.String(40))
    rate: Mapped[str | None] = mapped_column(sa.String(32))  # exact rational, "30000/1001"
    frame_count: Mapped[int | None]
    duration: Mapped[str | None] = mapped_column(sa.String(40))  # exact rational seconds, "5/2"
    has_audio: Mapped[bool] = mapped_column(default=False)


class MediaDerivative(Base):
    """An edit's output and where it came from: the cache of (source sha-256, canonical recipe).

    `source_sha256` is the source item's sha-256, or for a concat the sha-256 of its inputs'
    sha-256s in order; the same edit of the same content is rendered once.
    """

    __tablename__ = "mp_media_derivatives"
    __table_args__ = (sa.UniqueConstraint("source_sha256", "recipe_sha256", name="uq_mp_media_derivatives_recipe"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int | None] = mapped_column(sa.ForeignKey("mp_media.id", ondelete="SET NULL"), index=True)
    media_id: Mapped[int] = mapped_column(sa.ForeignKey("mp_media.id", ondelete="CASCADE"), index=True)
    source_sha256: Mapped[str] = mapped_column(sa.String(64))
    recipe: Mapped[dict[str, Any]] = mapped_column(default=dict)  # canonical: every default filled in
    recipe_sha256: Mapped[str] = mapped_column(sa.String(64))
    inputs: Mapped[list[Any]] = mapped_column(default=list)  # media ids read (a concat has several)
    run_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)  # null: rendered inline by the API
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class Workflow(Timestamped, Base):
    """A saved, named chain of edits: steps that each read the input or another step's output."""

    __tablename__ = "mp_workflows"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    definition: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the JSON as saved


class WorkflowRun(Base):
    """One execution of a workflow on one library item: a job whose outputs list every step."""

    __tablename__ = "mp_workflow_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    workflow_id: Mapped[int] = mapped_column(sa.ForeignKey("mp_workflows.id", ondelete="CASCADE"), index=True)
    media_id: Mapped[int] = mapped_column(sa.ForeignKey("mp_media.id", ondelete="CASCADE"))
    job_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class Composition(Timestamped, Base):
    """A generated video: ordered segments, each made by a clip generator (media_pipeline/compositions)."""

    __tablename__ = "mp_compositions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    rate: Mapped[str] = mapped_column(sa.String(32))  # exact: "24", "30000/1001"
    width: Mapped[int]
    height: Mapped[int]
    soundtrack: Mapped[str | None] = mapped_column(sa.String(64))  # a media item's id, once the library exists

    segments: Mapped[list[CompositionSegment]] = relationship(
        back_populates="composition",
        order_by="CompositionSegment.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class CompositionSegment(Timestamped, Base):
    __tablename__ = "mp_composition_segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    composition_id: Mapped[int] = mapped_column(sa.ForeignKey("mp_compositions.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]  # 0-based order; rewritten whole by a reorder
    generator: Mapped[str] = mapped_column(sa.String(100))
    prompt: Mapped[str] = mapped_column(sa.Text, default="")
    negative_prompt: Mapped[str] = mapped_column(sa.Text, default="")
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Drawn once when "random" was asked, so a re-render is reproducible.
    seed: Mapped[int] = mapped_column(sa.BigInteger)
    frames: Mapped[int]  # at the composition's rate; `seconds` were converted once, when saved
    seconds: Mapped[str | None] = mapped_column(sa.String(32))  # as the client wrote them, if it did
    inputs: Mapped[list[Any]] = mapped_column(default=list)
    transition: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"type": "cut"} | {"type": "crossfade", ...}

    composition: Mapped[Composition] = relationship(back_populates="segments")
