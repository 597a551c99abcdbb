"""The job contract: each product area registers the kinds of job it offers.

A job kind says which Dagster job does the work, how its runs are partitioned, what a request
looks like (the request model is also the run's config model, so every limit is validated once,
by the same pydantic model, whether the request came over HTTP or from the Dagster launchpad),
what the job is about (its subject) and in what unit its progress is counted.

Generic code (the job service, the job routes, the Dagster gateway, the run status sensor) reads
this registry and nothing else: adding an area adds no line there.

An area declares its kinds in `media_pipeline/<area>/job_kinds.py` by calling `register(...)`;
`load()` imports every area's module once.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from pydantic import BaseModel

from media_pipeline.areas import AREAS


class UnknownJobKind(KeyError):
    pass


def _config_for_step(step: str) -> Callable[[BaseModel], dict[str, Any]]:
    def run_config(request: BaseModel) -> dict[str, Any]:
        return {"ops": {step: {"config": request.model_dump(mode="json")}}}

    return run_config


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
    # The run config for a validated request; by default the request is the config of `config_step`.
    run_config: Callable[[BaseModel], Mapping[str, Any]] | None = None
    config_step: str | None = None
    description: str = ""
    # Steps and how much of the whole job each is worth, for a single progress figure.
    step_weights: Mapping[str, float] = field(default_factory=dict)

    def config_for(self, request: BaseModel) -> Mapping[str, Any]:
        if self.run_config is not None:
            return self.run_config(request)
        if self.config_step is not None:
            return _config_for_step(self.config_step)(request)
        return {}


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
