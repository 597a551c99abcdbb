"""The compositions area's part of the asset graph: plan, clips per provider pool, video; one job."""

import dagster as dg

from media_pipeline.compositions.assets import ASSETS
from media_pipeline.compositions.jobs import render_composition_job
from media_pipeline.settings import Settings


def definitions(config: Settings) -> dg.Definitions:
    del config  # the render's composition arrives as run config; generators read settings at run time
    return dg.Definitions(assets=ASSETS, jobs=[render_composition_job])
