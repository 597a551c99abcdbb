"""A composition rendered by a real `media-pipeline up`: the run launched through the webserver's
GraphQL API, queued and executed by the daemon (pools and all), re-rendered from the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from media_pipeline.core.segments import count_frames
from media_pipeline_tests.test_stack_api import Stack, assert_progress, follow, stack  # noqa: F401  (fixture)

pytestmark = pytest.mark.stack


def test_a_composition_renders_and_re_renders_from_the_cache(stack: Stack, tmp_path: Path) -> None:  # noqa: F811
    body = {"name": "stack", "rate": "25", "resolution": "160x90", "segments": [
        {"generator": "local", "frames": 20, "params": {"source": "gradients"}, "seed": 1,
         "transition": {"type": "crossfade", "frames": 5}},
        {"generator": "local", "frames": 15, "prompt": "The end", "params": {"source": "title"}}]}  # fmt: skip
    created = stack.api.post("/v1/compositions", json=body)
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    started = stack.api.post(f"/v1/compositions/{cid}/renders")
    assert started.status_code == 202, started.text
    job, seen = follow(stack, started.json()["job"]["id"], timeout=300)
    assert job["status"] == "succeeded", f"{job}\n{stack.logs()}"
    assert_progress(seen)
    assert [i["cache"] for i in job["items"]] == ["miss", "miss"]
    render_id = started.json()["render"]["id"]
    video = stack.home / "artifacts" / "compositions" / str(cid) / "output" / f"{render_id}.mp4"
    assert count_frames(video) == 30

    again = stack.api.post(f"/v1/compositions/{cid}/renders").json()
    job, _ = follow(stack, again["job"]["id"], timeout=300)
    assert job["status"] == "succeeded" and [i["cache"] for i in job["items"]] == ["hit", "hit"]
