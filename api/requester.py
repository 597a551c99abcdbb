"""Who and what asked for a run: tags on every run the API launches, so the Dagster UI says.

Without them Dagster labels an API-launched run "Manually launched", as if someone had pressed
Materialize in its UI. `user` is Dagster's own tag (the UI shows it as the run's launcher): the
client's `X-Requested-By` header (an email or a name, as its users know it), else the API and the
client's address. `media_pipeline/request` is the route that launched it (`POST /v1/cuts/12/final-video`).
"""

from __future__ import annotations

from contextvars import ContextVar

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

REQUESTED_BY_HEADER = "X-Requested-By"
USER_TAG = "user"  # dagster._core.storage.tags.USER_TAG
REQUEST_TAG = "media_pipeline/request"
MAX_LENGTH = 120

_current: ContextVar[dict[str, str] | None] = ContextVar("media_pipeline_requester", default=None)


def run_tags() -> dict[str, str]:
    """The tags of the request being served (none outside one: a test calling the service)."""
    return dict(_current.get() or {})


def _printable(text: str) -> str:
    # A header is the client's text: shown in the UI, so no control characters, bounded.
    return "".join(ch for ch in text if ch.isprintable()).strip()[:MAX_LENGTH]


def tags_for(scope: Scope) -> dict[str, str]:
    who = _printable(Headers(scope=scope).get(REQUESTED_BY_HEADER, ""))
    if not who:
        client = scope.get("client")
        who = f"API client {client[0]}" if client else "API client"
    return {USER_TAG: who, REQUEST_TAG: _printable(f"{scope['method']} {scope['path']}")}


class RequesterMiddleware:
    """Sets the requester tags for the request's whole handling (routes, their threads)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _current.set(tags_for(scope))
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)
