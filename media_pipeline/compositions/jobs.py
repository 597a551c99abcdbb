import dagster as dg

from media_pipeline.compositions.assets import ASSETS
from media_pipeline.compositions.partitions import composition_renders

# Segments are generated and conformed in threads inside each step: no process per step.
render_composition_job = dg.define_asset_job(
    "render_composition",
    selection=dg.AssetSelection.assets(*ASSETS),
    partitions_def=composition_renders,
    executor_def=dg.in_process_executor,
    description="Render a composition: plan, generate the missing clips (one step per provider pool), compose.",
)
