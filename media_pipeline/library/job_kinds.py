"""The library's job kinds: video edits and large image edits, concat, workflow runs, best frames.

All four run the `library_edit` Dagster job (one step, `library_derivatives`); the run config
carries the whole request, so re-executing a run from the Dagster UI repeats it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from media_pipeline.db.models import MediaItem, Workflow
from media_pipeline.library.assets import ASSET, read_outputs
from media_pipeline.library.requests import BestFramesJob, ConcatJob, EditJob, WorkflowJob
from media_pipeline.platform.job_kinds import JobKind, Prepared, SubjectError, register
from media_pipeline.settings import load_settings


def step_config(request: BaseModel) -> dict[str, Any]:
    return {"request": request.model_dump_json()}


def outputs_of_run(_session: Session, run_id: str) -> list[dict[str, Any]]:
    return read_outputs(load_settings().artifact_root, run_id)


def _media_subject(session: Session, subject_id: str, request: Any) -> Prepared:
    if not subject_id.isdigit() or session.get(MediaItem, int(subject_id)) is None:
        raise SubjectError(f"there is no media with id {subject_id}", missing=True)
    return Prepared(None, request)


def _workflow_subject(session: Session, subject_id: str, request: Any) -> Prepared:
    if not subject_id.isdigit() or session.get(Workflow, int(subject_id)) is None:
        raise SubjectError(f"there is no workflow with id {subject_id}", missing=True)
    return Prepared(None, request)


def _kind(name: str, model: type[BaseModel], subject: str, description: str) -> JobKind:
    return register(
        JobKind(
            name=name,
            area="library",
            dagster_job="library_edit",
            request_model=model,
            subject_type=subject,
            progress_unit="items",
            config_step=ASSET,
            step_config=step_config,
            description=description,
            step_weights={ASSET: 1.0},
            prepare=_workflow_subject if subject == "workflow" else _media_subject,
            outputs_of_run=outputs_of_run,
        )
    )


MEDIA_EDIT = _kind(
    "media_edit", EditJob, "media", "Edit a library item (video ops, or an image over the inline budget)."
)
MEDIA_CONCAT = _kind(
    "media_concat", ConcatJob, "media", "Library videos one after another (stream copy when they match)."
)
WORKFLOW_RUN = _kind("workflow_run", WorkflowJob, "workflow", "A saved workflow run on one library item.")
BEST_FRAMES = _kind(
    "best_frames", BestFramesJob, "media", "The best frames of a library video, with positions and scores."
)
