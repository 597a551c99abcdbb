import dagster as dg

from media_pipeline.library.assets import library_derivatives

# One step; ffmpeg and Pillow work inside it. A multiprocess executor would only add start-up time.
library_job = dg.define_asset_job(
    "library_edit",
    selection=dg.AssetSelection.assets(library_derivatives),
    executor_def=dg.in_process_executor,
    description="A library edit that runs as a job: video edits, large images, concat, workflows, best frames.",
)
