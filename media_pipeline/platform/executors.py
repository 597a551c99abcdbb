"""The executor every area job runs with, chosen by MEDIA_PIPELINE_EXECUTOR.

- `in_process` (the default): every step of a run in the run worker's process, one after another.
  Steps parallelise inside themselves (ffmpeg processes in threads), so this is the fastest on
  one machine: no process start-up per step.
- `multiprocess`: Dagster's executor with a process per step, at most
  MEDIA_PIPELINE_FFMPEG_CONCURRENCY at once, on the run worker's machine.
- `celery`: each step is a Celery task (dagster-celery) on the broker MEDIA_PIPELINE_CELERY_BROKER,
  executed by whichever `media-pipeline worker` consumes its queue, on any machine. The run worker
  stays where the code server started it and only orchestrates.

Each executor tags the run with the host id of the process that orchestrates it
(`media_pipeline/host`), so the run reaper on another machine leaves it alone, and carries out a
cancel that was asked for while the run was STARTING (Dagster cannot terminate a run then, so the
API tags it): the run is cancelled before its first step, whatever the job_tracker sensor's pace.

The executors take their configuration from the settings, not from run config: run config comes
from anyone who can reach the Dagster UI, and must not point steps at another broker.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import dagster as dg
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._core.execution.retries import RetryMode, get_retries_config
from dagster._core.executor.in_process import InProcessExecutor
from dagster._core.executor.multiprocess import MultiprocessExecutor

from media_pipeline.platform.job_kinds import CANCEL_REQUESTED, CANCEL_TAG
from media_pipeline.settings import Settings

if TYPE_CHECKING:
    from dagster._core.execution.context.system import PlanOrchestrationContext
    from dagster._core.execution.plan.plan import ExecutionPlan
    from dagster._core.execution.plan.step import ExecutionStep

HOST_TAG = "media_pipeline/host"
# dagster_celery.tags.DAGSTER_CELERY_QUEUE_TAG, written out so single-host mode imports no Celery.
QUEUE_TAG = "dagster-celery/queue"
DEFAULT_QUEUE = "dagster"  # light steps: reading timelines, database rows, joins by stream copy
FFMPEG_QUEUE = "ffmpeg"  # encodes and decodes
GENERATORS_QUEUE = "generators"  # calls to external providers (TTS, AI generators)
QUEUES = (DEFAULT_QUEUE, FFMPEG_QUEUE, GENERATORS_QUEUE)
# op_tags of every step that runs ffmpeg (every step in the `ffmpeg` pool; a test checks).
FFMPEG_STEP_TAGS: Mapping[str, str] = {QUEUE_TAG: FFMPEG_QUEUE}

_CONFIG = {"retries": get_retries_config()}


class _RecordsHost:
    """Tags the run with the host id of the process orchestrating it as its execution starts, and
    cancels it there if a cancel was asked for while it was starting."""

    host_id: str

    def begin(self, plan_context: PlanOrchestrationContext) -> None:
        instance = plan_context.instance
        instance.add_run_tags(plan_context.run_id, {HOST_TAG: self.host_id})
        # Read back, not from plan_context: the tag is added after the launch. The run is STARTED
        # by now, so a cancel asked for from here on terminates it the ordinary way.
        run = instance.get_run_by_id(plan_context.run_id)
        if run is not None and run.tags.get(CANCEL_TAG) == CANCEL_REQUESTED:
            instance.report_run_canceling(run, message="Cancel asked for while the run was starting")
            # Dagster's run loop turns this into the run's CANCELED event; no step has started.
            raise DagsterExecutionInterruptedError("cancelled before its first step")

    def execute(self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan) -> Iterator[Any]:
        self.begin(plan_context)
        return super().execute(plan_context, execution_plan)  # type: ignore[misc]


class HostInProcessExecutor(_RecordsHost, InProcessExecutor):
    def __init__(self, host_id: str, retries: RetryMode) -> None:
        self.host_id = host_id
        super().__init__(retries=retries)


class HostMultiprocessExecutor(_RecordsHost, MultiprocessExecutor):
    def __init__(self, host_id: str, retries: RetryMode, max_concurrent: int) -> None:
        self.host_id = host_id
        super().__init__(retries=retries, max_concurrent=max_concurrent)


CELERY_TICK_SECONDS = 0.1


def queue_for(step: ExecutionStep) -> str:
    """The Celery queue of a step (before MEDIA_PIPELINE_CELERY_QUEUE_PREFIX): its
    `dagster-celery/queue` op tag, else the default queue."""
    return step.tags.get(QUEUE_TAG, DEFAULT_QUEUE)


def celery_app_args(settings: Settings) -> dict[str, Any]:
    """The Celery app both sides build: the run worker that sends step tasks, and
    `media-pipeline worker` that executes them."""
    return {
        "broker": settings.celery_broker,
        "backend": settings.celery_backend,
        "config_source": {
            # Acknowledged once the step has finished, and given back to the queue when the
            # worker executing it dies: a worker killed mid-chunk costs only that chunk, which
            # another worker (or this one, restarted) executes again from the start.
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            # A worker holds no more tasks than it is executing: the rest stay on the broker for
            # idle workers (Celery's default prefetches four per process).
            "worker_prefetch_multiplier": 1,
            "task_default_queue": settings.celery_queue_prefix + DEFAULT_QUEUE,
            # Dagster's default broker options give up after three quick retries.
            "broker_connection_retry_on_startup": True,
        },
    }


def executor_for(settings: Settings) -> dg.ExecutorDefinition:
    host_id = settings.host_id
    if settings.executor == "celery":
        return _celery_executor(settings)
    if settings.executor == "multiprocess":
        return dg.ExecutorDefinition(
            name="multiprocess",
            config_schema=_CONFIG,
            requirements=dg.multiple_process_executor_requirements(),
            executor_creation_fn=lambda init: HostMultiprocessExecutor(
                host_id, RetryMode.from_config(init.executor_config["retries"]), settings.ffmpeg_concurrency
            ),
            description="A process per step on the run worker's machine (MEDIA_PIPELINE_EXECUTOR=multiprocess).",
        )
    return dg.ExecutorDefinition(
        name="in_process",
        config_schema=_CONFIG,
        executor_creation_fn=lambda init: HostInProcessExecutor(
            host_id, RetryMode.from_config(init.executor_config["retries"])
        ),
        description="Every step in the run worker's process (MEDIA_PIPELINE_EXECUTOR=in_process).",
    )


def _celery_executor(settings: Settings) -> dg.ExecutorDefinition:
    # Imported here: Celery is needed only in this mode.
    from celery.exceptions import DuplicateTaskNameWarning
    from dagster_celery import core_execution_loop
    from dagster_celery.core_execution_loop import core_celery_execution_loop
    from dagster_celery.executor import CeleryExecutor, _submit_task

    # The loop sleeps this long between looks at its tasks, so every step that waits for another
    # started up to a second late (the plan, the join and the end of the run: about 2 s of a 25 s
    # final video). A look costs a poll of the result backend per step in flight.
    core_execution_loop.TICK_SECONDS = CELERY_TICK_SECONDS

    prefix = settings.celery_queue_prefix

    def submit(app: Any, plan_context: Any, step: ExecutionStep, queue: str, priority: int, known: Any) -> Any:
        # The queue dagster-celery read from the op tag, with this deployment's prefix (the run
        # log's "Submitting celery task" line names it without).
        with warnings.catch_warnings():
            # dagster-celery registers its one step task again for each step it submits; Celery
            # warns that the name is taken, by that same task, which is what runs.
            warnings.simplefilter("ignore", DuplicateTaskNameWarning)
            return _submit_task(app, plan_context, step, prefix + queue_for(step), priority, known)

    class HostCeleryExecutor(_RecordsHost, CeleryExecutor):
        def execute(self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan) -> Iterator[Any]:
            self.begin(plan_context)
            return core_celery_execution_loop(plan_context, execution_plan, step_execution_fn=submit)

    def create(init: dg.InitExecutorContext) -> HostCeleryExecutor:
        args = celery_app_args(settings)
        executor = HostCeleryExecutor(
            retries=RetryMode.from_config(init.executor_config["retries"]),
            broker=args["broker"],
            backend=args["backend"],
            config_source=args["config_source"],
        )
        executor.host_id = settings.host_id
        return executor

    return dg.ExecutorDefinition(
        name="celery",
        config_schema=_CONFIG,
        requirements=dg.multiple_process_executor_requirements(),
        executor_creation_fn=create,
        description="Each step a Celery task for `media-pipeline worker` processes (MEDIA_PIPELINE_EXECUTOR=celery).",
    )
