"""Serves the review web app under /app (and redirects / there).

The pages are static files; everything they show comes from the `/v1` API, called by the
browser with the token the user signed in with (kept in the tab's sessionStorage, never in a
URL). A strict Content-Security-Policy keeps the app on its own origin: no CDN can be used
by accident, and injected markup cannot load scripts.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; "
    "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

router = APIRouter(include_in_schema=False)
static_files = StaticFiles(directory=STATIC)


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/app/", status_code=307)


@router.get("/app")
def app_without_slash() -> RedirectResponse:
    return RedirectResponse("/app/", status_code=307)


@router.get("/app/")
def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={**HEADERS, "Cache-Control": "no-cache"})


@router.get("/app/config.json")
def config(request: Request) -> JSONResponse:
    """What the pages need to know about this deployment; nothing secret."""
    settings = request.app.state.settings
    return JSONResponse({"dagster_ui": f"http://{settings.host}:{settings.ui_port}"}, headers=HEADERS)
