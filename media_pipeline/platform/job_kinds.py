"""The job contract: each product area registers the kinds of job it offers.

A job kind says which Dagster job does the work, how its runs are partitioned, what a request
looks like (the request model is also the run's config model, so every limit is checked by the
same model, whether the request came over HTTP or from the Dagster launchpad; see RequestConfig),
what the job is about (its subject) and in what unit its progress is counted.

Generic code (the job service, the job routes, the Dagster gateway, the run status sensor) reads
this registry and nothing else: adding an area adds no line there.

An area declares its kinds in `media_pipeline/<area>/job_kinds.py` by calling `register(...)`;
`load()` imports every area's module once.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from media_pipeline.areas import AREAS

# Tags linking a run to its job, both ways (the job row records the run id).
JOB_ID_TAG = "media_pipeline/job_id"
KIND_TAG = "media_pipeline/kind"
# A cancel asked for while the run was STARTING, which Dagster refuses to terminate: the run's
# executor cancels it before its first step (executors._RecordsHost); the job_tracker sensor
# terminates one that started before the tag landed (job_tracker.cancel_started).
CANCEL_TAG = "media_pipeline/cancel"
CANCEL_REQUESTED = "requested"
# The engine event recorded with that tag, so that the run's own records (which a job's progress,
# stage and live stream are read from) say the cancel is on its way while nothing else happens yet.
CANCEL_PENDING_MESSAGE = "Cancel asked for while the run was starting; it stops as soon as it has started"


class UnknownJobKind(KeyError):
    pass


@dataclass(frozen=True)
class Subject:
    """What a job is about: a type the kind names ("cut", "shot", ...) and an id in that area."""

    type: str
    id: str


@dataclass(frozen=True)
class RunFacts:
    """What a run tells about itself, for kinds to work out its subject or react to its end."""

    run_id: str
    job_name: str
    status: dg.DagsterRunStatus
    partition_key: str | None
    run_config: Mapping[str, Any]
    tags: Mapping[str, str]
    error: str | None = None  # the failure sentence, once a run has failed


class SubjectError(Exception):
    """A job cannot be started for this subject; the message says why, for the client.

    `missing`: there is no such subject (a 404); otherwise it exists but is not ready (a 409).
    """

    def __init__(self, message: str, *, missing: bool = False, code: str = "subject_not_ready") -> None:
        super().__init__(message)
        self.missing = missing
        self.code = "not_found" if missing else code


@dataclass(frozen=True)
class Prepared:
    """A request made ready to launch: the partition it runs in, and the request as it will run."""

    partition_key: str | None
    request: BaseModel


class RequestConfig(dg.Config):
    """A job kind's request that is also its step's run config: one model, one set of checks.

    Types are pydantic's (strict: "480" is not a width, and an unknown option is a typo worth
    reporting), checked in both places. Values are checked by `problems()` rather than by pydantic
    constraints: Dagster builds a step's config object before the step runs, so a constraint would
    fail a Launchpad run with a validation traceback, where `check()` fails it with the sentences
    the API answers as a 422 (`api.problems.reject_problems`).
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    def problems(self) -> list[tuple[str, str]]:
        """(field, sentence) for each option out of range."""
        return []

    def check(self) -> None:
        """In a step: fail the run, without retries, with every problem at once."""
        if problems := self.problems():
            raise dg.Failure(description="; ".join(sentence for _, sentence in problems), allow_retries=False)


def _dump(request: BaseModel) -> dict[str, Any]:
    return request.model_dump(mode="json")


@dataclass(frozen=True)
class JobKind:
    """One kind of job an area offers (e.g. `ingest_cut`, `frame_extraction`)."""

    name: str
    area: str
    dagster_job: str
    # The body a client sends to start one; a `dg.Config` subclass when the run takes config, so
    # the same model validates the HTTP request and the Dagster run config.
    request_model: type[BaseModel]
    subject_type: str  # what the job is about: "cut", "shot", "extraction", "slideshow_render", ...
    progress_unit: str  # "shots", "frames", "scenes", "segments", "items"
    # Runs of this kind are partitioned by this dynamic partition set (None: unpartitioned).
    partitions: dg.DynamicPartitionsDefinition | None = None
    # The step whose config the request becomes (None: the run takes no config).
    config_step: str | None = None
    # The step config for a validated request; by default the request itself. It is also what
    # the job shows as its `params`.
    step_config: Callable[[Any], Mapping[str, Any]] = _dump
    description: str = ""
    # Steps and how much of the whole job each is worth, for a single progress figure.
    step_weights: Mapping[str, float] = field(default_factory=dict)
    # The subject of a run nobody asked the API for (a sensor's, the Dagster UI's), from the
    # run's partition and config; None when it cannot be told. Unset: a partitioned kind is
    # about its partition key.
    subject_of_run: Callable[[Session, RunFacts], Subject | None] | None = None
    # Called once when a run of this kind has ended, in the transaction that records the job's
    # final state (e.g. an ingest that died marks its cut failed).
    on_run_end: Callable[[Session, RunFacts], None] | None = None
    # Checks the subject (raising SubjectError) and returns the partition to run in, with the
    # request completed from the subject if need be (a shot's id in the shot selection). Unset:
    # any subject id is accepted and the run is unpartitioned.
    prepare: Callable[[Session, str, Any], Prepared] | None = None
    # What a run of this kind made, as job outputs ({"kind", "url", ...}). Unset: its renders.
    outputs_of_run: Callable[[Session, str], list[dict[str, Any]]] | None = None

    def prepared(self, session: Session, subject_id: str, request: BaseModel) -> Prepared:
        if self.prepare is not None:
            return self.prepare(session, subject_id, request)
        if self.partitions is not None:
            raise TypeError(f"job kind {self.name!r} is partitioned, so it needs `prepare` to pick the partition")
        return Prepared(None, request)

    def params_for(self, request: BaseModel) -> dict[str, Any]:
        return dict(self.step_config(request)) if self.config_step is not None else _dump(request)

    def config_for(self, request: BaseModel) -> Mapping[str, Any]:
        if self.config_step is None:
            return {}
        return {"ops": {self.config_step: {"config": dict(self.step_config(request))}}}

    def subject_for(self, session: Session, run: RunFacts) -> Subject | None:
        if self.subject_of_run is not None:
            return self.subject_of_run(session, run)
        # A kind whose partition is its request (a batch, a render) is about that partition.
        if self.partitions is not None and run.partition_key:
            return Subject(self.subject_type, run.partition_key)
        return None


_REGISTRY: dict[str, JobKind] = {}
_loaded = False


def register(kind: JobKind) -> JobKind:
    """Add a job kind; registering the same name twice with a different definition is an error."""
    existing = _REGISTRY.get(kind.name)
    if existing is not None and existing != kind:
        raise ValueError(f"job kind {kind.name!r} is already registered by area {existing.area!r}")
    _REGISTRY[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """For tests that register a throwaway kind."""
    _REGISTRY.pop(name, None)


def load() -> dict[str, JobKind]:
    """Every registered kind, after importing each area's `job_kinds` module (once)."""
    global _loaded
    if not _loaded:
        for area in AREAS:
            try:
                importlib.import_module(f"media_pipeline.{area}.job_kinds")
            except ModuleNotFoundError as exc:
                if exc.name != f"media_pipeline.{area}.job_kinds":
                    raise
        _loaded = True
    return dict(_REGISTRY)


def get(name: str) -> JobKind:
    kinds = load()
    if name not in kinds:
        raise UnknownJobKind(name)
    return kinds[name]


def for_dagster_job(job_name: str) -> list[JobKind]:
    """The kinds carried out by a Dagster job (a run started in the UI maps back through this)."""
    return [kind for kind in load().values() if kind.dagster_job == job_name]


def kind_of_run(job_name: str, tags: Mapping[str, str]) -> JobKind | None:
    """The kind a run carries out: the one its kind tag names, else the first registered for its
    Dagster job (several kinds may share one job, e.g. a cut's and a shot's thumbnails)."""
    tagged = tags.get(KIND_TAG)
    kinds = for_dagster_job(job_name)
    for kind in kinds:
        if kind.name == tagged:
            return kind
    return kinds[0] if kinds else None


def kind_for_assets(
    selected: AbstractSet[dg.AssetKey],
    assets_of_job: Callable[[str], AbstractSet[dg.AssetKey]],
    tags: Mapping[str, str],
) -> JobKind | None:
    """The kind a run of selected assets (the Dagster UI's Materialize) carries out: the one whose
    Dagster job materializes exactly those assets, else the one with the fewest assets that
    include them all (a partial ingest is still an ingest); None when no registered job does."""
    if not selected:
        return None
    covering = []
    for job_name in sorted(dagster_jobs()):
        assets = assets_of_job(job_name)
        if assets and set(selected) <= set(assets):
            covering.append((len(assets) != len(selected), len(assets), job_name))
    if not covering:
        return None
    return kind_of_run(min(covering)[2], tags)


def dagster_jobs() -> set[str]:
    return {kind.dagster_job for kind in load().values()}


def step_weights(job_name: str, kind: str | None = None) -> Mapping[str, float]:
    """How much each step of a Dagster job is worth (the same for every kind that runs it).

    `kind`: the job's kind, for a run whose Dagster job names no kind (the UI's Materialize runs
    the implicit asset job, with the steps of the kind it was adopted as)."""
    kinds = for_dagster_job(job_name)
    if not kinds and kind is not None and kind in load():
        kinds = [load()[kind]]
    return kinds[0].step_weights if kinds else {}
