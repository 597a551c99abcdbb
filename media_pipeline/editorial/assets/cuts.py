"""The editorial asset graph, one partition per cut version.

cut_timeline -> cut_shots -> shot_thumbnails -> contact_sheet

Shot-level work happens inside the cut's partition (Dagster cannot express "the shots of this
cut" as sub-partitions); per-shot results live in the domain database and in metadata.
"""

import base64
import io
import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as sa
from PIL import Image
from sqlalchemy.orm import Session

from media_pipeline.core.files import atomic_path
from media_pipeline.core.timecode import rate_label
from media_pipeline.db.models import CutStatus, CutVersion, MediaStatus, Render, RenderStatus, Shot
from media_pipeline.editorial.ingest import store_shots, store_timeline
from media_pipeline.editorial.media import MediaResolver
from media_pipeline.editorial.partitions import cut_versions
from media_pipeline.editorial.requests import ShotSelection, ThumbnailConfig
from media_pipeline.editorial.safe_read import TimelineLimits
from media_pipeline.editorial.thumbnails import (
    FrameChoiceError,
    SheetCell,
    ThumbnailPlan,
    parse_frame_choice,
    plan_thumbnail,
    render_contact_sheets,
    render_thumbnail,
    sheet_page_path,
)
from media_pipeline.editorial.timecodes import record_timecode, source_timecode
from media_pipeline.editorial.timeline import TimelineError
from media_pipeline.platform.executors import FFMPEG_STEP_TAGS
from media_pipeline.platform.progress import ProgressReporter
from media_pipeline.resources import ArtifactStore, DatabaseResource, FFmpegResource, MediaSearchResource
from media_pipeline.settings import load_settings

GROUP = "editorial"


def load_cut(session: Session, partition_key: str) -> CutVersion:
    cut = session.scalar(sa.select(CutVersion).where(CutVersion.partition_key == partition_key))
    if cut is None:
        raise dg.Failure(
            description=f"cut version {partition_key!r} is not in the domain database; publish it through the "
            "API or a watch folder instead of adding the partition by hand",
            allow_retries=False,
        )
    return cut


def add_shot_notes(database: DatabaseResource, notes: Iterable[tuple[int, str]]) -> None:
    """Each (shot id, note) joins that shot's notes once, however often the shot is rendered."""
    notes = list(notes)
    if not notes:
        return
    with database.session() as session:
        for shot_id, note in notes:
            shot = session.get(Shot, shot_id)
            if shot is not None and note not in (shot.notes or []):
                shot.notes = [*(shot.notes or []), note]


@contextmanager
def failing_cut(database: DatabaseResource, partition_key: str) -> Iterator[None]:
    """Turn any error into a failed cut version with a sentence, and a Dagster failure.

    A user-facing error (TimelineError, FrameChoiceError) is the sentence. Anything else is a
    fault of ours or of a reader: clients get a sentence naming no internals, the run's log in
    the Dagster UI gets the exception.
    """
    try:
        yield
    except (TimelineError, FrameChoiceError) as exc:
        mark_failed(database, partition_key, str(exc))
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    except dg.Failure:
        raise
    except Exception as exc:
        sentence = (
            "the ingest failed on an unexpected error while reading this timeline; nothing was stored for it. "
            "Its run's log in the Dagster UI has the details: report them with the timeline file"
        )
        mark_failed(database, partition_key, sentence)
        raise dg.Failure(description=sentence, allow_retries=False) from exc


def mark_failed(database: DatabaseResource, partition_key: str, error: str) -> None:
    with database.session() as session:
        cut = load_cut(session, partition_key)
        cut.status = CutStatus.FAILED
        cut.error = error


def preview_markdown(path: Path, width: int = 640) -> dg.MetadataValue:
    with Image.open(path) as image:
        image = image.convert("RGB")
        image.thumbnail((width, width * 4))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=80)
    data = base64.b64encode(buffer.getvalue()).decode()
    return dg.MetadataValue.md(f"![preview](data:image/jpeg;base64,{data})")


def first_thumbnails_markdown(paths: list[Path], width: int = 200) -> dg.MetadataValue:
    """The first thumbnails side by side, each scaled to `width`: small enough to inline."""
    images = []
    for path in paths:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((width, width))
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=75)
        images.append(f"![{path.stem}](data:image/jpeg;base64,{base64.b64encode(buffer.getvalue()).decode()})")
    return dg.MetadataValue.md(" ".join(images))


@dg.asset(
    partitions_def=cut_versions,
    group_name=GROUP,
    kinds={"otio"},
    description="The editor's timeline for this cut version (EDL, FCP XML, AAF, ALE, OTIO ...), read at its exact "
    "frame rate and start timecode and kept as OTIO. Its warnings say what was left out (disabled clips and tracks).",
)
def cut_timeline(
    context: dg.AssetExecutionContext, database: DatabaseResource, artifacts: ArtifactStore
) -> dg.MaterializeResult:
    key = context.partition_key
    output = artifacts.cut_dir(key) / "timeline.otio"
    with failing_cut(database, key), database.session() as session:
        cut = load_cut(session, key)
        if Path(cut.source_path).is_relative_to(artifacts.root_path):
            artifacts.localize(cut.source_path)  # published by the API, perhaps on another machine
        report = store_timeline(cut, output, TimelineLimits.from_settings(load_settings()))
        cut.rate = report.rate
        source = {"path": cut.source_path, "sha256": cut.source_sha256, "filename": cut.source_filename}
        drop_frame = bool(cut.options.get("drop_frame"))
    artifacts.publish(output)
    for warning in report.warnings:
        context.log.warning(warning)
    return dg.MaterializeResult(
        metadata={
            "timeline": dg.MetadataValue.path(str(output)),
            "source_file": dg.MetadataValue.path(source["path"]),
            "source_sha256": source["sha256"],
            "adapter": report.adapter,
            "rate": report.rate,
            "drop_frame": drop_frame,
            "warnings": dg.MetadataValue.json(report.warnings),
        },
        data_version=dg.DataVersion(source["sha256"]),
    )


@dg.asset(
    partitions_def=cut_versions,
    group_name=GROUP,
    deps=[cut_timeline],
    kinds={"otio", "sqlite"},
    description="Every shot of the cut, in edit order: where it sits (record timecode), which source frames it "
    "uses (source timecode) and the media file found for it. Shots whose media was not found are listed with the "
    "reason and still get a slate.",
)
def cut_shots(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    artifacts: ArtifactStore,
    media_search: MediaSearchResource,
) -> dg.MaterializeResult:
    key = context.partition_key
    cut_dir = artifacts.cut_dir(key)
    with failing_cut(database, key), database.session() as session:
        cut = load_cut(session, key)
        origin = cut.options.get("origin_dir")
        resolver = MediaResolver(
            media_search.allowed_roots(), cut.options.get("media_roots", []), Path(origin) if origin else None
        )
        report = store_shots(session, cut, artifacts.localize(cut_dir / "timeline.otio"), resolver)
        rows = [shot_row(shot, cut) for shot in report.shots]
        missing = [f"{shot.name}: {(shot.notes or ['missing'])[-1]}" for shot in report.missing]
        generators = sum(1 for shot in report.shots if shot.media_status == MediaStatus.GENERATOR)
    shots_json = cut_dir / "shots.json"
    with atomic_path(shots_json) as tmp:
        tmp.write_text(json.dumps(rows, indent=2))
    artifacts.publish(shots_json)
    for warning in report.shot_list.warnings:
        context.log.warning(warning)
    for line in missing:
        context.log.warning(f"missing media: {line}")
    for reason in resolver.refused_roots:
        context.log.warning(f"media root not searched: {reason}")
    return dg.MaterializeResult(
        metadata={
            "shot_count": len(rows),
            "missing_media_count": len(missing),
            "generator_count": generators,
            "rate": str(report.shot_list.rate),
            "duration_frames": report.shot_list.duration,
            "missing_media": dg.MetadataValue.md("\n".join(f"- {line}" for line in missing) or "none"),
            "shots": shots_table(rows),
            "shots_json": dg.MetadataValue.path(str(shots_json)),
        }
    )


def shot_row(shot: Shot, cut: CutVersion) -> dict[str, Any]:
    return {
        "id": shot.id,
        "index": shot.index,
        "name": shot.name,
        "record_start": shot.record_start,
        "record_duration": shot.record_duration,
        "record_in": record_timecode(shot, cut),
        "record_out": record_timecode(shot, cut, shot.record_duration),
        "source_start": shot.source_start,
        "source_duration": shot.source_duration,
        "source_rate": shot.source_rate,
        "source_in": source_timecode(shot, cut),
        "source_out": source_timecode(shot, cut, shot.source_duration),
        "media_status": shot.media_status,
        "media_path": shot.media_path,
        "media_frame": shot.media_frame,
        "notes": shot.notes,
    }


SHOT_TABLE_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("index", "int", description="Position in the cut, from 0"),
        dg.TableColumn("shot", "string"),
        dg.TableColumn("record_in", "string", description="Record timecode (from the timeline's start)"),
        dg.TableColumn("record_out", "string", description="Record timecode one past the last frame"),
        dg.TableColumn("source_in", "string", description="Source timecode of the first frame"),
        dg.TableColumn("source_out", "string", description="Source timecode one past the last frame"),
        dg.TableColumn("frames", "int"),
        dg.TableColumn("media_frame", "int", description="The first frame's index inside the media file"),
        dg.TableColumn("media", "string", description="linked, missing or generator"),
    ]
)


def shots_table(rows: list[dict[str, Any]], limit: int = 200) -> dg.MetadataValue:
    """The shots as a table (timecodes beside frame numbers); the rest are in shots.json."""
    records = [
        dg.TableRecord(
            {
                "index": row["index"],
                "shot": row["name"],
                "record_in": row["record_in"],
                "record_out": row["record_out"],
                "source_in": row["source_in"],
                "source_out": row["source_out"],
                "frames": row["source_duration"],
                "media_frame": row["media_frame"] if row["media_frame"] is not None else -1,
                "media": row["media_status"],
            }
        )
        for row in rows[:limit]
    ]
    return dg.MetadataValue.table(records, schema=SHOT_TABLE_SCHEMA)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def thumbnail_path(cut_dir: Path, plan: ThumbnailPlan, cache_key: str) -> Path:
    # The cache key in the name keeps every distinct render a distinct file, so an earlier
    # render that a later version reuses is never overwritten under it.
    name = _UNSAFE_NAME.sub("_", plan.name).strip("_")[:60] or "shot"
    return cut_dir / "thumbnails" / f"{plan.index:04d}_{name}_{cache_key[:10]}.jpg"


def link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def ffmpeg_render(*, kind: str, description: str) -> Any:
    """The decorator of an asset ffmpeg renders from a cut version's shots: partitioned like the
    cut, after `cut_shots`, holding a slot of the `ffmpeg` pool (and, with Celery, on its queue)."""
    return dg.asset(
        partitions_def=cut_versions,
        group_name=GROUP,
        deps=[cut_shots],
        pool="ffmpeg",
        op_tags=FFMPEG_STEP_TAGS,
        kinds={"ffmpeg", kind},
        description=description,
    )


@ffmpeg_render(
    kind="jpeg",
    description="A still of each shot (by default its middle frame), exactly the frame named, for review and "
    "shot lists. Re-render with another frame or width from the Launchpad; unchanged shots reuse earlier stills.",
)
def shot_thumbnails(
    context: dg.AssetExecutionContext,
    config: ThumbnailConfig,
    database: DatabaseResource,
    artifacts: ArtifactStore,
    ffmpeg: FFmpegResource,
) -> dg.MaterializeResult:
    key = context.partition_key
    cut_dir = artifacts.cut_dir(key)
    # A bad option fails this run only: the cut's status is its ingest's, and a re-render (from
    # the launchpad, say) says nothing about whether the cut was ingested.
    config.check()
    choice = parse_frame_choice(config.frame)
    run_id = context.run.run_id
    todo: list[tuple[ThumbnailPlan, str, Path]] = []
    reused: list[ThumbnailPlan] = []
    results: list[dict[str, Any]] = []
    with database.session() as session:
        cut = load_cut(session, key)
        cut_id = cut.id
        shots = select_shots(session, cut, config)
        names = {str(shot.id): shot.name for shot in shots}
        for shot in shots:
            try:
                plan = plan_thumbnail(shot, choice, config.width)
            except FrameChoiceError as exc:
                plan = plan_thumbnail(shot, "first", config.width)
                plan.slate = ["FRAME OUTSIDE SHOT", shot.name, str(exc)]
            cache_key = plan.cache_key()
            output = thumbnail_path(cut_dir, plan, cache_key)
            earlier = None if config.force else reusable_render(session, artifacts, "thumbnail", cache_key)
            if earlier is not None:
                link_or_copy(artifacts.localize(earlier.output_path or ""), output)
                artifacts.publish(output)
                session.add(render_row(cut.id, plan, cache_key, artifacts.relative(output), run_id, earlier.id))
                reused.append(plan)
                results.append({**plan.metadata(), "reused": True, "path": artifacts.relative(output)})
            else:
                todo.append((plan, cache_key, output))

    with ProgressReporter.for_context(context, unit="shots") as progress:
        progress.plan(total=len(shots), items=names)
        for plan in reused:
            progress.item_done(str(plan.shot_id), reused=True)
        progress.log("info", f"{len(shots)} shot(s): {len(reused)} reused, {len(todo)} to render")
        recorder = RenderRecorder(database, progress)

        # Frames found past the media's real end: slates, and the shot says why.
        past_the_end: list[tuple[int, str]] = []

        def render(item: tuple[ThumbnailPlan, str, Path]) -> str | None:
            progress.item_started(str(item[0].shot_id))
            note = render_thumbnail(item[0], item[2])
            artifacts.publish(item[2])
            return note

        def finished(item: tuple[ThumbnailPlan, str, Path], outcome: object) -> None:
            plan, cache_key, output = item
            if isinstance(outcome, str):
                past_the_end.append((plan.shot_id, f"thumbnail: {outcome}"))
            row = render_row(cut_id, plan, cache_key, artifacts.relative(output), run_id, None)
            recorder.record(row, str(plan.shot_id), plan.name, outcome)
            results.append({**plan.metadata(), "reused": False, "path": artifacts.relative(output)})

        ffmpeg.map_parallel(render, todo, finished)
        add_shot_notes(database, past_the_end)
        recorder.finish("thumbnail")
    results.sort(key=lambda row: row["index"])
    metadata: dict[str, Any] = {}
    if results:  # the pictures first, as the UI lists metadata in order
        metadata["preview"] = first_thumbnails_markdown([artifacts.path(row["path"]) for row in results[:6]])
    metadata |= {
        "shots": len(results),
        "rendered": len(todo),
        "reused": len(reused),
        "slates": sum(1 for row in results if row["slate"]),
        "frame": config.frame,
        "width": config.width,
        "folder": dg.MetadataValue.path(str(cut_dir / "thumbnails")),
        "frames": dg.MetadataValue.md(frames_table(results)),
    }
    return dg.MaterializeResult(metadata=metadata)


class RenderRecorder:
    """Render rows of one step, written in batches as the parallel renders finish.

    Committing a row per shot would cost more than some renders; rows are at most a second
    stale. Each finished render is reported to the step's ProgressReporter as it lands.
    """

    def __init__(self, database: DatabaseResource, progress: ProgressReporter):
        self.database, self.progress = database, progress
        self.pending: list[Render] = []
        self.failures: list[str] = []
        self.last_flush = time.monotonic()

    def record(self, row: Render, item: str, name: str, outcome: object) -> None:
        if isinstance(outcome, BaseException):
            row.status, row.error, row.output_path = RenderStatus.FAILED, str(outcome), None
            self.failures.append(f"{name}: {outcome}")
            self.progress.item_failed(item, str(outcome))
        else:
            self.progress.item_done(item)
        self.pending.append(row)
        if time.monotonic() - self.last_flush >= 1.0:
            self.flush()

    def flush(self) -> None:
        with self.database.session() as session:
            session.add_all(self.pending)
        self.pending.clear()
        self.last_flush = time.monotonic()

    def finish(self, kind: str) -> None:
        """Write what is left; fail the step if any render failed (the others stay reusable)."""
        self.flush()
        if self.failures:
            raise dg.Failure(
                description=f"{len(self.failures)} {kind} render(s) failed; the others are saved and will be "
                "reused on re-run",
                metadata={"failures": dg.MetadataValue.md("\n".join(f"- {line}" for line in self.failures))},
            )


def select_shots(session: Session, cut: CutVersion, config: ShotSelection) -> list[Shot]:
    query = sa.select(Shot).where(Shot.cut_version_id == cut.id).order_by(Shot.index)
    if config.shot_ids:
        query = query.where(Shot.id.in_(config.shot_ids))
    if config.shot_names:
        query = query.where(Shot.name.in_(config.shot_names))
    shots = list(session.scalars(query))
    if (config.shot_ids or config.shot_names) and not shots:
        raise dg.Failure(description=f"no shot of {cut.partition_key} matches {config.shot_ids or config.shot_names}")
    return shots


def reusable_render(session: Session, artifacts: ArtifactStore, kind: str, cache_key: str) -> Render | None:
    candidates = session.scalars(
        sa.select(Render)
        .where(Render.kind == kind, Render.cache_key == cache_key, Render.status == RenderStatus.SUCCEEDED)
        .order_by(Render.id.desc())
        .limit(5)
    )
    for render in candidates:
        if render.output_path and artifacts.exists(render.output_path):
            return render
    return None


def render_row(
    cut_version_id: int, plan: ThumbnailPlan, cache_key: str, output: str, run_id: str, reused_from: int | None
) -> Render:
    return succeeded_render(
        cut_version_id,
        plan.shot_id,
        "thumbnail",
        {"width": plan.width},
        cache_key,
        output,
        run_id,
        reused_from,
        plan.metadata(),
    )


def succeeded_render(
    cut_version_id: int,
    shot_id: int | None,
    kind: str,
    options: dict[str, Any],
    cache_key: str,
    output: str,
    run_id: str,
    reused_from: int | None,
    details: dict[str, Any],
) -> Render:
    return Render(
        shot_id=shot_id,
        cut_version_id=cut_version_id,
        kind=kind,
        options=options,
        cache_key=cache_key,
        output_path=output,
        status=RenderStatus.SUCCEEDED,
        reused_from=reused_from,
        run_id=run_id,
        details=details,
    )


def frames_table(rows: list[dict[str, Any]], limit: int = 100) -> str:
    lines = ["| # | shot | source frame | media frame | |", "|---|---|---|---|---|"]
    for row in rows[:limit]:
        state = "slate" if row["slate"] else ("reused" if row["reused"] else "rendered")
        lines.append(
            f"| {row['index']} | {_md(row['name'])} | {row['source_frame']} | {row['media_frame']} | {state} |"
        )
    return "\n".join(lines)


@dg.asset(
    partitions_def=cut_versions,
    group_name=GROUP,
    deps=[shot_thumbnails],
    kinds={"jpeg"},
    description="One sheet with every shot's still, name and source timecode in edit order: the cut at a glance, "
    "to print or send.",
)
def contact_sheet(
    context: dg.AssetExecutionContext, database: DatabaseResource, artifacts: ArtifactStore
) -> dg.MaterializeResult:
    key = context.partition_key
    with database.session() as session:
        cut = load_cut(session, key)
        latest = latest_thumbnails(session, cut.id)
        shots = list(session.scalars(sa.select(Shot).where(Shot.cut_version_id == cut.id).order_by(Shot.index)))
        cells = [
            SheetCell(
                image=artifacts.localize(latest[shot.id].output_path or ""),
                caption=f"{shot.index + 1:03d}  {shot.name}",
                detail=f"{source_timecode(shot, cut)}  {shot.source_duration}f @ "
                f"{rate_label(Fraction(shot.source_rate))}",
            )
            for shot in shots
            if shot.id in latest
        ]
        title = f"{cut.project.name} / {cut.name} v{cut.version:03d}"
        cut_id = cut.id
    if not cells:
        raise dg.Failure(description=f"{key} has no thumbnails yet; materialize shot_thumbnails first")
    output = artifacts.cut_dir(key) / "contact_sheet.jpg"
    pages = render_contact_sheets(cells, output, title)
    artifacts.publish(*(path for path, _ in pages))
    # A cut that had more shots before leaves no stale pages behind.
    page_number = len(pages) + 1
    while (stale := sheet_page_path(output, page_number)).exists() or artifacts.exists(artifacts.relative(stale)):
        artifacts.delete(artifacts.relative(stale))
        page_number += 1
    size = pages[0][1]
    with database.session() as session:
        session.add(
            Render(
                cut_version_id=cut_id,
                kind="contact_sheet",
                cache_key=f"contact_sheet:{key}",
                output_path=artifacts.relative(output),
                status=RenderStatus.SUCCEEDED,
                run_id=context.run.run_id,
                details={"shots": len(cells), "pages": [artifacts.relative(path) for path, _ in pages]},
            )
        )
    return dg.MaterializeResult(
        # The picture first: the UI lists metadata in order, and shows the first entries unfolded.
        metadata={
            "preview": preview_markdown(output),
            "path": dg.MetadataValue.path(str(output)),
            "shots": len(cells),
            "size": f"{size[0]}x{size[1]}",
            "pages": len(pages),
        }
    )


def latest_renders(session: Session, cut_version_id: int, kind: str) -> dict[int, Render]:
    """Each shot's latest successful render of `kind` (`thumbnail`, `proxy`) in the cut."""
    renders = session.scalars(
        sa.select(Render)
        .where(
            Render.cut_version_id == cut_version_id,
            Render.kind == kind,
            Render.status == RenderStatus.SUCCEEDED,
        )
        .order_by(Render.id)
    )
    return {render.shot_id: render for render in renders if render.shot_id is not None}


def latest_thumbnails(session: Session, cut_version_id: int) -> dict[int, Render]:
    return latest_renders(session, cut_version_id, "thumbnail")


editorial_assets = [cut_timeline, cut_shots, shot_thumbnails, contact_sheet]
