"""`library_derivatives`: the library's edits that run as jobs (video edits, large images, concat,
workflows, best frames), one Dagster run per request.

Inline image edits (the API, under the pixel budget) are recorded as materializations of this
same asset without a run, so every derivative's lineage shows in one place in the Dagster UI.
A run's outputs (every item it made or found cached) are written to `library/runs/<run id>.json`
once complete; the job API lists them.
"""

import json
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from media_pipeline.core.errors import FFmpegError
from media_pipeline.core.files import atomic_path
from media_pipeline.db.models import MediaDerivative, MediaItem, Workflow
from media_pipeline.library import best_frames as best
from media_pipeline.library import edits
from media_pipeline.library.media import Limits, Probed, Refused, by_sha256, record
from media_pipeline.library.recipes import OpRefused, recipe_sha256
from media_pipeline.library.requests import BestFramesJob, ConcatJob, EditJob, LibraryJob, WorkflowJob
from media_pipeline.library.store import LibraryStore
from media_pipeline.library.workflows import INPUT, WorkflowDefinition, check_graph, order
from media_pipeline.platform.executors import FFMPEG_STEP_TAGS
from media_pipeline.resources import ArtifactStore, DatabaseResource
from media_pipeline.settings import load_settings

ASSET = "library_derivatives"
CHECK = "every_output_stored"
_JOB = TypeAdapter(LibraryJob)


class LibraryRunConfig(dg.Config):
    request: str = Field(description="The job as JSON: {action: edit | concat | workflow | best_frames, ...}")


def outputs_path(artifact_root: Path, run_id: str) -> Path:
    return artifact_root / "library" / "runs" / f"{run_id}.json"


def limits_from_settings() -> Limits:
    settings = load_settings()
    return Limits(settings.library_max_pixels, settings.library_max_duration)


def media_output(item: MediaItem, *, kind: str = "media", **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "url": f"/v1/media/{item.id}/content", "media_id": item.id, **extra}


def lineage_metadata(edited: edits.Edited) -> dict[str, Any]:
    return {
        "media_id": edited.item.id,
        "sha256": edited.item.sha256,
        "source_id": edited.derivative.source_id,
        "inputs": edited.derivative.inputs,
        "recipe": edited.derivative.recipe,
        "cached": edited.cached,
    }


def _item(session: Session, media_id: int, field: str = "media_id") -> MediaItem:
    item = session.get(MediaItem, media_id)
    if item is None:
        raise OpRefused(field, f"there is no media with id {media_id} (it was deleted)")
    return item


def run_edit(session: Session, store: LibraryStore, limits: Limits, job: EditJob, run_id: str | None):
    edited = edits.edit(session, store, _item(session, job.media_id), job.ops, limits, run_id=run_id)
    return [media_output(edited.item, cached=edited.cached, details=lineage_metadata(edited))]


def run_concat(session: Session, store: LibraryStore, limits: Limits, job: ConcatJob, run_id: str | None):
    items = [_item(session, media_id, f"items.{n}") for n, media_id in enumerate(job.items)]
    edited, copied = edits.concat(session, store, items, limits, run_id=run_id)
    details = {
        **lineage_metadata(edited),
        "stream_copy": copied if copied is not None else edited.derivative.recipe.get("stream_copy"),
    }
    return [media_output(edited.item, cached=edited.cached, details=details)]


def run_workflow(session: Session, store: LibraryStore, limits: Limits, job: WorkflowJob, run_id: str | None):
    workflow = session.get(Workflow, job.workflow_id)
    if workflow is None:
        raise OpRefused("workflow_id", f"there is no workflow with id {job.workflow_id} (it was deleted)")
    definition = WorkflowDefinition.model_validate(workflow.definition)
    wanted = check_graph(definition.steps)[INPUT]
    source = _item(session, job.media_id)
    if source.type != wanted:
        raise OpRefused(
            "media_id", f"workflow {workflow.name!r} takes a {wanted}; media {source.id} is a {source.type}"
        )
    made: dict[str, MediaItem] = {INPUT: source}
    outputs = []
    for step in order(definition.steps):
        edited = edits.edit(session, store, made[step.use], step.ops, limits, run_id=run_id)
        made[step.id] = edited.item
        outputs.append(
            media_output(
                edited.item, kind="workflow_step", step=step.id, cached=edited.cached, details=lineage_metadata(edited)
            )
        )
    return outputs


def run_best_frames(session: Session, store: LibraryStore, limits: Limits, job: BestFramesJob, run_id: str | None):
    source = _item(session, job.media_id)
    if source.type != "video":
        raise OpRefused("media_id", f"media {source.id} is an image; best frames are chosen from videos")
    chosen, warnings = best.best_frames(store.local_path(source.storage_key), job.count)
    outputs = []
    for frame in chosen:
        recipe = {"best_frame": {"count": job.count, "index": frame.index}}
        recipe_hash = recipe_sha256(recipe)
        hit = edits.cached(session, source.sha256, recipe_hash)
        if hit is not None:
            item = session.get(MediaItem, hit.media_id)
        else:
            sha256, size, key = store.put_bytes(frame.png)
            item = by_sha256(session, sha256)
            if item is None:
                probed = Probed("image", "image/png", "png_pipe", source.width or 0, source.height or 0, "png",
                                None, None, None, False)  # fmt: skip
                item, _ = record(
                    session, sha256, size, key, f"{Path(source.filename).stem[:150]}-frame{frame.index}.png", probed
                )
            derivative = MediaDerivative(
                source_id=source.id,
                media_id=item.id,
                source_sha256=source.sha256,
                recipe=recipe,
                recipe_sha256=recipe_hash,
                inputs=[source.id],
                run_id=run_id,
            )
            session.add(derivative)
            session.commit()
        assert item is not None
        outputs.append(media_output(item, kind="best_frame", details={**best.position(frame), "warnings": warnings}))
    return outputs


def execute(
    session: Session, store: LibraryStore, limits: Limits, job: Any, run_id: str | None
) -> list[dict[str, Any]]:
    runner = {"edit": run_edit, "concat": run_concat, "workflow": run_workflow, "best_frames": run_best_frames}
    return runner[job.action](session, store, limits, job, run_id)


@dg.asset(
    group_name="library",
    pool="ffmpeg",
    op_tags=FFMPEG_STEP_TAGS,
    kinds={"ffmpeg", "pillow"},
    check_specs=[dg.AssetCheckSpec(CHECK, asset=ASSET)],
    description="Derivatives of library items (edits, concats, workflow steps, best frames), each stored once "
    "by sha-256 with its source and canonical recipe. Inline image edits are recorded here without a run.",
)
def library_derivatives(
    context: dg.AssetExecutionContext, config: LibraryRunConfig, database: DatabaseResource, artifacts: ArtifactStore
) -> dg.MaterializeResult:
    try:
        job = _JOB.validate_json(config.request)
    except ValidationError as exc:
        raise dg.Failure(description=f"the library request is not valid: {exc}", allow_retries=False) from exc
    store = LibraryStore(artifacts)
    try:
        with database.session() as session:
            outputs = execute(session, store, limits_from_settings(), job, context.run_id)
            stored = [session.get(MediaItem, out["media_id"]) for out in outputs]
            missing = [item.id for item in stored if item is None or not store.exists(item.storage_key)]
    except (OpRefused, Refused) as exc:
        field = f"{exc.field}: " if isinstance(exc, OpRefused) else ""
        raise dg.Failure(description=f"{field}{exc}", allow_retries=False) from None
    except FFmpegError as exc:
        context.log.error(f"{exc.summary}\n{exc.stderr_tail}")
        raise dg.Failure(description=exc.summary, allow_retries=False) from None
    target = outputs_path(artifacts.root_path, context.run_id)
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(outputs, indent=2))
    table = ["| kind | step | media | cached |", "|---|---|---|---|"]
    table += [f"| {o['kind']} | {o.get('step') or ''} | {o['media_id']} | {o.get('cached', '')} |" for o in outputs]
    return dg.MaterializeResult(
        metadata={
            "action": job.action,
            "outputs": len(outputs),
            "media_ids": dg.MetadataValue.json([o["media_id"] for o in outputs]),
            "table": dg.MetadataValue.md("\n".join(table)),
            "lineage": dg.MetadataValue.json([o.get("details", {}) for o in outputs]),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=CHECK,
                passed=not missing,
                metadata={"missing": dg.MetadataValue.json(missing)},
            )
        ],
    )


def read_outputs(artifact_root: Path, run_id: str) -> list[dict[str, Any]]:
    path = outputs_path(artifact_root, run_id)
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return []
