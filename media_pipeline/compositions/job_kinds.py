"""The compositions area's job kind: `composition_render`, about a composition."""

from __future__ import annotations

from sqlalchemy.orm import Session

from media_pipeline.compositions import store
from media_pipeline.compositions.assets import CLIP_ASSETS
from media_pipeline.compositions.config import CompositionRenderConfig, from_snapshot
from media_pipeline.compositions.partitions import composition_renders, new_render_key, split_render_key
from media_pipeline.platform.job_kinds import JobKind, Prepared, RunFacts, Subject, SubjectError, register


def _prepare(session: Session, subject_id: str, request: CompositionRenderConfig) -> Prepared:
    composition = store.get(session, int(subject_id)) if subject_id.isdigit() else None
    if composition is None:
        raise SubjectError(f"there is no composition with id {subject_id}", missing=True)
    if not composition.segments:
        raise SubjectError(
            f"composition {subject_id} has no segments yet; add one with POST /v1/compositions/{subject_id}/segments",
            code="no_segments",
        )
    ids = {s.id for s in composition.segments}
    unknown = sorted(set(request.force_segments) - ids)
    if unknown:
        raise SubjectError(
            f"force_segments names segments that are not in composition {subject_id}: {unknown}", code="unknown_segment"
        )
    key = new_render_key(composition.id)
    return Prepared(key, from_snapshot(store.snapshot(composition), sorted(set(request.force_segments)), key))


def _subject(session: Session, run: RunFacts) -> Subject | None:
    if not run.partition_key:
        return None
    try:
        composition_id, _ = split_render_key(run.partition_key)
    except ValueError:
        return None
    return Subject("composition", str(composition_id))


_clip_weight = 0.6 / len(CLIP_ASSETS)
COMPOSITION_RENDER = register(
    JobKind(
        name="composition_render",
        area="compositions",
        dagster_job="render_composition",
        request_model=CompositionRenderConfig,
        subject_type="composition",
        progress_unit="segments",
        partitions=composition_renders,
        config_step="composition_plan",
        description="Render a composition: generate the segments not in the generation cache, conform, join.",
        step_weights={
            "composition_plan": 0.05,
            **{a.key.path[-1]: _clip_weight for a in CLIP_ASSETS},
            "composition_video": 0.35,
        },
        subject_of_run=_subject,
        prepare=_prepare,
    )
)
