"""The Celery app `media-pipeline worker` runs: Dagster's step task (dagster-celery's
`execute_plan`) on this project's broker, backend and queues, from the settings.

A task names the job by its Python module (`media_pipeline.definitions`), which the worker
imports with the settings of its own environment: every machine's worker must see the same
databases and artifact store as the run worker that sent the task.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

from celery import Celery
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from media_pipeline.platform.executors import celery_app_args
from media_pipeline.settings import Settings, load_settings


def make_worker_app(settings: Settings) -> Celery:
    # The same app the run worker's executor builds (dagster-celery's make_app); queues other
    # than its default one are created on first use, by whichever side comes first, identically.
    app = make_app(celery_app_args(settings))
    create_task(app)
    return app


def preload() -> None:
    """Import the code location and build its repository in the worker's main process, before
    Celery forks its pool: each pool process inherits them, where each used to spend about 1.2 s
    of its first task on them."""
    from media_pipeline.definitions import defs

    defs.get_repository_def()


def worker_argv(settings: Settings, queues: Sequence[str], concurrency: int, name: str) -> list[str]:
    """`celery worker` arguments: late acks come from the app's config, one task per process."""
    return [
        "worker",
        "--queues",
        ",".join(settings.celery_queue_prefix + queue for queue in queues),
        "--concurrency",
        str(concurrency),
        "--prefetch-multiplier",
        "1",
        # A task is sent to a process that is free, not queued behind a long encode in another.
        "-O",
        "fair",
        "--hostname",
        name,
        "--loglevel",
        "INFO",
        # Celery's events feed monitors (flower, `celery events`); cheap, and show who ran what.
        "--task-events",
    ]


def answers(timeout: float = 10) -> bool:
    """Whether this machine's worker (`media-pipeline worker --name media_pipeline@%h`, as the
    Compose service starts it) answers a ping over the broker: the `worker` health check."""
    return bool(app.control.ping(destination=[f"media_pipeline@{socket.gethostname()}"], timeout=timeout))


app = make_worker_app(load_settings())
