"""Starting, waiting for and stopping `media-pipeline up` in a test: one way, for every stack test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from media_pipeline_tests.waiting import wait_until

UP = str(Path(sys.executable).parent / "media-pipeline")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def up_command(home: Path, ui_port: int, api_port: int, *, sample: bool = False) -> list[str]:
    command = [UP, "up", "--home", str(home), "--ui-port", str(ui_port), "--api-port", str(api_port)]
    return command if sample else [*command, "--no-sample"]


def reachable(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for_up(ui_port: int, api_port: int, alive: Callable[[], str | None]) -> None:
    """Until the webserver and then the API answer; fails at once if `alive` says `up` is gone."""
    ui, api = f"http://127.0.0.1:{ui_port}/dagster/server_info", f"http://127.0.0.1:{api_port}/healthz"
    wait_until(lambda: reachable(ui), timeout=300, what="the webserver", alive=alive)
    wait_until(lambda: reachable(api), timeout=300, what="the API", alive=alive)


def stop_up(process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """`up` stops its services (each in its own session) on SIGINT; killing its process group is
    only the fallback, and would leave them running."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
