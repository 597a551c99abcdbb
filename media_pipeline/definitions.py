"""The whole asset graph: the platform's shared parts merged with every area's (media_pipeline/areas.py)."""

import importlib

import dagster as dg

from media_pipeline import settings
from media_pipeline.areas import AREAS
from media_pipeline.platform import definitions as platform
from media_pipeline.platform.executors import executor_for

_config = settings.load_settings()

defs = dg.Definitions.merge(
    platform.definitions(_config),
    *(importlib.import_module(f"media_pipeline.{area}.definitions").definitions(_config) for area in AREAS),
    # Every job that names no executor of its own: in-process, multiprocess or Celery.
    dg.Definitions(executor=executor_for(_config)),
)
