"""The extraction area's job kind: `frame_extraction`, one run per batch of videos."""

from typing import Any

from pydantic import BaseModel

from media_pipeline.extraction.partitions import extraction_batches
from media_pipeline.extraction.request import ExtractionRequest
from media_pipeline.platform.job_kinds import JobKind, register


def step_config(request: BaseModel) -> dict[str, Any]:
    # The run carries the whole request, so re-executing it from the Dagster UI repeats the batch.
    # Unset fields stay unset: an item without `crop` takes the batch's, an item with `crop: null` none.
    return {"request": request.model_dump_json(exclude_unset=True)}


FRAME_EXTRACTION = register(
    JobKind(
        name="frame_extraction",
        area="extraction",
        dagster_job="frame_extraction",
        request_model=ExtractionRequest,
        subject_type="extraction",
        progress_unit="frames",
        partitions=extraction_batches,
        config_step="extraction_frames",
        step_config=step_config,
        description="Exact frames and crops from a batch of videos, with a manifest per item and per batch.",
        step_weights={"extraction_frames": 1.0},
    )
)
