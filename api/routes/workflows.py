"""Saved workflows: store a DAG of edit steps, read it back as saved, run it on a library item."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Path, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.deps import GatewayDep, SessionDep
from api.job_service import as_utc, job_view, start_job
from api.library import json_object, validated
from api.library_schemas import WorkflowOut, WorkflowRunOut, WorkflowRunRequest, body_ref
from api.pagination import CursorQuery, LimitQuery, decode_cursor, encode_cursor
from api.params import IdempotencyKey
from api.problems import field_problem, not_found, problem_responses
from api.schemas import Page
from media_pipeline.db.models import Job, MediaItem, Workflow, WorkflowRun
from media_pipeline.library.requests import WorkflowJob
from media_pipeline.library.workflows import WorkflowDefinition, input_type

router = APIRouter(prefix="/workflows", tags=["workflows"])
WorkflowIdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _view(workflow: Workflow) -> WorkflowOut:
    return WorkflowOut(
        id=workflow.id,
        name=workflow.name,
        input_type=input_type(workflow.definition),  # type: ignore[arg-type]
        definition=workflow.definition,
        created_at=as_utc(workflow.created_at),
        url=f"/v1/workflows/{workflow.id}",
    )


def _get(session: Any, workflow_id: int) -> Workflow:
    workflow = session.get(Workflow, workflow_id)
    if workflow is None:
        raise not_found("workflow", workflow_id)
    return workflow


@router.post(
    "",
    status_code=201,
    response_model=WorkflowOut,
    summary="Save a workflow: named steps, each an op list reading the input or another step (`use`)",
    description="Checked as a DAG on save: unique step ids, every `use` names `input` or a step, no cycles, and "
    "types fit (a step's ops are image ops or video ops, matching what it reads). `GET` returns the JSON as saved.",
    responses=problem_responses(400, 413),
    openapi_extra={"requestBody": {"required": True, **body_ref(WorkflowDefinition)}},
)
async def create_workflow(request: Request, response: Response, session: SessionDep) -> WorkflowOut:
    body = await json_object(request)
    if body is None:
        raise field_problem("body", 'send the workflow as JSON: {"name": ..., "steps": [...]}')
    return await run_in_threadpool(_save, body, response, session)


def _save(body: dict[str, Any], response: Response, session: Any) -> WorkflowOut:
    validated(WorkflowDefinition, body, "steps")
    workflow = Workflow(name=body["name"], definition=body)
    session.add(workflow)
    session.commit()
    response.headers["Location"] = f"/v1/workflows/{workflow.id}"
    return _view(workflow)


@router.get(
    "/{workflow_id}", response_model=WorkflowOut, responses=problem_responses(404), summary="A workflow, as saved"
)
def get_workflow(workflow_id: WorkflowIdPath, session: SessionDep) -> WorkflowOut:
    return _view(_get(session, workflow_id))


@router.delete("/{workflow_id}", status_code=204, responses=problem_responses(404), summary="Delete a workflow")
def delete_workflow(workflow_id: WorkflowIdPath, session: SessionDep) -> Response:
    session.delete(_get(session, workflow_id))
    session.commit()
    return Response(status_code=204)


@router.post(
    "/{workflow_id}/runs",
    status_code=202,
    response_model=WorkflowRunOut,
    summary="Run a workflow on a library item: one job whose outputs list every step's result",
    responses=problem_responses(400, 404, 409, 413, 502, 503),
)
def run_workflow(
    workflow_id: WorkflowIdPath,
    body: WorkflowRunRequest,
    response: Response,
    session: SessionDep,
    gateway: GatewayDep,
    idempotency_key: IdempotencyKey = None,
) -> WorkflowRunOut:
    workflow = _get(session, workflow_id)
    # Share-locked until the job is committed, so that a delete of the item and this run take turns.
    item = session.get(MediaItem, body.media_id, with_for_update={"read": True})
    if item is None:
        raise field_problem("media_id", f"there is no media with id {body.media_id}")
    wanted = input_type(workflow.definition)
    if item.type != wanted:
        raise field_problem(
            "media_id", f"workflow {workflow.name!r} takes a {wanted}; media {item.id} is a {item.type}"
        )
    job = start_job(
        session,
        gateway,
        response,
        kind="workflow_run",
        subject_id=workflow_id,
        request=WorkflowJob(workflow_id=workflow_id, media_id=body.media_id),
        idempotency_key=idempotency_key,
    )
    run = session.scalar(sa.select(WorkflowRun).where(WorkflowRun.job_id == job.id))
    if run is None:
        run = WorkflowRun(workflow_id=workflow_id, media_id=body.media_id, job_id=job.id)
        session.add(run)
        session.commit()
    return WorkflowRunOut(
        id=run.id, workflow_id=workflow_id, media_id=run.media_id, created_at=as_utc(run.created_at), job=job
    )


@router.get(
    "/{workflow_id}/runs",
    response_model=Page[WorkflowRunOut],
    responses=problem_responses(404),
    summary="A workflow's executions, newest first",
)
def list_runs(
    workflow_id: WorkflowIdPath,
    session: SessionDep,
    gateway: GatewayDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[WorkflowRunOut]:
    _get(session, workflow_id)
    position = decode_cursor(cursor, id=int)
    query = sa.select(WorkflowRun).where(WorkflowRun.workflow_id == workflow_id).order_by(WorkflowRun.id.desc())
    if position is not None:
        query = query.where(WorkflowRun.id < position["id"])
    rows = list(session.scalars(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    items = []
    for run in rows:
        job = session.get(Job, run.job_id)
        if job is None:
            continue
        view = job_view(session, gateway, job)
        items.append(
            WorkflowRunOut(
                id=run.id, workflow_id=workflow_id, media_id=run.media_id, created_at=as_utc(run.created_at), job=view
            )
        )
    return Page[WorkflowRunOut](items=items, next_cursor=encode_cursor({"id": rows[-1].id}) if more and rows else None)
