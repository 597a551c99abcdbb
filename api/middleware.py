"""ASGI middleware that must act before a request body is read: authentication and size limits."""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import authenticated, unauthorized
from api.problems import PROBLEM_MEDIA_TYPE, problem_body


async def send_problem(send: Send, status: int, code: str, detail: str, path: str, headers: dict[str, str]) -> None:
    body = json.dumps(problem_body(status, code, detail, path)).encode()
    raw_headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        *[(name.lower().encode(), value.encode("latin-1")) for name, value in headers.items()],
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class AuthGuardMiddleware:
    """Rejects unauthenticated /v1 requests before their body is read.

    FastAPI reads (and, for uploads, spools to disk) a request body before it runs route
    dependencies; without this guard an anonymous client could make the server store a
    maximum-size upload just to be told 401.
    """

    def __init__(self, app: ASGIApp, token: str, prefix: str = "/v1/") -> None:
        self.app = app
        self.token = token
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"].startswith(self.prefix)
            and scope["method"] != "OPTIONS"  # CORS preflights carry no credentials
            and not authenticated(Headers(scope=scope), self.token)
        ):
            problem = unauthorized()
            await send_problem(send, 401, problem.code, problem.detail, scope["path"], problem.headers)
            return
        await self.app(scope, receive, send)


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int, setting: str = "MEDIA_PIPELINE_MAX_UPLOAD_BYTES") -> None:
        super().__init__(413, too_large_detail(limit, setting))


def too_large_detail(limit: int, setting: str = "MEDIA_PIPELINE_MAX_UPLOAD_BYTES") -> str:
    return (
        f"the request body is larger than this server accepts ({limit} bytes, {setting}); "
        "upload a smaller file or ask the operator to raise the limit"
    )


class BodyLimitMiddleware:
    """413 for bodies over `limit` bytes: up front from Content-Length, else while streaming.

    Chunked uploads have no Content-Length, so the bytes are also counted as they arrive and
    reading stops at the limit; nothing beyond it is ever buffered or stored.
    """

    def __init__(self, app: ASGIApp, limit: int, overrides: dict[str, tuple[int, str]] | None = None) -> None:
        self.app = app
        self.default_limit = limit
        self.overrides = overrides or {}  # exact path -> its own limit and the setting that sets it

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        default = (self.default_limit, "MEDIA_PIPELINE_MAX_UPLOAD_BYTES")
        limit, setting = self.overrides.get(scope["path"].rstrip("/"), default)
        await self._limited(scope, receive, send, limit, setting)

    async def _limited(self, scope: Scope, receive: Receive, send: Send, limit: int, setting: str) -> None:
        declared = _content_length(Headers(scope=scope))
        if declared is not None and declared > limit:
            await send_problem(send, 413, "payload_too_large", too_large_detail(limit, setting), scope["path"], {})
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, setting)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            # Normally the app's problem handler answers; this covers a body read outside it.
            if started:
                raise
            await send_problem(send, 413, "payload_too_large", too_large_detail(limit, setting), scope["path"], {})


def _content_length(headers: Headers) -> int | None:
    value: Any = headers.get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
