"""The original composition system's paths, answered by the compositions area: projects are
compositions, render jobs are `composition_render` jobs, and the progress WebSocket is the
platform's job event stream (the same events as `/v1/jobs/{id}/ws`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from api.composition_schemas import CompositionOut, SegmentOut
from api.deps import GatewayDep, SessionDep, SettingsDep, require_token
from api.job_service import job_view
from api.params import IdempotencyKey
from api.problems import not_found, problem_responses
from api.routes import compositions as v1
from api.routes.job_events import job_ws
from api.routes.jobs import JobId
from api.schemas import JobItem
from media_pipeline.compositions.spec import CompositionIn, CompositionUpdate, RenderRequest, SegmentIn
from media_pipeline.db.models import Job as JobRow

router = APIRouter(
    prefix="/api", tags=["compositions"], dependencies=[Depends(require_token)],
    responses=problem_responses(401, 422, 500),
)  # fmt: skip
# WebSocket routes take no HTTP dependencies; the stream checks the token on the handshake itself.
ws_router = APIRouter(prefix="/api", tags=["compositions"])


class ProjectList(BaseModel):
    projects: list[CompositionOut]


class RenderJobCreated(BaseModel):
    """The original system's answer to a render."""

    jobId: str  # the original API's spelling
    renderId: str
    progressUrl: str = Field(description="The WebSocket of the render's progress")


class RenderJob(BaseModel):
    jobId: str
    projectId: int | None
    status: str = Field(description="queued, running, succeeded, failed or cancelled")
    progress: int = Field(ge=0, le=100, description="Percent")
    stage: str | None
    error: str | None
    segments: list[JobItem] = Field(description="One per segment: status, progress, cache hit or miss, task id")
    outputUrl: str | None = Field(description="The video, once the render has succeeded")


@router.post("/projects", status_code=201, response_model=CompositionOut, summary="Create a project (a composition)",
             responses=v1.SAVE_ERRORS)  # fmt: skip
def create_project(
    body: CompositionIn, response: Response, session: SessionDep, settings: SettingsDep
) -> CompositionOut:
    return v1.create_composition(body, response, session, settings)


@router.get("/projects", response_model=ProjectList, summary="Every project, newest first (at most 200)")
def list_projects(session: SessionDep) -> ProjectList:
    return ProjectList(projects=v1.list_compositions(session, limit=200, cursor=None).items)


@router.get("/projects/{project_id}", response_model=CompositionOut, summary="A project",
            responses=problem_responses(404))  # fmt: skip
def get_project(project_id: v1.CompositionId, session: SessionDep) -> CompositionOut:
    return v1.get_composition(project_id, session)


@router.put("/projects/{project_id}", response_model=CompositionOut, summary="Change a project",
            responses=v1.SAVE_ERRORS)  # fmt: skip
def put_project(project_id: v1.CompositionId, body: CompositionUpdate, session: SessionDep) -> CompositionOut:
    return v1.put_composition(project_id, body, session)


@router.delete("/projects/{project_id}", status_code=204, summary="Delete a project",
               responses=problem_responses(404))  # fmt: skip
def delete_project(project_id: v1.CompositionId, session: SessionDep) -> Response:
    return v1.delete_composition(project_id, session)


@router.get("/projects/{project_id}/segments", response_model=list[SegmentOut], summary="A project's segments",
            responses=problem_responses(404))  # fmt: skip
def list_segments(project_id: v1.CompositionId, session: SessionDep) -> list[SegmentOut]:
    return v1.get_composition(project_id, session).segments


@router.post("/projects/{project_id}/segments", status_code=201, response_model=SegmentOut,
             summary="Add a segment to a project", responses=v1.SAVE_ERRORS)  # fmt: skip
def add_segment(
    project_id: v1.CompositionId, body: SegmentIn, session: SessionDep, settings: SettingsDep
) -> SegmentOut:
    return v1.add_segment(project_id, body, session, settings)


@router.get("/segments/{segment_id}", response_model=SegmentOut, summary="A segment", responses=problem_responses(404))
def get_segment(segment_id: v1.SegmentId, session: SessionDep) -> SegmentOut:
    return v1.get_segment(segment_id, session)


@router.put("/segments/{segment_id}", response_model=SegmentOut, summary="Replace a segment", responses=v1.SAVE_ERRORS)
def put_segment(segment_id: v1.SegmentId, body: SegmentIn, session: SessionDep, settings: SettingsDep) -> SegmentOut:
    return v1.put_segment(segment_id, body, session, settings)


@router.delete("/segments/{segment_id}", status_code=204, summary="Delete a segment", responses=problem_responses(404))
def delete_segment(segment_id: v1.SegmentId, session: SessionDep) -> Response:
    return v1.delete_segment(segment_id, session)


@router.post("/projects/{project_id}/render", status_code=202, response_model=RenderJobCreated,
             summary="Render a project", description="The same as `POST /v1/compositions/{id}/renders`.",
             responses=problem_responses(400, 404, 409, 502, 503))  # fmt: skip
def render_project(
    project_id: v1.CompositionId,
    response: Response,
    session: SessionDep,
    gateway: GatewayDep,
    body: RenderRequest | None = None,
    idempotency_key: IdempotencyKey = None,
) -> RenderJobCreated:
    created = v1.start_render(session, gateway, response, project_id, body or RenderRequest(), idempotency_key)
    return RenderJobCreated(
        jobId=created.job.id, renderId=created.render.id, progressUrl=f"/api/render-jobs/{created.job.id}/progress"
    )


@router.get("/render-jobs/{job_id}", response_model=RenderJob, summary="A render job: status, percent, segments",
            responses=problem_responses(404, 503))  # fmt: skip
def get_render_job(job_id: JobId, session: SessionDep, gateway: GatewayDep) -> RenderJob:
    row = session.get(JobRow, str(job_id))
    if row is None or row.kind != v1.KIND:
        raise not_found("render job", job_id)
    job = job_view(session, gateway, row)
    params: dict[str, Any] = job.params
    project = int(job.subject_id) if job.subject_id and job.subject_id.isdigit() else None
    output = v1.render_view(project, params).output_url if project and params.get("partition_key") else None
    return RenderJob(
        jobId=job.id, projectId=project, status=job.status, progress=job.percent, stage=job.stage, error=job.error,
        segments=job.items, outputUrl=output if job.status == "succeeded" else None,
    )  # fmt: skip


# The platform's job event stream, under the original path: progress, item (one per segment), log, end.
ws_router.websocket("/render-jobs/{job_id}/progress")(job_ws)
