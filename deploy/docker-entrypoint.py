"""Entrypoint of the media_pipeline image: fit the Dagster instance config to the container's
environment, then run the container's command in this process's place.

Dagster reads no environment variable for `concurrency.runs.max_concurrent_runs`, so the value
of MEDIA_PIPELINE_MAX_CONCURRENT_RUNS (read and checked by the settings model, as everywhere) is
written into $DAGSTER_HOME/dagster.yaml here, by the same function `media-pipeline up` uses for its
own instance copy. Without the variable the file is left as built (the packaged default).
"""

from __future__ import annotations

import os
import sys

from media_pipeline.cli import SERVICE_UMASK, write_run_limit
from media_pipeline.settings import SettingsError, load_settings

HEADER = "# Run limit set from MEDIA_PIPELINE_MAX_CONCURRENT_RUNS by the image's entrypoint.\n"


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: docker-entrypoint.py COMMAND [ARG...]")
    try:
        settings = load_settings()  # the same rules and sentences as every service
    except SettingsError as error:
        raise SystemExit(f"error: {error}") from None
    if "max_concurrent_runs" in settings.model_fields_set:  # unset: the packaged file, as built
        config = settings.dagster_instance_home / "dagster.yaml"
        write_run_limit(config, config, settings.max_concurrent_runs, header=HEADER)
    os.umask(SERVICE_UMASK)  # as `media-pipeline up`: nothing the services write is world-readable
    # exec: the command becomes the process tini signals, so `docker stop` reaches it directly.
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
