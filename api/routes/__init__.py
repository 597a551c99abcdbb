"""Routers, one per resource; `/v1` routes all require the API token."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.deps import require_token
from api.params import single_query_values
from api.problems import problem_responses
from api.routes import (
    artifacts,
    compositions,
    compositions_original,
    cuts,
    extractions,
    health,
    job_events,
    jobs,
    media,
    metrics,
    shots,
    slideshows,
    watch_events,
    workflows,
)

v1_router = APIRouter(
    prefix="/v1",
    dependencies=[Depends(require_token), Depends(single_query_values)],
    responses=problem_responses(401, 422, 500),
)
v1_router.include_router(cuts.router)
v1_router.include_router(shots.router)
v1_router.include_router(jobs.router)
v1_router.include_router(job_events.router)
v1_router.include_router(artifacts.router)
v1_router.include_router(slideshows.router)
v1_router.include_router(extractions.router)
v1_router.include_router(watch_events.router)
v1_router.include_router(media.router)
v1_router.include_router(workflows.router)
v1_router.include_router(compositions.router)

api_router = APIRouter()
api_router.include_router(health.router)
# Outside /v1: Prometheus scrapes with a token of its own (MEDIA_PIPELINE_METRICS_TOKEN).
api_router.include_router(metrics.router)
api_router.include_router(v1_router)
api_router.include_router(job_events.ws_router)
# The original batch API, outside /v1 so its clients keep working unchanged; it needs the token too.
api_router.include_router(extractions.original_router)
api_router.include_router(media.original_router)
api_router.include_router(compositions_original.router)
api_router.include_router(compositions_original.ws_router)
