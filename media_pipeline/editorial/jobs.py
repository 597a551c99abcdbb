import dagster as dg

from media_pipeline.editorial.assets.cuts import contact_sheet, cut_shots, cut_timeline, shot_thumbnails
from media_pipeline.editorial.partitions import cut_versions

# Shots are rendered in parallel threads inside one step. Every job takes the code location's
# executor (MEDIA_PIPELINE_EXECUTOR, media_pipeline/platform/executors.py): in-process by default,
# since a process per step would only add seconds of start-up; Celery to spread steps over machines.
ingest_cut_job = dg.define_asset_job(
    "ingest_cut",
    selection=dg.AssetSelection.assets(cut_timeline, cut_shots, "cut_diff", shot_thumbnails, contact_sheet),
    partitions_def=cut_versions,
    description="Read a published cut, extract its shots, diff it against the previous version, render "
    "thumbnails and the contact sheet.",
)

thumbnails_job = dg.define_asset_job(
    "render_thumbnails",
    selection=dg.AssetSelection.assets(shot_thumbnails, contact_sheet),
    partitions_def=cut_versions,
    description="Re-render thumbnails (all shots or some, see the shot_thumbnails config) and the contact sheet.",
)

# An interactive "refresh this shot" waits on this run: it renders the thumbnail only. The contact
# sheet then shows as stale in the Dagster UI until the next whole-cut render.
shot_thumbnail_job = dg.define_asset_job(
    "render_shot_thumbnail",
    selection=dg.AssetSelection.assets(shot_thumbnails),
    partitions_def=cut_versions,
    description="Re-render the thumbnails of some shots (shot_ids in the shot_thumbnails config), nothing else.",
)

final_video_job = dg.define_asset_job(
    "render_final_video",
    selection=dg.AssetSelection.assets("final_video"),
    partitions_def=cut_versions,
    description="Conform the cut into one H.264 file (see the final_video config for encode options).",
)

proxies_job = dg.define_asset_job(
    "render_proxies",
    selection=dg.AssetSelection.assets("shot_proxies"),
    partitions_def=cut_versions,
    description="Review proxies with burn-ins and filmstrips for all shots or some (see the shot_proxies config).",
)
