"""The command line against a real `media-pipeline up`: publish and wait, follow a job (plain lines,
and a progress bar on a terminal), export and publish the export again, the API's error sentences."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from media_pipeline.samples import make_indexed_movie
from media_pipeline_tests.test_api_support import clip, write_otio
from media_pipeline_tests.test_stack_api import (
    TOKEN,
    Stack,
    stack,  # noqa: F401  (fixture)
)
from media_pipeline_tests.waiting import service_environment

pytestmark = pytest.mark.stack
CLI = str(Path(sys.executable).parent / "media-pipeline")


def cli(running: Stack, *args: str, url: str | None = None, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = service_environment(
        {
            "MEDIA_PIPELINE_API_URL": url or str(running.api.base_url),
            "MEDIA_PIPELINE_API_TOKEN": TOKEN,
        }
    )
    streams = {"stdout": kwargs.pop("stdout", subprocess.PIPE), "stderr": subprocess.PIPE}
    return subprocess.run([CLI, *args], env=env, text=True, timeout=180, **streams, **kwargs)  # type: ignore[call-overload]


def test_publish_follow_export_and_errors(stack: Stack, tmp_path: Path) -> None:  # noqa: F811
    plate = make_indexed_movie(tmp_path / "A001C001.mov", frames=48, rate=Fraction(24), start_timecode="01:00:00:00")
    cut_file = write_otio(tmp_path / "reel1.otio", [clip("sh010", plate, 0, 12), clip("sh020", plate, 20, 12)])

    published = cli(stack, "publish", str(cut_file), "--project", "cli", "--wait")
    assert published.returncode == 0, published.stderr + stack.logs()
    first, *_, last = published.stdout.strip().splitlines()
    assert first.startswith("cut ") and "cli.reel1.v001: ingest job" in first
    assert " succeeded 100%" in last
    job_id = first.split("ingest job ")[1].split()[0]
    cut_id = first.split()[1]

    shown = cli(stack, "jobs", job_id)
    assert shown.returncode == 0 and shown.stdout.startswith(f"{job_id} ingest_cut succeeded 100%")
    assert job_id in cli(stack, "jobs").stdout

    # On a terminal, --follow draws a progress bar and ends with the job's line.
    controller, terminal = pty.openpty()
    try:
        followed = cli(stack, "jobs", job_id, "--follow", stdout=terminal)
        os.close(terminal)
        screen = b""
        while chunk := _read(controller):
            screen += chunk
    finally:
        os.close(controller)
    assert followed.returncode == 0
    assert b"] 100% succeeded" in screen and b"\r" in screen and f"{job_id} ingest_cut succeeded".encode() in screen

    target = tmp_path / "exported.edl"
    exported = cli(stack, "export", cut_id, "--format", "edl", "-o", str(target))
    assert exported.returncode == 0, exported.stderr
    assert "001  " in target.read_text() and "01:00:00:00" in target.read_text()
    again = cli(stack, "publish", str(target), "--project", "cli", "--name", "reel1_edl", "--rate", "24", "--wait")
    assert again.returncode == 0, again.stderr
    again_cut = again.stdout.split()[1]
    shots = stack.api.get(f"/v1/cuts/{again_cut}/shots").json()["items"]
    assert [(s["name"], s["record"]["start_tc"], s["source"]["start"]) for s in shots] == [
        ("sh010", "01:00:00:00", 86400),
        ("sh020", "01:00:00:12", 86420),
    ]

    bad_rate = cli(stack, "publish", str(target), "--project", "cli", "--rate", "fast")
    assert bad_rate.returncode == 1
    assert bad_rate.stderr.startswith("error: rate: frame rate 'fast' is not a number")
    assert "Traceback" not in bad_rate.stderr
    unknown = cli(stack, "export", "999999", "--format", "otio")
    assert unknown.returncode == 1 and "999999" in unknown.stderr and "(HTTP 404)" in unknown.stderr
    away = cli(stack, "jobs", url="http://127.0.0.1:9")
    assert away.returncode == 1 and "cannot reach the API at http://127.0.0.1:9" in away.stderr


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except OSError:  # the terminal's other end is closed: everything was read
        return b""
