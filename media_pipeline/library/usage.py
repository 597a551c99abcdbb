"""What uses a library item: derivatives that read it and unfinished jobs that will.

A derivative reads every item in its `inputs` (a concat reads several; `source_id` is only the
first), so deleting any of them loses lineage; a queued or running job reads the items its
request names (a concat's `items`, a workflow run's `media_id`), whatever its subject is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from media_pipeline.db.models import Job, MediaDerivative
from media_pipeline.library.job_kinds import BEST_FRAMES, MEDIA_CONCAT, MEDIA_EDIT, WORKFLOW_RUN
from media_pipeline.library.requests import ConcatJob, LibraryJob
from media_pipeline.platform.job_state import TERMINAL

_REQUEST: TypeAdapter[Any] = TypeAdapter(LibraryJob)
# Every library kind carries its whole request as JSON in `params["request"]`.
LIBRARY_KINDS = tuple(kind.name for kind in (MEDIA_EDIT, MEDIA_CONCAT, WORKFLOW_RUN, BEST_FRAMES))


@dataclass(frozen=True)
class Usage:
    derivatives: list[MediaDerivative]  # that read the item
    jobs: list[Job]  # unfinished, that will read it

    def __bool__(self) -> bool:
        return bool(self.derivatives or self.jobs)


def reads(derivative: MediaDerivative, media_id: int) -> bool:
    return derivative.source_id == media_id or media_id in (derivative.inputs or [])


def derivatives_using(session: Session, media_id: int) -> list[MediaDerivative]:
    # The JSON text of `inputs` holds the id's digits whatever the backend's spacing: a portable
    # pre-filter the database runs, made exact here (12 also matches 1 and 123).
    text = sa.cast(MediaDerivative.inputs, sa.Text)
    candidates = session.scalars(
        sa.select(MediaDerivative)
        .where(sa.or_(MediaDerivative.source_id == media_id, text.like(f"%{media_id}%")))
        .order_by(MediaDerivative.id)
    )
    return [row for row in candidates if reads(row, media_id)]


def request_media(params: dict[str, Any] | None) -> list[int]:
    """The library items a library job's request reads (none for a request it cannot read)."""
    raw = (params or {}).get("request")
    try:
        request = _REQUEST.validate_python(json.loads(raw) if isinstance(raw, str) else raw)
    except (ValidationError, ValueError, TypeError):
        return []
    if isinstance(request, ConcatJob):
        return list(request.items)
    return [request.media_id]


def jobs_using(session: Session, media_id: int) -> list[Job]:
    unfinished = session.scalars(
        sa.select(Job)
        .where(
            Job.status.not_in(TERMINAL),
            sa.or_(
                sa.and_(Job.subject_type == "media", Job.subject_id == str(media_id)),
                Job.kind.in_(LIBRARY_KINDS),
            ),
        )
        .order_by(Job.created_at, Job.id)
    )
    return [
        job
        for job in unfinished
        if (job.subject_type == "media" and job.subject_id == str(media_id)) or media_id in request_media(job.params)
    ]


def usage(session: Session, media_id: int) -> Usage:
    return Usage(derivatives_using(session, media_id), jobs_using(session, media_id))


def forget(session: Session, derivatives: list[MediaDerivative], media_id: int) -> None:
    """Before `media_id` is deleted: its place in each derivative's lineage becomes null (the
    derivative read something that is gone), never a dangling id a later item could take."""
    for derivative in derivatives:
        if derivative.source_id == media_id:
            derivative.source_id = None
        # A new list: the JSON column sees an assignment, not an in-place change.
        derivative.inputs = [None if value == media_id else value for value in derivative.inputs or []]
