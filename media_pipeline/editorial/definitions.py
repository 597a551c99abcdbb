"""The editorial area's part of the asset graph: cuts, shots, thumbnails, proxies, conform, diff."""

import dagster as dg

from media_pipeline.editorial.assets.cut_diff import cut_diff
from media_pipeline.editorial.assets.cuts import editorial_assets
from media_pipeline.editorial.assets.final_video import final_video
from media_pipeline.editorial.assets.proxies import shot_proxies
from media_pipeline.editorial.jobs import (
    final_video_job,
    ingest_cut_job,
    proxies_job,
    shot_thumbnail_job,
    thumbnails_job,
)
from media_pipeline.editorial.sensors import watch_folder_sensor
from media_pipeline.settings import Settings


def definitions(config: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[*editorial_assets, cut_diff, final_video, shot_proxies],
        jobs=[ingest_cut_job, thumbnails_job, shot_thumbnail_job, final_video_job, proxies_job],
        sensors=[
            watch_folder_sensor(
                folder,
                interval_seconds=config.sensor_interval,
                settle_seconds=config.settle_seconds,
                default_edl_rate=config.edl_rate,
                max_bytes=config.max_upload_bytes,
                media_roots=config.media_roots,
            )
            for folder in config.watch_dirs
        ],
    )
