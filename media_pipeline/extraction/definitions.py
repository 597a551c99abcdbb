"""The extraction area's part of the asset graph: one asset, one job, its source settings."""

import os

import dagster as dg

from media_pipeline.extraction.assets import extraction_frames
from media_pipeline.extraction.jobs import frame_extraction_job
from media_pipeline.extraction.resources import ExtractionSources
from media_pipeline.platform.definitions import from_settings
from media_pipeline.settings import Settings


def definitions(config: Settings) -> dg.Definitions:
    del config  # read at run time (from_settings), like the platform's resources
    return dg.Definitions(
        assets=[extraction_frames],
        jobs=[frame_extraction_job],
        resources={
            "extraction_sources": from_settings(
                lambda s: ExtractionSources(
                    media_roots=os.pathsep.join(str(root) for root in s.media_roots),
                    allow_private=s.fetch_allow_private,
                    max_bytes=s.fetch_max_bytes,
                    fetch_timeout=s.fetch_timeout,
                    item_timeout=s.extraction_item_timeout,
                ),
                "Where extraction sources may come from, download and decode limits (MEDIA_PIPELINE_FETCH_*, "
                "MEDIA_PIPELINE_EXTRACTION_ITEM_TIMEOUT, the media roots).",
            )
        },
    )
