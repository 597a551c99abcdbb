"""Frame extractions over HTTP: starting a batch's job, and describing the batch as it runs.

A batch is a partition of `extraction_batches`; what was asked (`request.json`), which job runs
it (`job.json`) and what each item produced (`items/<item>/manifest.json`) are files in the
artifact store under `extractions/<batch>/`, so no table is needed. Live state (progress, items
still running, logs) is the batch's job's, as `GET /v1/jobs/{id}` shows it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from fastapi import Response
from sqlalchemy.orm import Session

from api import runs
from api.dagster_gateway import DagsterGateway
from api.extraction_schemas import (
    Extraction,
    ExtractionFrame,
    ExtractionItemOut,
    ExtractionJob,
    ExtractionLog,
)
from api.job_service import (
    add_job,
    as_utc,
    commit_new,
    job_view,
    launch_or_undo,
    replay,
    request_hash,
)
from api.problems import not_found
from media_pipeline.db.models import Job
from media_pipeline.extraction.extract import write_json
from media_pipeline.extraction.job_kinds import FRAME_EXTRACTION
from media_pipeline.extraction.partitions import new_batch_id
from media_pipeline.extraction.request import ExtractionItem, ExtractionRequest
from media_pipeline.extraction.sources import describe
from media_pipeline.platform.urls import artifact_url
from media_pipeline.resources import ArtifactStore

KIND = FRAME_EXTRACTION.name


def batch_folder(artifacts: ArtifactStore, batch: str) -> Path:
    return artifacts.path(f"extractions/{batch}")


# -- starting ---------------------------------------------------------------------------------


def start_extraction(
    session: Session,
    gateway: DagsterGateway,
    response: Response,
    artifacts: ArtifactStore,
    request: ExtractionRequest,
    idempotency_key: str | None,
    route: str,
) -> tuple[str, Job]:
    """Create the batch and its job and launch its run; the batch id and the job.

    The same Idempotency-Key with the same body replays the earlier batch; a launch that fails
    leaves nothing behind.
    """
    body = request.model_dump(mode="json", exclude_unset=True)
    digest = request_hash({"route": route, "body": body})
    earlier = replay(session, idempotency_key, digest)
    if earlier is not None:
        response.headers["Idempotent-Replayed"] = "true"
        return str(earlier.params["extraction_id"]), earlier
    batch = new_batch_id()
    job = add_job(
        session,
        FRAME_EXTRACTION,
        subject_id=batch,
        params={"extraction_id": batch, "items": len(request.items)},
        idempotency_key=idempotency_key,
        digest=digest,
    )
    winner = commit_new(session, idempotency_key, digest)
    if winner is not None:
        response.headers["Idempotent-Replayed"] = "true"
        return str(winner.params["extraction_id"]), winner
    folder = batch_folder(artifacts, batch)
    write_json(folder / "request.json", body)
    write_json(folder / "job.json", {"job_id": job.id, "created_at": as_utc(job.created_at).isoformat()})
    artifacts.publish(folder / "request.json", folder / "job.json")

    def undo() -> None:
        for name in ("request.json", "job.json"):
            artifacts.delete(f"extractions/{batch}/{name}")
        shutil.rmtree(folder, ignore_errors=True)

    launch_or_undo(session, gateway, job, batch, FRAME_EXTRACTION.config_for(request), undo)
    return batch, job


# -- reading ----------------------------------------------------------------------------------


def _read_json(artifacts: ArtifactStore, key: str) -> dict[str, Any] | None:
    # From the store (fetched into this machine's working copy once): the runs that write the
    # manifests may be elsewhere. Each file is written once, complete, so a local copy stays true.
    try:
        with artifacts.open(key) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None  # not there (yet); a store that cannot be reached is a 503 (api/problems.py)


def job_of_batch(session: Session, artifacts: ArtifactStore, batch: str) -> Job:
    valid = batch.startswith("ex_") and "/" not in batch
    pointer = _read_json(artifacts, f"extractions/{batch}/job.json") if valid else None
    job = session.get(Job, pointer["job_id"]) if pointer else None
    if job is None or job.kind != KIND:
        raise not_found("extraction", batch)
    return job


def batch_of_job(job: Job) -> str:
    return str((job.params or {}).get("extraction_id"))


def _frames(manifest: dict[str, Any]) -> list[ExtractionFrame]:
    return [
        ExtractionFrame(
            **{k: v for k, v in frame.items() if k in ExtractionFrame.model_fields and k != "url"},
            url=artifact_url(frame["path"]),
        )
        for frame in manifest.get("frames", [])
    ]


def extraction_view(session: Session, gateway: DagsterGateway, artifacts: ArtifactStore, job: Job) -> Extraction:
    batch = batch_of_job(job)
    folder = f"extractions/{batch}"
    # The job as GET /v1/jobs/{id} shows it (its progress read with a cursor, its items and logs),
    # so the two never disagree; what each finished item made is in its manifest.
    state = job_view(session, gateway, job)
    running = {item.id: item for item in state.items}
    request = _read_json(artifacts, f"{folder}/request.json") or {"items": []}
    items: list[ExtractionItemOut] = []
    for number, raw in enumerate(request.get("items", [])):
        key = f"item-{number:03d}"
        source = describe(ExtractionItem.model_validate(raw))
        manifest = _read_json(artifacts, f"{folder}/items/{key}/manifest.json")
        if manifest is not None:
            items.append(
                ExtractionItemOut(
                    item=key,
                    source=source,
                    status=manifest["status"],
                    error=manifest.get("error"),
                    sha256=manifest.get("sha256"),
                    provenance=manifest.get("provenance"),
                    stream=manifest.get("stream"),
                    frames=_frames(manifest),
                    warnings=manifest.get("warnings", []),
                )
            )
            continue
        seen = running.get(key)
        status, error = (seen.status, seen.error) if seen is not None else ("queued", None)
        if state.status in runs.TERMINAL and status not in ("succeeded", "failed"):
            status = "failed"
            error = error or f"the run ended ({state.status}) before this item was finished" + (
                f": {state.error}" if state.error else ""
            )
        items.append(ExtractionItemOut(item=key, source=source, status=status, error=error))
    succeeded = sum(item.status == "succeeded" for item in items)
    failed = sum(item.status == "failed" for item in items)
    status = ("partial" if failed else "succeeded") if state.status == "succeeded" else state.status
    progress = state.progress
    updated = state.updated_at
    manifest_key = f"{folder}/manifest.json"
    return Extraction(
        id=batch,
        status=status,  # type: ignore[arg-type]
        progress=progress,
        percent=state.percent,
        error=state.error,
        items=items,
        counts={
            "items": len(items),
            "succeeded": succeeded,
            "failed": failed,
            "frames": sum(len(item.frames) for item in items),
        },
        manifest_url=artifact_url(manifest_key) if artifacts.exists(manifest_key) else None,
        logs=[ExtractionLog(ts=log.ts, level=log.level, msg=log.msg, item=log.item) for log in state.logs],
        job=ExtractionJob(
            id=job.id,
            kind=KIND,
            status=state.status,  # type: ignore[arg-type]
            progress=progress,
            run_id=job.run_id,
            url=f"/v1/jobs/{job.id}",
            created_at=as_utc(job.created_at),
            updated_at=updated,
        ),
        created_at=as_utc(job.created_at),
        updated_at=updated,
    )
