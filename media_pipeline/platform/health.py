"""A no-op job: checks (and times) the run path end to end, whatever the areas do."""

import dagster as dg


@dg.op(description="Does nothing: a run of this job measures Dagster's own launch overhead.")
def do_nothing() -> None:
    return None


@dg.job(executor_def=dg.in_process_executor, description="A no-op run: checks (and times) the run path end to end.")
def health_check() -> None:
    do_nothing()
