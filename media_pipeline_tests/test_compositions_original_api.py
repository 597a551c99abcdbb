"""The original composition system's paths: /api/projects, segments, render, render jobs and the
progress WebSocket (the platform's job events)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from media_pipeline_tests.test_api_support import assert_problem
from media_pipeline_tests.test_compositions_api import AUTH, app, client, local, settings  # noqa: F401  (fixtures)


def test_projects_segments_render_and_progress(client: TestClient) -> None:  # noqa: F811
    assert_problem(client.get("/api/projects"), 401, "unauthorized")
    project = client.post("/api/projects", json={"name": "old", "rate": "24", "resolution": "96x54"}, headers=AUTH)
    assert project.status_code == 201
    pid = project.json()["id"]
    first = client.post(f"/api/projects/{pid}/segments", json=local(6, seed=3), headers=AUTH).json()
    second = client.post(f"/api/projects/{pid}/segments", json=local(5, params={"source": "testsrc2"}), headers=AUTH)
    assert [s["id"] for s in client.get(f"/api/projects/{pid}/segments", headers=AUTH).json()] == [
        first["id"], second.json()["id"]]  # fmt: skip
    assert client.get(f"/api/segments/{first['id']}", headers=AUTH).json()["seed"] == 3
    changed = client.put(f"/api/segments/{first['id']}", json=local(8, seed=4), headers=AUTH).json()
    assert changed["frames"] == 8
    assert [p["id"] for p in client.get("/api/projects", headers=AUTH).json()["projects"]] == [pid]
    assert client.put(f"/api/projects/{pid}", json={"name": "new", "rate": "24", "resolution": "96x54"},
                      headers=AUTH).json()["name"] == "new"  # fmt: skip

    started = client.post(f"/api/projects/{pid}/render", headers=AUTH)
    assert started.status_code == 202, started.text
    job_id = started.json()["jobId"]
    assert started.json()["progressUrl"] == f"/api/render-jobs/{job_id}/progress"
    job = client.get(f"/api/render-jobs/{job_id}", headers=AUTH).json()
    assert job["status"] == "succeeded" and job["progress"] == 100 and job["projectId"] == pid
    assert [s["cache"] for s in job["segments"]] == ["miss", "miss"]
    assert job["outputUrl"].endswith(f"/compositions/{pid}/output/{started.json()['renderId']}.mp4")

    with client.websocket_connect(f"/api/render-jobs/{job_id}/progress", headers=AUTH) as ws:
        events = []
        while True:
            message = ws.receive_json()
            events.append(message)
            if message["event"] == "end":
                break
    kinds = {e["event"] for e in events}
    assert {"progress", "item", "end"} <= kinds
    finished = [e["data"] for e in events if e["event"] == "item" and e["data"]["status"] == "succeeded"]
    assert {i["id"] for i in finished} == {f"segment_{first['id']}", f"segment_{second.json()['id']}"}
    assert events[-1]["data"]["status"] == "succeeded"

    with pytest.raises(WebSocketDisconnect), client.websocket_connect(f"/api/render-jobs/{job_id}/progress") as ws:
        ws.receive_json()  # no token: refused at the handshake
    assert client.delete(f"/api/segments/{first['id']}", headers=AUTH).status_code == 204
    assert client.delete(f"/api/projects/{pid}", headers=AUTH).status_code == 204
    assert_problem(client.get(f"/api/projects/{pid}", headers=AUTH), 404, "not_found")
    assert_problem(client.get("/api/render-jobs/8d6f2c1e-0000-4000-8000-000000000000", headers=AUTH), 404, "not_found")
