"""The UI proxy's WebSocket leg against a real WebSocket server on loopback (uvicorn)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from api.dagster_ui import COOKIE, session_value
from api.main import create_app
from media_pipeline.settings import load_settings
from media_pipeline_tests.up_process import free_port
from media_pipeline_tests.waiting import wait_until


async def graphql_ws(websocket: WebSocket) -> None:
    await websocket.accept(subprotocol="graphql-ws")
    message = await websocket.receive_text()
    await websocket.send_text(f"ack:{message}")
    await websocket.close()


@pytest.fixture
def upstream() -> Iterator[int]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(Starlette(routes=[WebSocketRoute("/dagster/graphql", graphql_ws)]), port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=300, what="the upstream WebSocket server")
    yield port
    server.should_exit = True
    thread.join(timeout=30)


def test_websocket_is_proxied_for_a_signed_in_browser_only(upstream: int, tmp_path) -> None:
    settings = load_settings({"MEDIA_PIPELINE_HOME": str(tmp_path), "MEDIA_PIPELINE_API_TOKEN": "ui-token"})
    app = create_app(settings.model_copy(update={"ui_port": upstream}))
    with TestClient(app) as client:
        with pytest.raises(WebSocketDisconnect), client.websocket_connect("/dagster/graphql"):
            pass
        client.cookies.set(COOKIE, session_value("ui-token"))
        started = time.monotonic()
        with client.websocket_connect("/dagster/graphql", subprotocols=["graphql-ws"]) as socket:
            assert socket.accepted_subprotocol == "graphql-ws"
            socket.send_text('{"type": "connection_init"}')
            assert socket.receive_text() == 'ack:{"type": "connection_init"}'
        assert time.monotonic() - started < 60
