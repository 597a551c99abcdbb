"""What every area shares in the asset graph: the resources, the job tracker, the run reaper,
webhook deliveries, the no-op job."""

import os
from collections.abc import Callable

import dagster as dg

from media_pipeline.core.probe import set_max_pixels
from media_pipeline.platform.health import health_check
from media_pipeline.platform.job_tracker import job_tracker
from media_pipeline.platform.run_reaper import run_worker_reaper
from media_pipeline.platform.webhooks import webhook_deliveries
from media_pipeline.resources import ArtifactStore, DatabaseResource, FFmpegResource, MediaSearchResource
from media_pipeline.settings import Settings, load_settings


def from_settings(build: Callable[[Settings], object], description: str) -> dg.ResourceDefinition:
    """A resource built from the settings at run time, with an empty config schema.

    Run config can come from anyone who can reach the Dagster UI or GraphQL: a resource with
    config fields (even ones bound to environment variables) takes an override from it, and a
    run would write its artifacts or read media wherever the launcher said. With no fields,
    Dagster refuses such run config before the run starts.
    """
    return dg.ResourceDefinition(
        resource_fn=lambda _: build(load_settings()), config_schema={}, description=description
    )


def step_outputs_io_manager() -> dg.IOManagerDefinition:
    """Step outputs (the chunks of a fanned-out step, say) pickled under the artifact root.

    Dagster's default keeps them under the instance's storage folder on the run worker's
    machine; with Celery the step that reads an output may run on another machine, which sees
    the (shared) artifact root but not that folder. No config fields, like every resource here.
    """
    from dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager

    return dg.IOManagerDefinition(
        resource_fn=lambda _: PickledObjectFilesystemIOManager(base_dir=str(load_settings().artifact_root / "steps")),
        config_schema={},
        description="Step outputs under <artifact root>/steps, where every Celery worker finds them.",
    )


def definitions(config: Settings) -> dg.Definitions:
    # Resources read their settings at run time (from_settings); the media core's pixel limit is
    # process-wide, set as the code location loads (run workers load it too).
    set_max_pixels(config.max_pixels)
    distributed = {"io_manager": step_outputs_io_manager()} if config.executor == "celery" else {}
    return dg.Definitions(
        jobs=[health_check],
        sensors=[job_tracker, run_worker_reaper, webhook_deliveries],
        resources={
            "database": from_settings(
                lambda s: DatabaseResource(url=s.database_url), "The domain database (MEDIA_PIPELINE_DATABASE_URL)."
            ),
            "artifacts": from_settings(
                ArtifactStore.from_settings,
                "Where produced files are written (MEDIA_PIPELINE_ARTIFACT_ROOT) and kept (MEDIA_PIPELINE_STORAGE).",
            ),
            "ffmpeg": from_settings(
                lambda s: FFmpegResource(concurrency=s.ffmpeg_concurrency),
                "ffmpeg processes one step may run at once (MEDIA_PIPELINE_FFMPEG_CONCURRENCY).",
            ),
            "media_search": from_settings(
                lambda s: MediaSearchResource(media_roots=os.pathsep.join(str(root) for root in s.media_roots)),
                "The folders media may be read from (MEDIA_PIPELINE_MEDIA_ROOTS and the watch folders).",
            ),
            **distributed,
        },
    )
