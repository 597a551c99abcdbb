"""A job's state from its Dagster run: status, the failure sentence, outputs.

Shared by the API (which reads unfinished jobs live from Dagster) and the job tracker sensor
(which writes a job's final state once its run has ended), so both tell the same story.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.orm import Session

from media_pipeline.db.models import Render, RenderStatus
from media_pipeline.platform.job_kinds import JobKind
from media_pipeline.platform.urls import artifact_url

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
RunStatus = dg.DagsterRunStatus

# Every member is listed (a test enforces it), so a Dagster upgrade that adds one fails loudly
# instead of reporting a job in a state clients cannot parse.
RUN_STATUS_TO_JOB: dict[dg.DagsterRunStatus, JobStatus] = {
    RunStatus.QUEUED: "queued",
    RunStatus.NOT_STARTED: "queued",
    RunStatus.STARTING: "queued",
    RunStatus.MANAGED: "queued",
    RunStatus.STARTED: "running",
    # Waiting on external work with no worker, on purpose: not finished, so still running.
    RunStatus.SUSPENDED: "running",
    RunStatus.SUCCESS: "succeeded",
    RunStatus.FAILURE: "failed",
    # A cancel was requested but the run is still stopping (steps are being interrupted);
    # it is `cancelled` only once Dagster reports CANCELED.
    RunStatus.CANCELING: "running",
    RunStatus.CANCELED: "cancelled",
}
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
MAX_ERROR_CHARS = 600


def job_status(status: dg.DagsterRunStatus) -> JobStatus:
    return RUN_STATUS_TO_JOB[status]


def deleted_run_sentence(run_id: str) -> str:
    return f"Dagster has no run {run_id} any more (it was deleted); submit the request again"


_WORKER_EXIT = re.compile(r"unexpectedly|terminated by signal|exited with", re.IGNORECASE)


def failure_sentence(events: Sequence[dg.EventLogEntry], run_id: str) -> str:
    """What went wrong, for a user: the dg.Failure description a step raised, else the first
    line of the error; never a stack trace."""
    fallback: str | None = None
    worker_exit: str | None = None
    for entry in events:
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.ENGINE_EVENT and _WORKER_EXIT.search(event.message or ""):
            # The code server's own report that the run's process died (killed, out of memory).
            worker_exit = event.message
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            data = event.step_failure_data
            user = getattr(data, "user_failure_data", None)
            if user is not None and user.description:
                return clip(user.description)
            if data.error is not None:
                return clip(f"step {event.step_key} failed: {_error_line(data.error)}")
        elif event.event_type == dg.DagsterEventType.RUN_FAILURE and fallback is None:
            error = getattr(event.event_specific_data, "error", None)
            if error is not None:
                fallback = clip(_error_line(error))
    if fallback is None and worker_exit:
        fallback = clip(
            f"{worker_exit.strip().rstrip('.')}: the run's process was killed or ran out of memory; "
            "submit the job again (finished work is reused)"
        )
    return fallback or f"the run failed before any step reported why; open run {run_id} in the Dagster UI"


def _error_line(error: object) -> str:
    # The innermost cause is the user's exception; the outer ones are Dagster's wrappers.
    while getattr(error, "cause", None) is not None:
        error = error.cause  # type: ignore[attr-defined]
    message = str(getattr(error, "message", "") or "").strip()
    first = message.splitlines()[0] if message else type(error).__name__
    # "dagster._core.errors.SomeError: reason" -> "SomeError: reason"
    head, sep, rest = first.partition(": ")
    if sep and "." in head and " " not in head:
        first = f"{head.rsplit('.', 1)[-1]}: {rest}"
    return first


def clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def outputs_for(session: Session, run_id: str | None, kind: JobKind | None = None) -> list[dict[str, Any]]:
    """What the run made that a client can download: what its kind says, else its successful
    renders, in order."""
    if run_id is None:
        return []
    if kind is not None and kind.outputs_of_run is not None:
        return kind.outputs_of_run(session, run_id)
    renders = session.scalars(
        sa.select(Render)
        .where(Render.run_id == run_id, Render.status == RenderStatus.SUCCEEDED, Render.output_path.is_not(None))
        .order_by(Render.id)
    )
    return [
        {"kind": render.kind, "url": artifact_url(render.output_path or ""), "shot_id": render.shot_id}
        for render in renders
    ]
