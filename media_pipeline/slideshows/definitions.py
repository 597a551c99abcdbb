"""The slideshows area's part of the asset graph: one render asset, one job."""

import dagster as dg

from media_pipeline.settings import Settings
from media_pipeline.slideshows.assets import slideshow_video
from media_pipeline.slideshows.jobs import render_slideshow_job


def definitions(config: Settings) -> dg.Definitions:
    del config  # the render's options arrive as run config
    return dg.Definitions(assets=[slideshow_video], jobs=[render_slideshow_job])
