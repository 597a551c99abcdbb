"""The slideshows area's job kinds."""

from media_pipeline.platform.job_kinds import JobKind, register
from media_pipeline.slideshows.config import SlideshowRenderConfig
from media_pipeline.slideshows.partitions import slideshow_renders

SLIDESHOW_RENDER = register(
    JobKind(
        name="slideshow_render",
        area="slideshows",
        dagster_job="render_slideshow",
        request_model=SlideshowRenderConfig,
        subject_type="slideshow_render",
        progress_unit="scenes",
        partitions=slideshow_renders,
        config_step="slideshow_video",
        description="Render a narrated slideshow: scenes, crossfades, voiceovers or TTS, ducked music.",
        step_weights={"slideshow_video": 1.0},
    )
)
