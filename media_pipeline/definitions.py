"""The whole asset graph: the platform and one line per product area.

A new area is a package `media_pipeline/<area>/` with a `definitions(config)` function; add it
to AREAS and nothing else here changes.
"""

import dagster as dg

from media_pipeline import settings
from media_pipeline.editorial import definitions as editorial
from media_pipeline.platform import definitions as platform

settings.export_defaults()
_config = settings.load_settings()

AREAS = [
    platform.definitions,
    editorial.definitions,
]

defs = dg.Definitions.merge(*(area(_config) for area in AREAS))
