"""The editorial area's job kinds: what the API (and every other way of starting a run) can ask of it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.orm import Session

from media_pipeline.db.models import CutStatus, CutVersion, Shot
from media_pipeline.editorial.assets.proxies import ProxyConfig
from media_pipeline.editorial.partitions import cut_versions
from media_pipeline.editorial.requests import FinalVideoConfig, IngestRequest, ThumbnailConfig
from media_pipeline.platform.job_kinds import JobKind, Prepared, RunFacts, Subject, SubjectError, register

AREA = "editorial"


def _cut(session: Session, run: RunFacts) -> CutVersion | None:
    if run.partition_key is None:
        return None
    return session.scalar(sa.select(CutVersion).where(CutVersion.partition_key == run.partition_key))


def cut_of_run(session: Session, run: RunFacts) -> Subject | None:
    cut = _cut(session, run)
    return Subject("cut", str(cut.id)) if cut is not None else None


def shot_of_run(session: Session, run: RunFacts) -> Subject | None:
    # A single-shot render names its shot in the config; one started for several shots (or all,
    # from the launchpad) is about the cut.
    config = run.run_config.get("ops", {}).get("shot_thumbnails", {}).get("config", {})
    shot_ids = config.get("shot_ids") or []
    if len(shot_ids) == 1 and session.get(Shot, int(shot_ids[0])) is not None:
        return Subject("shot", str(shot_ids[0]))
    return cut_of_run(session, run)


def _cut_by_id(session: Session, subject_id: str) -> CutVersion:
    cut = session.get(CutVersion, int(subject_id)) if subject_id.isdigit() else None
    if cut is None:
        raise SubjectError(f"there is no cut {subject_id}; list the cuts with GET /v1/cuts", missing=True)
    return cut


def require_ingested(cut: CutVersion) -> None:
    if cut.status != CutStatus.INGESTED:
        state = f"failed: {cut.error}" if cut.status == CutStatus.FAILED else "not been ingested yet"
        raise SubjectError(
            f"cut {cut.id} has {state}; its shots exist once its ingest job has succeeded", code="cut_not_ingested"
        )


def prepare_ingest(session: Session, subject_id: str, request: IngestRequest) -> Prepared:
    # Ingesting again (after fixing media, say) is allowed whatever the cut's state.
    return Prepared(_cut_by_id(session, subject_id).partition_key, request)


def prepare_cut_render(session: Session, subject_id: str, request: Any) -> Prepared:
    cut = _cut_by_id(session, subject_id)
    require_ingested(cut)
    return Prepared(cut.partition_key, request)


def prepare_shot_render(session: Session, subject_id: str, request: ThumbnailConfig) -> Prepared:
    shot = session.get(Shot, int(subject_id)) if subject_id.isdigit() else None
    if shot is None:
        raise SubjectError(f"there is no shot {subject_id}; list a cut's shots with GET /v1/cuts/{{id}}/shots",
                           missing=True)  # fmt: skip
    return Prepared(shot.cut_version.partition_key, request.model_copy(update={"shot_ids": [shot.id]}))


def ingest_ended(session: Session, run: RunFacts) -> None:
    """A cut's status is its ingest's, and only its ingest's.

    An ingest that ended without succeeding (a step failed, its worker was killed or reaped, it
    was cancelled) leaves the cut `failed` with the reason, never `published` or half-ingested
    for good. One that succeeded leaves it `ingested`, also when it was a re-execution of the
    failed steps only (which does not run `cut_shots` again).
    """
    cut = _cut(session, run)
    if cut is None:
        return
    if run.status.value == "SUCCESS":
        if cut.status == CutStatus.FAILED and cut.shot_count is not None:
            cut.status, cut.error = CutStatus.INGESTED, None
        return
    cut.status = CutStatus.FAILED
    if run.status.value == "CANCELED":
        cut.error = (
            "the ingest was cancelled before it finished; re-run ingest_cut for this partition from the Dagster UI, "
            "or publish the timeline again"
        )
    else:
        cut.error = run.error or "the ingest failed; open its run in the Dagster UI"


INGEST_WEIGHTS = {
    "cut_timeline": 0.1,
    "cut_shots": 0.15,
    "cut_diff": 0.05,
    "shot_thumbnails": 0.6,
    "contact_sheet": 0.1,
}


def editorial_kind(name: str, dagster_job: str, request_model: type[BaseModel], **fields: Any) -> JobKind:
    """A job kind of this area: runs in a cut version's partition and is about that cut, unless
    `fields` say otherwise (a subject, how to prepare it, its config step, ...)."""
    defaults: dict[str, Any] = {
        "subject_type": "cut",
        "progress_unit": "shots",
        "subject_of_run": cut_of_run,
        "prepare": prepare_cut_render,
    }
    return register(
        JobKind(
            name=name,
            area=AREA,
            dagster_job=dagster_job,
            request_model=request_model,
            partitions=cut_versions,
            **(defaults | fields),
        )
    )


ingest_cut = editorial_kind(
    "ingest_cut",
    "ingest_cut",
    IngestRequest,
    description="Read a published cut, extract its shots, diff it, render thumbnails and the contact sheet",
    step_weights=INGEST_WEIGHTS,  # thumbnails dominate: they are where the time goes
    on_run_end=ingest_ended,
    prepare=prepare_ingest,
)
# A cut's thumbnails and one shot's are the same step, configured the same way.
THUMBNAIL_STEP: dict[str, Any] = {"config_step": "shot_thumbnails"}

thumbnails = editorial_kind(
    "thumbnails",
    "render_thumbnails",
    ThumbnailConfig,
    **THUMBNAIL_STEP,
    description="Re-render the cut's thumbnails (all shots or some) and its contact sheet",
    step_weights={"shot_thumbnails": 0.85, "contact_sheet": 0.15},
)
shot_thumbnail = editorial_kind(
    "shot_thumbnail",
    "render_shot_thumbnail",
    ThumbnailConfig,
    subject_type="shot",
    **THUMBNAIL_STEP,
    description="Re-render one shot's thumbnail only (no contact sheet)",
    step_weights={"shot_thumbnails": 1.0},
    subject_of_run=shot_of_run,
    prepare=prepare_shot_render,
)
final_video = editorial_kind(
    "final_video",
    "render_final_video",
    FinalVideoConfig,
    progress_unit="frames",
    config_step="final_video",
    description="Conform the cut into one H.264 video",
    step_weights={"final_video": 1.0},
)
proxies = editorial_kind(
    "proxies",
    "render_proxies",
    ProxyConfig,
    config_step="shot_proxies",
    description="Review proxies with burn-ins and filmstrips for all of the cut's shots or some",
    step_weights={"shot_proxies": 1.0},
)
