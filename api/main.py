"""The FastAPI application: `app` for `uvicorn api.main:app`, `create_app` for tests and embedding."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline

from api import dagster_ui
from api.dagster_gateway import DagsterGateway, GraphQLGateway
from api.library_schemas import with_body_models
from api.middleware import AuthGuardMiddleware, BodyLimitMiddleware
from api.problems import install_problem_handlers, rewrite_problem_media_types
from api.requester import REQUESTED_BY_HEADER, RequesterMiddleware
from api.routes import api_router
from api.web import router as web
from media_pipeline.resources import ArtifactStore
from media_pipeline.settings import Settings, load_settings

logger = logging.getLogger("api")
# What a browser on another origin may send (MEDIA_PIPELINE_CORS_ORIGINS).
CORS_HEADERS = (
    "Authorization",
    "X-API-Key",
    "Content-Type",
    "Idempotency-Key",
    "Range",
    "If-Range",
    REQUESTED_BY_HEADER,
)

DESCRIPTION = """
Publish timelines as cut versions, read their shots, see what changed between versions (the
editorial diff: new, omitted, reinstated, trimmed, rescan, moved, media changed), and launch and
follow the Dagster runs that ingest cuts and render thumbnails and final videos.

Every `/v1` route needs the API token (`MEDIA_PIPELINE_API_TOKEN`) as `Authorization: Bearer <token>`
or `X-API-Key: <token>`. Errors are `application/problem+json` (RFC 9457) with a stable `code`.
Lists answer `{"items": [...], "next_cursor": ...}`; pass `next_cursor` back as `cursor`.
POSTs that start work accept an `Idempotency-Key` header.
"""

DOCS_STATIC_URL = "/docs-static"

TAGS = [
    {"name": "cuts", "description": "Timelines published as cut versions, their shots, diffs and renders"},
    {"name": "shots", "description": "Single shots"},
    {"name": "jobs", "description": "Dagster runs launched through the API: status, progress, logs, outputs"},
    {"name": "slideshows", "description": "Narrated slideshows: scenes, assets, renders (also as /v1/projects)"},
    {"name": "extractions", "description": "Exact frames and crops from batches of videos, with manifests"},
    {"name": "media", "description": "The media library: uploads stored once by content, edits with lineage"},
    {"name": "workflows", "description": "Saved chains of library edits, run as one job"},
    {"name": "compositions", "description": "Generated multi-segment videos: segments, clip generators, renders"},
    {"name": "artifacts", "description": "Produced files"},
    {"name": "health", "description": "Liveness and readiness (no token needed)"},
    {"name": "metrics", "description": "Prometheus metrics (MEDIA_PIPELINE_METRICS_TOKEN, or loopback while unset)"},
]


def create_app(settings: Settings | None = None, gateway: DagsterGateway | None = None) -> FastAPI:
    """The API for `settings` (default: from the environment).

    `gateway` defaults to launching runs through the Dagster webserver's GraphQL API at
    MEDIA_PIPELINE_HOST:MEDIA_PIPELINE_UI_PORT; nothing is contacted until a request needs it.
    """
    settings = settings or load_settings()
    # /docs and /redoc with Swagger UI's and ReDoc's files served by the app itself, from the
    # fastapi-offline package: FastAPI's own pages load them from a CDN, blank without internet.
    app = FastAPIOffline(
        static_url=DOCS_STATIC_URL,
        title="media_pipeline API",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
    )
    app.state.settings = settings
    app.state.artifacts = ArtifactStore.from_settings(settings)
    # The UI proxy's upstream connections; no timeout on reads: GraphQL long-polls and streams.
    app.state.ui_client = httpx.AsyncClient(timeout=httpx.Timeout(30, read=None), follow_redirects=False)
    app.state.gateway = gateway or GraphQLGateway.from_settings(settings)
    if not settings.api_token:
        logger.warning("MEDIA_PIPELINE_API_TOKEN is empty: every /v1 request will be refused with 401")

    install_problem_handlers(app)
    # Added innermost first: CORS answers preflights before the token check, and the token
    # is checked before any body is read or counted.
    app.add_middleware(
        BodyLimitMiddleware,
        limit=settings.max_upload_bytes,
        # Library uploads are media, not timelines: they have their own, larger limit.
        overrides={
            path: (settings.library_max_bytes, "MEDIA_PIPELINE_LIBRARY_MAX_BYTES")
            for path in ("/v1/media", "/bucket/upload")
        },
    )
    app.add_middleware(AuthGuardMiddleware, token=settings.api_token)
    app.add_middleware(RequesterMiddleware)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=list(CORS_HEADERS),
            expose_headers=["Location", "Content-Range", "Accept-Ranges", "Idempotent-Replayed"],
        )
    app.include_router(api_router)
    app.include_router(web.router)
    app.mount("/app/static", web.static_files, name="app-static")
    app.include_router(dagster_ui.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            app.openapi_schema = with_body_models(rewrite_problem_media_types(schema))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


app = create_app()
