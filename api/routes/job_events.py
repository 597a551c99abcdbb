"""A job's live events: Server-Sent Events and a WebSocket, both from api/job_events.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, WebSocket, WebSocketDisconnect
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.deps import GatewayDep, SessionDep, SettingsDep, authenticated
from api.job_events import JobStream, parse_position
from api.problems import ApiProblem, problem_responses
from api.routes.jobs import JobId, get_job
from media_pipeline import db
from media_pipeline.db.models import Job as JobRow

router = APIRouter(prefix="/jobs", tags=["jobs"])
# WebSocket routes take no HTTP dependencies (the token check reads a Request): this router is
# mounted beside the /v1 one and checks the token itself.
ws_router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

EVENTS_DESCRIPTION = """\
Server-Sent Events (`text/event-stream`) of the job as it runs, from the same records that
`GET /v1/jobs/{id}` reads, so the two never disagree. Each event has an `id:`, an `event:`
kind and JSON `data:`:

- `progress`: `{"status", "progress", "percent", "stage"}` whenever one of them changes;
- `item`: one entry of the job's `items[]` (a shot, a segment...) when it changes;
- `log`: one entry of its `logs[]` (`{"ts", "level", "msg", "step", "item"}`);
- `end`: the whole job, exactly as `GET /v1/jobs/{id}` answers; always the last event, also when
  the job had finished before the client connected. The server then closes the stream.

Reconnect with `Last-Event-ID: <id>` (browsers' `EventSource` does it by itself) to receive the
events after that one, without repeats or gaps. Comments (`: ping`) keep idle connections open.
The same events are served as JSON messages by the WebSocket `/v1/jobs/{id}/ws`.
"""

EXAMPLE = (
    'id: 17.0\nevent: progress\ndata: {"status": "running", "progress": 0.3, "percent": 30, "stage": "shot_thumbnails"}'
    '\n\nid: end\nevent: end\ndata: {"id": "...", "status": "succeeded", ...}\n\n'
)


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    summary="Follow a job live (Server-Sent Events)",
    description=EVENTS_DESCRIPTION,
    responses={
        200: {
            "description": "The event stream",
            "content": {"text/event-stream": {"schema": {"type": "string"}, "example": EXAMPLE}},
        },
        **problem_responses(404),
    },
)
def job_events(
    job_id: JobId,
    session: SessionDep,
    settings: SettingsDep,
    gateway: GatewayDep,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", description="Resume after this event id (`<record>.<n>` or `end`)")
    ] = None,
) -> EventSourceResponse:
    after = parse_position(last_event_id)
    get_job(session, job_id)
    stream = JobStream(settings, gateway, str(job_id), after)

    async def sse() -> AsyncIterator[ServerSentEvent]:
        async for event in stream.events():
            yield ServerSentEvent(json.dumps(event.data), event=event.event, id=event.id, sep="\n")

    # `sep="\n"`: plain LF line ends, which every SSE reader splits on (the web app's included).
    return EventSourceResponse(sse(), ping=15, sep="\n", headers={"Cache-Control": "no-store"})


@ws_router.websocket("/{job_id}/ws")
async def job_ws(
    websocket: WebSocket,
    job_id: JobId,
    last_event_id: Annotated[str | None, Query(description="Resume after this event id")] = None,
) -> None:
    """The events of `GET /v1/jobs/{id}/events` as JSON messages `{"id", "event", "data"}`;
    authenticated like every /v1 route (`Authorization: Bearer` or `X-API-Key` on the handshake)."""
    settings = websocket.app.state.settings
    if not authenticated(websocket.headers, settings.api_token):
        # Refused before the handshake completes: the client sees HTTP 403.
        await websocket.close(code=1008, reason="this route needs the API token")
        return
    try:
        after = parse_position(last_event_id or websocket.headers.get("last-event-id"), location="query")
    except ApiProblem as problem:
        await websocket.close(code=1008, reason=problem.detail[:120])
        return
    session = db.session_factory(settings.database_url)()
    try:
        found = session.get(JobRow, str(job_id)) is not None
    finally:
        session.close()
    if not found:
        await websocket.close(code=1008, reason=f"there is no job with id {job_id}")
        return
    await websocket.accept()
    stream = JobStream(settings, websocket.app.state.gateway, str(job_id), after)
    try:
        async for event in stream.events():
            await websocket.send_json({"id": event.id, "event": event.event, "data": event.data})
    except WebSocketDisconnect:
        return
    await websocket.close(code=1000)
