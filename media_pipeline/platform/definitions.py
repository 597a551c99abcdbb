"""What every area shares in the asset graph: the resources, the job tracker, the run reaper,
webhook deliveries, the no-op job."""

import dagster as dg

from media_pipeline.core.probe import set_max_pixels
from media_pipeline.platform.health import health_check
from media_pipeline.platform.job_tracker import job_tracker
from media_pipeline.platform.run_reaper import run_worker_reaper
from media_pipeline.platform.webhooks import webhook_deliveries
from media_pipeline.resources import ArtifactStore, DatabaseResource, FFmpegResource, MediaSearchResource
from media_pipeline.settings import Settings


def definitions(config: Settings) -> dg.Definitions:
    # Resources read their settings from the environment at run time (dg.EnvVar); the media
    # core's pixel limit is process-wide, set as the code location loads (run workers load it too).
    set_max_pixels(config.max_pixels)
    return dg.Definitions(
        jobs=[health_check],
        sensors=[job_tracker, run_worker_reaper, webhook_deliveries],
        resources={
            "database": DatabaseResource(url=dg.EnvVar("MEDIA_PIPELINE_DATABASE_URL")),
            "artifacts": ArtifactStore(root=dg.EnvVar("MEDIA_PIPELINE_ARTIFACT_ROOT")),
            "ffmpeg": FFmpegResource(concurrency=dg.EnvVar.int("MEDIA_PIPELINE_FFMPEG_CONCURRENCY")),
            "media_search": MediaSearchResource(media_roots=dg.EnvVar("MEDIA_PIPELINE_MEDIA_ROOTS")),
        },
    )
