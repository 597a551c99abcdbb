import dagster as dg

from media_pipeline.slideshows.assets import slideshow_video
from media_pipeline.slideshows.partitions import slideshow_renders

# Scenes are encoded in parallel threads inside the one step: no process per step.
render_slideshow_job = dg.define_asset_job(
    "render_slideshow",
    selection=dg.AssetSelection.assets(slideshow_video),
    partitions_def=slideshow_renders,
    executor_def=dg.in_process_executor,
    description="Render a slideshow (see the slideshow_video config for every option).",
)
