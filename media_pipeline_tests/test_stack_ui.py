"""The Dagster UI and GraphQL of a real `media-pipeline up`, only through the API's sign-in."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

from media_pipeline_tests.test_stack import stack  # noqa: F401  (the fixture)
from media_pipeline_tests.waiting import running, wait_until

pytestmark = pytest.mark.stack

TOKEN = "stack-test-token"  # test_stack's fixture sets it
LOCATION = """{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }"""
LAUNCH = """mutation($selector: JobOrPipelineSelector!, $config: RunConfigData) {
  launchRun(executionParams: {selector: $selector, runConfigData: $config}) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message }
  }
}"""
RUN = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status
  eventConnection { events { __typename ... on MessageEvent { message } } } } } }"""


def graphql(client: httpx.Client, query: str, variables: dict | None = None) -> httpx.Response:
    return client.post("/dagster/graphql", json={"query": query, "variables": variables or {}})


RUN_LOGS = """subscription($runId: ID!) { pipelineRunLogs(runId: $runId) { __typename
  ... on PipelineRunLogsSubscriptionSuccess { messages { __typename } }
  ... on PipelineRunLogsSubscriptionFailure { message } } }"""


async def run_log_events(api_port: int, session: str, run_id: str) -> int:
    """How many events of the run the first subscription message carries."""
    async with websockets.connect(
        f"ws://127.0.0.1:{api_port}/dagster/graphql",
        subprotocols=["graphql-ws"],  # type: ignore[list-item]
        additional_headers={"Cookie": f"mp_ui_session={session}"},
        open_timeout=60,
    ) as socket:
        await socket.send(json.dumps({"type": "connection_init", "payload": {}}))
        start = {"query": RUN_LOGS, "variables": {"runId": run_id}}
        await socket.send(json.dumps({"id": "1", "type": "start", "payload": start}))
        while True:
            message = json.loads(await asyncio.wait_for(socket.recv(), timeout=120))
            assert message["type"] not in ("error", "connection_error"), message
            if message["type"] == "data":
                logs = message["payload"]["data"]["pipelineRunLogs"]
                assert logs["__typename"] == "PipelineRunLogsSubscriptionSuccess", logs
                return len(logs["messages"])


def test_ui_and_graphql_need_the_token_and_run_config_cannot_move_artifacts(stack):  # noqa: F811
    process, _home, _ui_port, api_port = stack
    base = f"http://127.0.0.1:{api_port}"

    def proxied() -> bool:
        try:
            return httpx.get(f"{base}/dagster/server_info", headers={"X-API-Key": TOKEN}, timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(proxied, timeout=300, what="the Dagster UI through the API", alive=running(process, "media-pipeline up"))
    with httpx.Client(base_url=base, timeout=30) as anonymous:
        assert graphql(anonymous, LOCATION).status_code == 401
        page = anonymous.get("/dagster/runs", headers={"Accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"].startswith("/dagster/signin")
        assert anonymous.post("/dagster/signin", data={"token": "wrong"}).status_code == 401
        exchanged = anonymous.get(f"/dagster/runs?token={TOKEN}&view=list")
        assert exchanged.status_code == 303 and exchanged.headers["location"] == "/dagster/runs?view=list"

    with httpx.Client(base_url=base, timeout=30) as browser:
        signed = browser.post("/dagster/signin", data={"token": TOKEN, "next": "/dagster/runs"})
        assert signed.status_code == 303 and signed.headers["location"] == "/dagster/runs"
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and TOKEN.lower() not in cookie
        assert browser.get("/dagster/runs", headers={"Accept": "text/html"}).status_code == 200

        nodes = graphql(browser, LOCATION).json()["data"]["repositoriesOrError"]["nodes"]
        selector = {"repositoryName": nodes[0]["name"], "repositoryLocationName": nodes[0]["location"]["name"]}

        # A signed-in user launches runs (the launchpad's mutation) ...
        launched = graphql(browser, LAUNCH, {"selector": {**selector, "jobName": "health_check"}}).json()
        result = launched["data"]["launchRun"]
        assert result["__typename"] == "LaunchRunSuccess", result
        run_id = result["run"]["runId"]

        def succeeded() -> bool:
            run = graphql(browser, RUN, {"id": run_id}).json()["data"]["runOrError"]
            messages = [event.get("message") for event in run["eventConnection"]["events"]]
            assert run["status"] not in ("FAILURE", "CANCELED"), messages
            status = run["status"]
            return status == "SUCCESS"

        wait_until(
            succeeded,
            timeout=300,
            what="the health_check run launched through the proxy",
            alive=running(process, "media-pipeline up"),
        )

        # ... and follows its live log, as the UI's run page does: Dagster's own GraphQL
        # subscription over WebSocket (graphql-ws), through the proxy, with the session cookie.
        session = browser.cookies.get("mp_ui_session")
        assert session
        assert asyncio.run(run_log_events(api_port, session, run_id)) > 0

        # ... but no run config can point a run's artifacts (or databases, or media roots) elsewhere.
        for resource, field in (("artifacts", "root"), ("database", "url"), ("media_search", "media_roots")):
            config = {"resources": {resource: {"config": {field: "/tmp/elsewhere"}}}}
            variables = {"selector": {**selector, "jobName": "render_thumbnails"}, "config": config}
            moved = graphql(browser, LAUNCH, variables)
            result = moved.json()["data"]["launchRun"]
            assert result["__typename"] == "RunConfigValidationInvalid", result
            assert any(field in error["message"] for error in result["errors"]), result

    # Subscriptions (the UI's live logs) go over WebSocket: refused without the session.
    async def subscribe() -> None:
        async with websockets.connect(f"ws://127.0.0.1:{api_port}/dagster/graphql", subprotocols=["graphql-ws"]):
            pass

    with pytest.raises(websockets.InvalidStatus) as refused:
        asyncio.run(subscribe())
    assert refused.value.response.status_code == 403
