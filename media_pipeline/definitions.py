import dagster as dg

from media_pipeline import settings
from media_pipeline.assets.cut_diff import cut_diff
from media_pipeline.assets.editorial import editorial_assets
from media_pipeline.assets.final_video import final_video
from media_pipeline.assets.proxies import shot_proxies
from media_pipeline.jobs import (
    final_video_job,
    health_check,
    ingest_cut_job,
    proxies_job,
    shot_thumbnail_job,
    thumbnails_job,
)
from media_pipeline.resources import ArtifactStore, DatabaseResource, FFmpegResource, MediaSearchResource
from media_pipeline.sensors.run_reaper import run_worker_reaper
from media_pipeline.sensors.watch_folders import watch_folder_sensor

settings.export_defaults()
_config = settings.load_settings()

defs = dg.Definitions(
    assets=[*editorial_assets, cut_diff, final_video, shot_proxies],
    jobs=[ingest_cut_job, thumbnails_job, shot_thumbnail_job, final_video_job, proxies_job, health_check],
    sensors=[
        watch_folder_sensor(
            folder,
            interval_seconds=_config.sensor_interval,
            settle_seconds=_config.settle_seconds,
            default_edl_rate=_config.edl_rate,
        )
        for folder in _config.watch_dirs
    ]
    + [run_worker_reaper],
    resources={
        "database": DatabaseResource(url=dg.EnvVar("MEDIA_PIPELINE_DATABASE_URL")),
        "artifacts": ArtifactStore(root=dg.EnvVar("MEDIA_PIPELINE_ARTIFACT_ROOT")),
        "ffmpeg": FFmpegResource(concurrency=dg.EnvVar.int("MEDIA_PIPELINE_FFMPEG_CONCURRENCY")),
        "media_search": MediaSearchResource(media_roots=dg.EnvVar("MEDIA_PIPELINE_MEDIA_ROOTS")),
    },
)
