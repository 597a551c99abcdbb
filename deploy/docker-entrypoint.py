"""Entrypoint of the media_pipeline image: fit the Dagster instance config to the container's
environment, then run the container's command in this process's place.

Dagster reads no environment variable for `concurrency.runs.max_concurrent_runs`, so the value
of MEDIA_PIPELINE_MAX_CONCURRENT_RUNS is written into $DAGSTER_HOME/dagster.yaml here, by the
same function `media-pipeline up` uses for its own instance copy. Without the variable the file
is left as built (the packaged default).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from media_pipeline.cli import SERVICE_UMASK, write_run_limit

HEADER = "# Run limit set from MEDIA_PIPELINE_MAX_CONCURRENT_RUNS by the image's entrypoint.\n"


def apply_run_limit(config_path: Path, limit: str) -> None:
    if not limit.strip():
        return
    runs = int(limit)
    if runs < 1:
        raise SystemExit(f"MEDIA_PIPELINE_MAX_CONCURRENT_RUNS must be at least 1, not {limit!r}")
    write_run_limit(config_path, config_path, runs, header=HEADER)


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: docker-entrypoint.py COMMAND [ARG...]")
    apply_run_limit(
        Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml",
        os.environ.get("MEDIA_PIPELINE_MAX_CONCURRENT_RUNS", ""),
    )
    os.umask(SERVICE_UMASK)  # as `media-pipeline up`: nothing the services write is world-readable
    # exec: the command becomes the process tini signals, so `docker stop` reaches it directly.
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
