import dagster as dg

from media_pipeline.extraction.assets import extraction_frames
from media_pipeline.extraction.partitions import extraction_batches

# Items run in threads inside the one step. The executor is the code location's
# (MEDIA_PIPELINE_EXECUTOR, media_pipeline/platform/executors.py): in-process by default.
frame_extraction_job = dg.define_asset_job(
    "frame_extraction",
    selection=dg.AssetSelection.assets(extraction_frames),
    partitions_def=extraction_batches,
    description="Extract exact frames (and crops) from every video of a batch; see the extraction_frames config.",
)
