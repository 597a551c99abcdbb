"""The library area's part of the asset graph: the derivatives asset and the job that makes them."""

import dagster as dg

from media_pipeline.library.assets import library_derivatives
from media_pipeline.library.jobs import library_job
from media_pipeline.settings import Settings


def definitions(config: Settings) -> dg.Definitions:
    del config  # read at run time (limits_from_settings), like the platform's resources
    return dg.Definitions(assets=[library_derivatives], jobs=[library_job])
