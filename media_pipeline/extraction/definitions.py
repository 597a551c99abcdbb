"""The extraction area's part of the asset graph: one asset, one job, its source settings."""

import dagster as dg

from media_pipeline.extraction.assets import extraction_frames
from media_pipeline.extraction.jobs import frame_extraction_job
from media_pipeline.extraction.resources import ExtractionSources
from media_pipeline.settings import Settings


def definitions(config: Settings) -> dg.Definitions:
    del config  # read at run time from the environment, like the platform's resources
    return dg.Definitions(
        assets=[extraction_frames],
        jobs=[frame_extraction_job],
        resources={
            "extraction_sources": ExtractionSources(
                media_roots=dg.EnvVar("MEDIA_PIPELINE_MEDIA_ROOTS"),
                allow_private=dg.EnvVar("MEDIA_PIPELINE_FETCH_ALLOW_PRIVATE"),
                max_bytes=dg.EnvVar.int("MEDIA_PIPELINE_FETCH_MAX_BYTES"),
                fetch_timeout=dg.EnvVar.int("MEDIA_PIPELINE_FETCH_TIMEOUT"),
                item_timeout=dg.EnvVar.int("MEDIA_PIPELINE_EXTRACTION_ITEM_TIMEOUT"),
            )
        },
    )
