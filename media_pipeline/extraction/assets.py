"""`extraction_frames`: one run per batch; its items fetched and extracted in parallel threads.

An item that cannot be fetched or decoded fails alone, with a sentence; the run fails only when
every item failed. Each item's manifest is written as soon as it is finished, the batch's at the
end, so the API shows items as they complete.
"""

import base64
import datetime as dt
import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
from PIL import Image
from pydantic import Field, ValidationError

from media_pipeline.core import frames
from media_pipeline.core.ffmpeg import FFmpegError
from media_pipeline.core.frames import StreamInfo
from media_pipeline.db.models import MediaItem
from media_pipeline.extraction.crops import CropError
from media_pipeline.extraction.extract import ItemPlan, extract_item, stream_record, write_json
from media_pipeline.extraction.partitions import extraction_batches
from media_pipeline.extraction.request import ExtractionItem, ExtractionRequest
from media_pipeline.extraction.resources import ExtractionSources
from media_pipeline.extraction.selection import planned_frames
from media_pipeline.extraction.sources import FetchedSource, LibraryFile, SourceRefused, describe, fetch
from media_pipeline.library.store import LibraryStore
from media_pipeline.platform.executors import FFMPEG_STEP_TAGS
from media_pipeline.platform.progress import ProgressReporter
from media_pipeline.resources import ArtifactStore, DatabaseResource, FFmpegResource

CHECK = "every_planned_frame_written"
PROGRESS_INTERVAL = 1.0  # seconds between an item's progress events


class ExtractionConfig(dg.Config):
    request: str = Field(description="The batch's request as JSON, as POST /v1/extractions takes it")


def batch_dir(artifacts: ArtifactStore, batch: str) -> Path:
    return artifacts.path(f"extractions/{batch}")


def item_key(number: int) -> str:
    return f"item-{number:03d}"


@dataclass
class ItemState:
    number: int
    item: ExtractionItem
    plan: ItemPlan
    status: str = "queued"
    error: str | None = None
    fetched: FetchedSource | None = None
    info: StreamInfo | None = None
    planned: int = 0
    advanced: int = 0
    frames: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    started_at: str | None = None
    finished_at: str | None = None

    @property
    def key(self) -> str:
        return item_key(self.number)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _sentence(exc: BaseException) -> str:
    # ffmpeg/libav's own words can name server paths: they go to the run log, not to clients.
    if isinstance(exc, FFmpegError):
        return exc.summary
    if isinstance(exc, SourceRefused | CropError | ValueError):
        return str(exc)
    return f"the item failed unexpectedly ({type(exc).__name__}); the run log has the details"


def item_manifest(state: ItemState, batch: str, artifacts: ArtifactStore, folder: Path) -> dict[str, Any]:
    frames_dir = folder / "frames"
    return {
        "batch": batch,
        "item": state.key,
        "number": state.number,
        "source": describe(state.item),
        "status": state.status,
        "error": state.error,
        "sha256": state.fetched.sha256 if state.fetched else None,
        "provenance": state.fetched.provenance if state.fetched else None,
        "stream": stream_record(state.info) if state.info else None,
        "mode": state.plan.frames.mode,
        "format": state.plan.format,
        "planned": state.planned,
        "written": len(state.frames),
        "frames": [{**record, "path": artifacts.relative(frames_dir / record["file"])} for record in state.frames],
        "warnings": state.warnings,
        "started_at": state.started_at,
        "finished_at": state.finished_at,
    }


def preview_strip(paths: list[Path], height: int = 120) -> dg.MetadataValue:
    """The first extracted frames side by side, inline in the materialization."""
    tiles = []
    for path in paths[:6]:
        with Image.open(path) as image:
            tile = image.convert("RGB")
            tile.thumbnail((height * 4, height))
            tiles.append(tile)
    strip = Image.new("RGB", (sum(t.width for t in tiles) + 4 * (len(tiles) - 1), height), "white")
    x = 0
    for tile in tiles:
        strip.paste(tile, (x, 0))
        x += tile.width + 4
    buffer = io.BytesIO()
    strip.save(buffer, "JPEG", quality=80)
    return dg.MetadataValue.md(f"![preview](data:image/jpeg;base64,{base64.b64encode(buffer.getvalue()).decode()})")


def library_files(database: DatabaseResource, artifacts: ArtifactStore) -> Callable[[int], LibraryFile | None]:
    """Media library items by id, as local files from the library's store (S3 too)."""

    def lookup(media_id: int) -> LibraryFile | None:
        with database.session() as session:
            item = session.get(MediaItem, media_id)
            if item is None:
                return None
            key, sha256, kind = item.storage_key, item.sha256, item.type
        return LibraryFile(LibraryStore(artifacts).local_path(key), sha256, kind)

    return lookup


@dg.asset(
    partitions_def=extraction_batches,
    group_name="extraction",
    pool="ffmpeg",
    op_tags=FFMPEG_STEP_TAGS,
    kinds={"pyav", "jpeg"},
    check_specs=[dg.AssetCheckSpec(CHECK, asset="extraction_frames")],
    description="Exact frames and crops from every video of a batch, with a manifest per item and per batch.",
)
def extraction_frames(
    context: dg.AssetExecutionContext,
    config: ExtractionConfig,
    artifacts: ArtifactStore,
    ffmpeg: FFmpegResource,
    extraction_sources: ExtractionSources,
    database: DatabaseResource,
) -> dg.MaterializeResult:
    batch = context.partition_key
    try:
        request = ExtractionRequest.model_validate_json(config.request)
    except ValidationError as exc:
        raise dg.Failure(description=f"the extraction request is not valid: {exc}", allow_retries=False) from exc
    folder = batch_dir(artifacts, batch)
    write_json(folder / "request.json", request.model_dump(mode="json"))
    policy = extraction_sources.policy(library=library_files(database, artifacts))
    progress = ProgressReporter.for_context(context, unit="frames")
    lock = threading.Lock()
    states = [
        ItemState(
            number,
            item,
            ItemPlan(request.frames_for(item), request.crop_for(item), request.format_for(item), request.width),
        )
        for number, item in enumerate(request.items)
    ]

    def log(level: str, msg: str, state: ItemState | None = None) -> None:
        # The structured line is the job's (GET /v1/jobs/{id}, the extraction's logs); the plain
        # copy, at DEBUG, is for reading the run in the Dagster UI, and not shown twice to clients.
        progress.log(level, msg, item=state.key if state else None)  # type: ignore[arg-type]
        context.log.debug(f"{level.upper()} {state.key}: {msg}" if state else f"{level.upper()} {msg}")

    def finish(state: ItemState, status: str, error: str | None = None) -> None:
        state.status, state.error, state.finished_at = status, error, _now()
        item_dir = folder / "items" / state.key
        manifest = item_manifest(state, batch, artifacts, item_dir)
        write_json(item_dir / "manifest.json", manifest)
        # The item's frames, then its manifest: a manifest in the store names only stored frames.
        artifacts.publish(*(frame["path"] for frame in manifest["frames"]), item_dir / "manifest.json")

    def fail(state: ItemState, exc: BaseException, *, report: bool = True) -> None:
        sentence = _sentence(exc)
        # The exception as raised, for operators (the Dagster UI); ffmpeg's words may name server
        # paths, so clients get the sentence only, at DEBUG the job API leaves this line out.
        context.log.debug(f"{state.key} ({describe(state.item)}) failed: {exc!r}")
        with lock:
            remainder = state.planned - state.advanced
            state.advanced = state.planned
        finish(state, "failed", sentence)
        if report:
            reported_failure(state, remainder)

    def reported_failure(state: ItemState, advance: int) -> None:
        progress.item_failed(state.key, state.error or "", advance=advance)
        log("error", f"failed: {state.error}", state)

    # 1. Fetch and probe every item (downloads run in parallel), so the plan is known up front.
    progress.stage("fetching")

    def prepare(state: ItemState) -> None:
        state.started_at = _now()
        state.fetched = fetch(state.item, folder / "items" / state.key / "source", policy)
        state.info = frames.stream_info(state.fetched.path)
        state.planned = planned_frames(state.plan.frames, state.info)

    def prepared(state: ItemState, outcome: BaseException | None) -> None:
        if isinstance(outcome, BaseException):
            fail(state, outcome, report=False)  # reported once the plan is out

    ffmpeg.map_parallel(prepare, states, prepared)
    ready = [state for state in states if state.status == "queued"]
    progress.plan(total=sum(state.planned for state in ready), items=[state.key for state in states])
    for state in states:
        if state.status == "failed":
            reported_failure(state, 0)

    # 2. Extract, one item per worker thread; progress counts frames written over frames planned.
    progress.stage("extracting")

    def on_frame(state: ItemState) -> Any:
        counted = 0
        last_sent = time.monotonic()

        def advance(_record: dict[str, Any]) -> None:
            nonlocal counted, last_sent
            # Never past the plan before the item ends: an estimate (scenes) must not overshoot.
            counted = min(counted + 1, state.planned - 1)
            # Each event is a write to Dagster's event log: at most one per item every
            # PROGRESS_INTERVAL seconds (the rest goes out with the item's end).
            if time.monotonic() - last_sent < PROGRESS_INTERVAL:
                return
            with lock:
                step = counted - state.advanced
                state.advanced += max(0, step)
            if step > 0:
                progress.advance(step, item=state.key)
                last_sent = time.monotonic()

        return advance

    def run_item(state: ItemState) -> None:
        assert state.fetched is not None
        state.status = "running"
        progress.item_started(state.key)
        deadline = time.monotonic() + extraction_sources.item_timeout
        out_dir = folder / "items" / state.key / "frames"
        result = extract_item(state.fetched.path, state.plan, out_dir, deadline=deadline, on_frame=on_frame(state))
        state.frames, state.warnings = result.frames, result.warnings

    def item_ended(state: ItemState, outcome: BaseException | None) -> None:
        if isinstance(outcome, BaseException):
            fail(state, outcome)
            return
        with lock:
            remainder = state.planned - state.advanced
            state.advanced = state.planned
        finish(state, "succeeded")
        progress.item_done(state.key, advance=remainder)
        log("info", f"{len(state.frames)} frames written", state)
        for warning in state.warnings:
            log("warning", warning, state)

    ffmpeg.map_parallel(run_item, ready, item_ended)
    progress.flush()  # the reporter batches: what is still waiting goes out now

    manifests = [item_manifest(state, batch, artifacts, folder / "items" / state.key) for state in states]
    succeeded = [m for m in manifests if m["status"] == "succeeded"]
    failed = [m for m in manifests if m["status"] == "failed"]
    status = "succeeded" if not failed else ("failed" if not succeeded else "partial")
    manifest = {
        "batch": batch,
        "status": status,
        "request": request.model_dump(mode="json"),
        "counts": {
            "items": len(manifests),
            "succeeded": len(succeeded),
            "failed": len(failed),
            "frames": sum(m["written"] for m in manifests),
        },
        "items": manifests,
        "finished_at": _now(),
    }
    manifest_path = folder / "manifest.json"
    write_json(manifest_path, manifest)
    artifacts.publish(manifest_path)
    metadata: dict[str, Any] = {
        "items": len(manifests),
        "succeeded": len(succeeded),
        "failed": len(failed),
        "frames": manifest["counts"]["frames"],
        "manifest": dg.MetadataValue.path(str(manifest_path)),
        "failures": dg.MetadataValue.md("\n".join(f"- {m['item']}: {m['error']}" for m in failed) or "none"),
        "table": dg.MetadataValue.md(items_table(manifests)),
    }
    if not succeeded:
        raise dg.Failure(
            description=f"every item of the batch failed; first: {failed[0]['item']}: {failed[0]['error']}",
            metadata=metadata,
            allow_retries=False,
        )
    written = [artifacts.path(frame["path"]) for m in succeeded for frame in m["frames"]]
    if written:
        metadata["preview"] = preview_strip(written)
    return dg.MaterializeResult(metadata=metadata, check_results=[frames_check(manifests, artifacts)])


def items_table(manifests: list[dict[str, Any]]) -> str:
    rows = ["| item | source | status | frames | first frames (index @ timecode) |", "|---|---|---|---|---|"]
    for m in manifests:
        first = ", ".join(f"{f['index']} @ {f['timecode']}" for f in m["frames"][:4])
        source = m["source"][-60:].replace("|", "\\|")
        rows.append(f"| {m['item']} | {source} | {m['status']} | {m['written']} | {first} |")
    return "\n".join(rows)


def frames_check(manifests: list[dict[str, Any]], artifacts: ArtifactStore) -> dg.AssetCheckResult:
    """Every item either failed (with its sentence) or has each frame it lists on disk, and wrote
    every frame it planned except those its warnings account for (past the end of the video)."""
    problems = []
    for m in manifests:
        if m["status"] == "failed":
            if not m["error"]:
                problems.append(f"{m['item']} failed without a reason")
            continue
        missing = [f["path"] for f in m["frames"] if not artifacts.path(f["path"]).is_file()]
        if missing:
            problems.append(f"{m['item']}: {len(missing)} listed frames are not on disk")
        named = sum(len(f["requested"]) for f in m["frames"])
        if m["mode"] in ("frames", "timestamps", "best") and named < m["planned"] and not m["warnings"]:
            problems.append(f"{m['item']}: {named} of {m['planned']} planned frames written, no reason given")
    return dg.AssetCheckResult(
        check_name=CHECK,
        passed=not problems,
        metadata={"problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none")},
    )
