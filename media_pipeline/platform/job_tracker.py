"""Every run of a registered Dagster job is a job, and its final state is written when it ends.

The `job_tracker` sensor reads run records by update time, with a cursor, and for each run of a
Dagster job that a job kind names (see `job_kinds.py`):

- links it to its job: a run the API launched carries the tag `media_pipeline/job_id`; any other
  (a watch-folder sensor's, one launched in the Dagster UI, a re-execution or retry, which inherit
  their parent's tags) gets a job of its own, with `source` saying who started it, and the tag
  is added to the run, so the link goes both ways;
- records when the run was created, started and finished (from its run record), which /metrics
  turns into queue wait and processing time;
- once the run has ended, writes the job's final state (status, the failure sentence, outputs)
  and lets the kind react (an ingest that died fails its cut);
- terminates a run whose cancel was asked for while it was STARTING (tagged `CANCEL_TAG`; Dagster
  refuses to terminate a run then) once it has started.

The Dagster UI's Materialize button does not launch a registered job: it launches the implicit
asset job (`__ASSET_JOB`) with an asset selection. Such a run is the registered kind whose job
materializes those assets (see `job_kinds.kind_for_assets`), read from the code location's
repository, which the daemon gives every sensor evaluation.

Nothing else writes a job's state: the API reads unfinished jobs from Dagster, never caching what
it read.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.orm import Session

from media_pipeline.db.models import Job, JobSource
from media_pipeline.platform.job_kinds import (
    CANCEL_REQUESTED,
    CANCEL_TAG,
    JOB_ID_TAG,
    KIND_TAG,
    JobKind,
    RunFacts,
    kind_for_assets,
    kind_of_run,
)
from media_pipeline.platform.job_state import TERMINAL, failure_sentence, job_status, outputs_for
from media_pipeline.resources import DatabaseResource

INTERVAL_SECONDS = 5
PAGE = 200
PARTITION_TAG = "dagster/partition"
# What the Dagster UI's Materialize button runs (`__ASSET_JOB`, or `__ASSET_JOB_<n>` when the
# code location's assets have several partitionings).
IMPLICIT_ASSET_JOB = "__ASSET_JOB"
# Events a failure sentence is made of (reading only these keeps a long run's log unread).
FAILURE_EVENTS = {
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.ENGINE_EVENT,
}


def source_of(run: dg.DagsterRun) -> str:
    tags = run.tags
    if run.parent_run_id or tags.get("dagster/parent_run_id") or tags.get("dagster/retry_number"):
        return JobSource.RETRY
    if tags.get("dagster/sensor_name") or tags.get("dagster/schedule_name"):
        return JobSource.SENSOR
    return JobSource.UI


def facts(run: dg.DagsterRun, error: str | None = None) -> RunFacts:
    return RunFacts(
        run_id=run.run_id,
        job_name=run.job_name,
        status=run.status,
        partition_key=run.tags.get(PARTITION_TAG),
        run_config=run.run_config or {},
        tags=dict(run.tags),
        error=error,
    )


AssetsOfJob = Callable[[str], AbstractSet[dg.AssetKey]]


def assets_of_jobs(repository: dg.RepositoryDefinition | None) -> AssetsOfJob | None:
    """The assets each Dagster job of the code location materializes (None: no repository known)."""
    if repository is None:
        return None
    known: dict[str, frozenset[dg.AssetKey]] = {}

    def assets(job_name: str) -> frozenset[dg.AssetKey]:
        if job_name not in known:
            job = repository.get_job(job_name) if repository.has_job(job_name) else None
            known[job_name] = frozenset(job.asset_layer.selected_asset_keys) if job is not None else frozenset()
        return known[job_name]

    return assets


def kind_for(run: dg.DagsterRun, assets_of_job: AssetsOfJob | None) -> JobKind | None:
    """The registered kind a run carries out: by its Dagster job, or, for a run of the implicit
    asset job (the UI's Materialize), by the assets it selects."""
    kind = kind_of_run(run.job_name, run.tags)
    if kind is not None or not run.job_name.startswith(IMPLICIT_ASSET_JOB) or assets_of_job is None:
        return kind
    return kind_for_assets(run.asset_selection or frozenset(), assets_of_job, run.tags)


def _utc(value: dt.datetime | float | None) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromtimestamp(value, dt.UTC)


def record_times(job: Job, record: dg.RunRecord) -> None:
    """When the run started and ended, as Dagster recorded them; a job adopted from a run just
    now began when its run was created (not when the tracker first saw it)."""
    if sa.inspect(job).pending:
        job.created_at = _utc(record.create_timestamp) or job.created_at
    if job.started_at is None and record.start_time is not None:
        job.started_at = _utc(record.start_time)
    if job.finished_at is None and record.end_time is not None and record.dagster_run.is_finished:
        job.finished_at = _utc(record.end_time)


def _params(kind: JobKind, run_config: Mapping[str, object]) -> dict[str, object]:
    if kind.config_step is None:
        return {}
    ops = run_config.get("ops", {})
    step = ops.get(kind.config_step, {}) if isinstance(ops, Mapping) else {}
    config = step.get("config", {}) if isinstance(step, Mapping) else {}
    return dict(config) if isinstance(config, Mapping) else {}


@dataclass
class Linked:
    job: Job
    new_tags: dict[str, str] = field(default_factory=dict)  # to add to the run once committed


def link(session: Session, run: dg.DagsterRun, kind: JobKind) -> Linked:
    """The run's job, adopting the run as a new job when none is its own."""
    tagged = run.tags.get(JOB_ID_TAG)
    if tagged:
        job = session.get(Job, tagged)
        if job is not None and job.run_id in (None, run.run_id):
            # None: the API crashed between launching the run and recording its id.
            job.run_id = run.run_id
            return Linked(job)
        # Otherwise the tag was inherited from the run this one re-executes: a job of its own.
    adopted = session.scalar(sa.select(Job).where(Job.run_id == run.run_id))
    if adopted is not None:
        return Linked(adopted, {JOB_ID_TAG: adopted.id, KIND_TAG: kind.name})
    subject = kind.subject_for(session, facts(run))
    job = Job(
        id=str(uuid.uuid4()),
        kind=kind.name,
        status="queued",  # brought up to date (or finished) by the caller
        run_id=run.run_id,
        subject_type=subject.type if subject else None,
        subject_id=subject.id if subject else None,
        source=source_of(run),
        params=_params(kind, run.run_config or {}),
        outputs=[],
    )
    session.add(job)
    return Linked(job, {JOB_ID_TAG: job.id, KIND_TAG: kind.name})


def finish(session: Session, instance: dg.DagsterInstance, job: Job, run: dg.DagsterRun, kind: JobKind) -> None:
    """Write the final state of a job whose run has ended; the kind's `on_run_end` runs with it."""
    status = job_status(run.status)
    error = None
    if status == "failed":
        error = failure_sentence(list(instance.all_logs(run.run_id, of_type=FAILURE_EVENTS)), run.run_id)
    job.status, job.error, job.outputs = status, error, outputs_for(session, run.run_id, kind)
    if kind.on_run_end is not None:
        kind.on_run_end(session, facts(run, error))


@dataclass
class Tracked:
    cursor: float | None
    adopted: list[str] = field(default_factory=list)  # job ids
    finished: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)  # run ids terminated for a cancel asked while starting


def cancel_started(instance: dg.DagsterInstance) -> list[str]:
    """Terminate the runs whose cancel was asked for while they were starting, now that they run.

    Looked up by tag and status every time, not through the cursor: the tag and the start are
    two updates of the same run that may land in either order.
    """
    filters = dg.RunsFilter(tags={CANCEL_TAG: CANCEL_REQUESTED}, statuses=[dg.DagsterRunStatus.STARTED])
    cancelled = []
    for record in instance.get_run_records(filters=filters, limit=PAGE):
        run = record.dagster_run
        sent = instance.run_coordinator.cancel_run(run.run_id)
        outcome = "termination sent" if sent else "Dagster did not accept the termination"
        instance.report_engine_event(f"Cancel asked for while the run was starting: {outcome}", run)
        cancelled.append(run.run_id)
    return cancelled


def track(
    instance: dg.DagsterInstance,
    database: DatabaseResource,
    after: float | None,
    assets_of_job: AssetsOfJob | None = None,
) -> Tracked:
    """Link and finish the runs updated after `after` (Unix time; None: all); the new cursor.

    `assets_of_job` (see `assets_of_jobs`) lets runs of the implicit asset job be adopted;
    without it they are left alone."""
    filters = dg.RunsFilter(updated_after=dt.datetime.fromtimestamp(after, dt.UTC) if after is not None else None)
    records = instance.get_run_records(filters=filters, order_by="update_timestamp", ascending=True, limit=PAGE)
    result = Tracked(after, cancelled=cancel_started(instance))
    for record in records:
        run = record.dagster_run
        kind = kind_for(run, assets_of_job)
        if kind is not None:
            with database.session() as session:
                linked = link(session, run, kind)
                if linked.new_tags:
                    result.adopted.append(linked.job.id)
                record_times(linked.job, record)
                if run.is_finished and linked.job.status not in TERMINAL:
                    finish(session, instance, linked.job, run, kind)
                    result.finished.append(linked.job.id)
                elif not run.is_finished:
                    # Not the source of truth (reads ask Dagster), but what listing by status filters on.
                    linked.job.status = job_status(run.status)
            if linked.new_tags:
                # After the commit: a run tagged with a job that was never stored would be orphaned.
                instance.add_run_tags(run.run_id, linked.new_tags)
        result.cursor = record.update_timestamp.timestamp()
    return result


@dg.sensor(
    name="job_tracker",
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Makes every run of a registered job a job of the HTTP API (whoever started it) and writes "
    "each job's final state when its run ends.",
)
def job_tracker(context: dg.SensorEvaluationContext, database: DatabaseResource) -> dg.SkipReason:
    after = float(context.cursor) if context.cursor else None
    tracked = track(context.instance, database, after, assets_of_jobs(context.repository_def))
    if tracked.cursor is not None:
        context.update_cursor(repr(tracked.cursor))
    return dg.SkipReason(
        f"{len(tracked.adopted)} run(s) adopted as jobs, {len(tracked.finished)} job(s) finished, "
        f"{len(tracked.cancelled)} run(s) cancelled once started"
    )
