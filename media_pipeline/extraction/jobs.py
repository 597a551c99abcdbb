import dagster as dg

from media_pipeline.extraction.assets import extraction_frames
from media_pipeline.extraction.partitions import extraction_batches

# Items run in threads inside the one step; a multiprocess executor would only add start-up time.
frame_extraction_job = dg.define_asset_job(
    "frame_extraction",
    selection=dg.AssetSelection.assets(extraction_frames),
    partitions_def=extraction_batches,
    executor_def=dg.in_process_executor,
    description="Extract exact frames (and crops) from every video of a batch; see the extraction_frames config.",
)
