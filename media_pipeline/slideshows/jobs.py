import dagster as dg

from media_pipeline.slideshows.assets import slideshow_video
from media_pipeline.slideshows.partitions import slideshow_renders

# Scenes are encoded in parallel threads inside the one step. The executor is the code location's
# (MEDIA_PIPELINE_EXECUTOR, media_pipeline/platform/executors.py): in-process by default.
render_slideshow_job = dg.define_asset_job(
    "render_slideshow",
    selection=dg.AssetSelection.assets(slideshow_video),
    partitions_def=slideshow_renders,
    description="Render a slideshow (see the slideshow_video config for every option).",
)
