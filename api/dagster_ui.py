"""The Dagster UI and its GraphQL API behind the API token, under `/dagster/`.

The webserver listens on loopback only and is reached through this proxy. A browser signs in
once with the token (a form, or `?token=` exchanged for the cookie and dropped from the URL):
the cookie is an HMAC of the token, HttpOnly and SameSite=Strict, so no other site can make the
browser use it and no script can read it. Programs may send the token as a header instead.
GraphQL subscriptions (the UI's live run logs) are proxied over WebSocket with the same check.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import html
from typing import Annotated
from urllib.parse import urlencode

import httpx
import websockets
from fastapi import APIRouter, Form, Request, WebSocket
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from api.deps import authenticated, token_matches, unauthorized
from api.problems import ApiProblem
from media_pipeline.settings import Settings

UI_PREFIX = "/dagster"
COOKIE = "mp_ui_session"
# Hop-by-hop headers and the ones this proxy sets itself.
_DROP_REQUEST = {"host", "cookie", "authorization", "x-api-key", "connection", "keep-alive", "upgrade", "te"}
_DROP_RESPONSE = {"connection", "keep-alive", "transfer-encoding"}  # the body is passed on as sent

router = APIRouter(prefix=UI_PREFIX, include_in_schema=False)


def session_value(token: str) -> str:
    """The cookie's value: derived from the token, so rotating the token signs everyone out."""
    return hmac.new(token.encode(), b"media_pipeline dagster ui session", hashlib.sha256).hexdigest()


def signed_in(cookies: dict[str, str], headers: object, token: str) -> bool:
    if token and hmac.compare_digest(cookies.get(COOKIE, ""), session_value(token)):
        return True
    return authenticated(headers, token)  # type: ignore[arg-type]


def upstream_host(settings: Settings) -> str:
    # As the gateway: a wildcard bind address is where the webserver listens, not an address.
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"{host}:{settings.ui_port}"


SIGN_IN = """<!doctype html><html><head><meta charset="utf-8"><title>Sign in: media_pipeline</title></head>
<body style="font-family: sans-serif; max-width: 28rem; margin: 4rem auto">
<h1>Dagster UI</h1><p>Sign in with the API token (<code>MEDIA_PIPELINE_API_TOKEN</code>).</p>
<form method="post" action="{action}"><input type="hidden" name="next" value="{next}">
<input type="password" name="token" autofocus style="width: 100%" aria-label="API token">
<p>{error}</p><button type="submit">Sign in</button></form></body></html>"""


def sign_in_page(next_path: str, error: str = "", status: int = 200) -> HTMLResponse:
    page = SIGN_IN.format(action=f"{UI_PREFIX}/signin", next=html.escape(next_path), error=html.escape(error))
    return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})


def _safe_next(next_path: str) -> str:
    # Only back into the UI: never an open redirect to another site.
    return next_path if next_path.startswith(UI_PREFIX + "/") and not next_path.startswith("//") else UI_PREFIX + "/"


def _signed_in_response(settings: Settings, location: str) -> RedirectResponse:
    response = RedirectResponse(_safe_next(location), status_code=303)
    response.set_cookie(
        COOKIE, session_value(settings.api_token), httponly=True, samesite="strict", path=UI_PREFIX, max_age=12 * 3600
    )
    return response


@router.get("/signin")
def sign_in_form(next: str = UI_PREFIX + "/") -> HTMLResponse:
    return sign_in_page(_safe_next(next))


@router.post("/signin")
def sign_in(
    request: Request, token: Annotated[str, Form()], next: Annotated[str, Form()] = UI_PREFIX + "/"
) -> Response:
    settings: Settings = request.app.state.settings
    if not token_matches(token, settings.api_token):
        return sign_in_page(_safe_next(next), "That is not the API token.", status=401)
    return _signed_in_response(settings, next)


@router.api_route("/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
async def proxy(path: str, request: Request) -> Response:
    settings: Settings = request.app.state.settings
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
    if "token" in request.query_params:  # exchanged once; the token never stays in a URL
        if not token_matches(request.query_params["token"], settings.api_token):
            return sign_in_page(request.url.path, "That is not the API token.", status=401)
        return _signed_in_response(settings, request.url.path + (f"?{urlencode(query)}" if query else ""))
    if not signed_in(dict(request.cookies), request.headers, settings.api_token):
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(f"{UI_PREFIX}/signin?{urlencode({'next': request.url.path})}", status_code=303)
        raise unauthorized()
    client: httpx.AsyncClient = request.app.state.ui_client
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _DROP_REQUEST]
    outgoing = client.build_request(
        request.method,
        f"http://{upstream_host(settings)}{UI_PREFIX}/{path}",
        params=query,
        headers=headers,
        content=request.stream(),
    )
    try:
        answer = await client.send(outgoing, stream=True)
    except httpx.HTTPError:
        raise ApiProblem(
            503,
            "dagster_unavailable",
            "the Dagster webserver is not answering; check that it runs (logs/webserver.log)",
        ) from None
    kept = {k: v for k, v in answer.headers.items() if k.lower() not in _DROP_RESPONSE}
    return StreamingResponse(
        answer.aiter_raw(), status_code=answer.status_code, headers=kept, background=BackgroundTask(answer.aclose)
    )


@router.websocket("/{path:path}")
async def proxy_websocket(path: str, websocket: WebSocket) -> None:
    settings: Settings = websocket.app.state.settings
    if not signed_in(dict(websocket.cookies), websocket.headers, settings.api_token):
        await websocket.close(code=4401, reason="sign in at /dagster/signin first")
        return
    protocols = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    target = f"ws://{upstream_host(settings)}{UI_PREFIX}/{path}"
    try:
        upstream_socket = await websockets.connect(target, subprotocols=protocols or None)  # type: ignore[arg-type]
    except (OSError, websockets.WebSocketException):
        await websocket.close(code=1011, reason="the Dagster webserver is not answering")
        return
    await websocket.accept(subprotocol=upstream_socket.subprotocol)

    async def client_to_upstream() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            await upstream_socket.send(message.get("text") if message.get("text") is not None else message["bytes"])

    async def upstream_to_client() -> None:
        async for message in upstream_socket:
            if isinstance(message, str):
                await websocket.send_text(message)
            else:
                await websocket.send_bytes(message)

    tasks = [asyncio.create_task(client_to_upstream()), asyncio.create_task(upstream_to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await upstream_socket.close()
        with contextlib.suppress(RuntimeError):  # already closed by the client
            await websocket.close()
