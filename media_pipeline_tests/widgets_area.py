"""A throwaway product area for the job contract's test: a request model, a tiny Dagster job, a kind.

No `from __future__ import annotations`: Dagster reads the op's config annotation when the op is
defined.
"""

import time

import dagster as dg
from pydantic import Field

from media_pipeline.platform.job_kinds import JobKind


class CountRequest(dg.Config):
    """The throwaway area's request, also its run config."""

    count: int = Field(default=3, ge=1, le=100_000, description="How many widgets to count")
    pause: float = Field(default=0.0, ge=0, le=1, description="Seconds per widget")


@dg.op(name="count_widgets")
def count_widgets(context: dg.OpExecutionContext, config: CountRequest) -> int:
    for _ in range(config.count):
        time.sleep(config.pause)
    context.log.info(f"counted {config.count} widgets")
    return config.count


@dg.job(name="widget_count", executor_def=dg.in_process_executor)
def widget_count() -> None:
    count_widgets()


# The area's code location: an InProcessGateway loads `defs` of a module by name (also in the
# child processes it executes runs in, which is why this module imports next to nothing).
defs = dg.Definitions(jobs=[widget_count])

# What the area would register in its job_kinds.py; the test registers it for its own duration.
kind = JobKind(
    name="widget_count",
    area="widgets",
    dagster_job="widget_count",
    request_model=CountRequest,
    subject_type="widget",
    progress_unit="items",
    config_step="count_widgets",
    step_weights={"count_widgets": 1.0},
)
