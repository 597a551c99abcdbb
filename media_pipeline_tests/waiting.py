"""Waiting in tests: for an event, bounded by a generous ceiling, never for a fixed time.

A busy machine (two cores, other test runs beside this one) makes everything slower, not wrong:
a wait ends as soon as what it waits for happens, and its ceiling is minutes. A wait whose
source can no longer deliver (the process exited) fails at once, saying so.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

T = TypeVar("T")

# For every Dagster process a stack test starts: Dagster's own 60 s gRPC deadline (webserver and
# daemon asking the code server for its definitions, sensor and schedule ticks) is hit on a
# loaded machine while the code location imports; the code server's startup likewise.
DAGSTER_TIMEOUTS = {
    "DAGSTER_GRPC_TIMEOUT_SECONDS": "300",
    "DAGSTER_CODE_SERVER_STARTUP_TIMEOUT": "300",
}


def wait_until(
    predicate: Callable[[], T | None],
    *,
    timeout: float = 300,
    what: str,
    interval: float = 0.1,
    alive: Callable[[], str | None] | None = None,
) -> T:
    """Poll `predicate` until it returns something truthy, and return that.

    AssertionError naming `what` past `timeout` seconds, or as soon as `alive` (if given)
    returns a sentence: what we wait on is gone (see `running`).
    """
    started = time.monotonic()
    while True:
        if alive is not None and (gone := alive()):
            raise AssertionError(f"{gone} while waiting for {what}")
        value = predicate()
        if value:
            return value
        elapsed = time.monotonic() - started
        if elapsed > timeout:
            raise AssertionError(f"timed out after {elapsed:.0f} s waiting for {what}")
        time.sleep(interval)


def running(process: subprocess.Popen, name: str, details: Callable[[], str] | None = None) -> Callable[[], str | None]:  # type: ignore[type-arg]
    """For `wait_until(alive=...)`: a sentence once `process` has exited (with `details()`, e.g. its logs)."""

    def check() -> str | None:
        if process.poll() is None:
            return None
        extra = f"\n{details()}" if details is not None else ""
        return f"{name} exited with code {process.returncode}{extra}"

    return check


def service_environment(settings: Mapping[str, str]) -> dict[str, str]:
    """The environment for a process a stack test starts: this one's, without its pipeline and
    Dagster variables, with Dagster's generous timeouts and `settings`."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIA_PIPELINE_", "DAGSTER_"))}
    return {**kept, **DAGSTER_TIMEOUTS, **settings}
