"""`GET /metrics` for Prometheus: job figures read from the job table, the library's counters,
this process's CPU and memory (see media_pipeline/platform/metrics.py for what each metric is).

Who may scrape: a client presenting `MEDIA_PIPELINE_METRICS_TOKEN` (Prometheus'
`authorization: {credentials_file: ...}`) or the API token, as a Bearer token (or `X-API-Key`,
as everywhere in the API). While the metrics
token is unset, loopback clients may scrape without one (a Prometheus on the same host) and
every other client is refused with a sentence saying what to set.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import APIRouter, Request, Response
from prometheus_client.exposition import choose_encoder
from sqlalchemy.orm import Session

from api.deps import SettingsDep, authenticated
from api.problems import ApiProblem, problem_responses
from media_pipeline import db
from media_pipeline.platform.metrics import Scrape

router = APIRouter(tags=["metrics"])


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_scraper(request: Request, settings: SettingsDep) -> None:
    # Both comparisons always run, so timing does not tell which token was right.
    by_metrics_token = authenticated(request.headers, settings.metrics_token)
    by_api_token = authenticated(request.headers, settings.api_token)
    if by_metrics_token or by_api_token:
        return
    if not settings.metrics_token:
        if _loopback(request):
            return
        raise ApiProblem(
            403,
            "metrics_loopback_only",
            "/metrics answers only clients on this host while MEDIA_PIPELINE_METRICS_TOKEN is unset; set it and "
            "send it as `Authorization: Bearer <token>` (Prometheus: `authorization: {credentials_file: ...}`)",
        )
    raise ApiProblem(
        401,
        "unauthorized",
        "/metrics needs the metrics token: send `Authorization: Bearer <MEDIA_PIPELINE_METRICS_TOKEN>`",
        headers={"WWW-Authenticate": 'Bearer realm="media_pipeline metrics"'},
    )


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics: jobs by kind and status, queue wait, processing time, uploads",
    description="Prometheus text format (or OpenMetrics when the `Accept` header asks for it). Job figures are "
    "read from the job table at scrape time, so they agree with `/v1/jobs` whichever API process answers. "
    "Needs `Authorization: Bearer <MEDIA_PIPELINE_METRICS_TOKEN>` (or the API token); while that "
    "setting is unset, only loopback clients are answered.",
    responses={
        200: {"description": "The metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
        **problem_responses(
            401,
            403,
            500,
            descriptions={
                401: "The metrics token (or the API token) is missing or wrong (`unauthorized`).",
                403: "No metrics token is set and the client is not on this host (`metrics_loopback_only`).",
            },
        ),
    },
)
def metrics(request: Request, settings: SettingsDep) -> Response:
    require_scraper(request, settings)

    @contextmanager
    def session() -> Iterator[Session]:
        db.migrate(settings.database_url)
        with db.session_scope(settings.database_url) as opened:
            yield opened

    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(content=encode(Scrape(session)), media_type=content_type)
