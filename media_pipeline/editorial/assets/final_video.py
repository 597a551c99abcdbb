"""The cut conformed into one playable H.264 file, re-encoding only segments that changed."""

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import dagster as dg
import opentimelineio as otio
import sqlalchemy as sa

from media_pipeline.core.ffmpeg import probe, rate_arg
from media_pipeline.core.timecode import to_timecode
from media_pipeline.db.models import Shot
from media_pipeline.editorial.assets.cuts import (
    GROUP,
    add_shot_notes,
    load_cut,
    preview_markdown,
    succeeded_render,
)
from media_pipeline.editorial.conform import (
    EncodeOptions,
    Segment,
    Shortfall,
    assemble,
    encode_checked,
    plan_conform,
    render_audio,
    timeline_audio,
)
from media_pipeline.editorial.media import MediaResolver
from media_pipeline.editorial.partitions import cut_versions
from media_pipeline.editorial.requests import FinalVideoConfig
from media_pipeline.editorial.thumbnails import grab_frame
from media_pipeline.editorial.timecodes import cut_drop_frame, cut_rate, record_origin
from media_pipeline.platform.executors import FFMPEG_STEP_TAGS
from media_pipeline.platform.progress import ProgressReporter
from media_pipeline.resources import ArtifactStore, DatabaseResource, FFmpegResource, MediaSearchResource
from media_pipeline.settings import Settings, load_settings

# Progress of the whole conform is reported under the asset's name, whichever step sends it.
PROGRESS_STEP = "final_video"
# Segments per chunk step when the executor spreads steps (MEDIA_PIPELINE_CHUNK_SEGMENTS unset).
# Each chunk ends on its slowest segment with a core idle, and the next one starts its ffmpegs
# together: on bench/scale, chunks of 4 cost 1.30x the in-process render with one Celery worker,
# chunks of 8 1.13x, while a 50-shot cut still makes 7 chunks to spread.
CHUNK_SEGMENTS = 8


def segment_path(artifacts: ArtifactStore, key: str) -> Path:
    # Content-addressed and shared by every cut version: a shot unchanged between versions is
    # the same file, found and not encoded again.
    return artifacts.path(f"segments/{key[:2]}/{key}.mp4")


@dataclass
class Conform:
    """What the planning step hands its chunks and the join (pickled by the IO manager)."""

    key: str
    options: EncodeOptions
    segments: list[Segment]  # every segment of the cut, in record order
    files: list[str]  # their cached files, same order, relative to the artifact root
    ids: list[str]  # their item ids (positions), same order
    total_frames: int
    timecode: str
    cut_id: int
    roots: list[str]
    origin: str | None
    not_rendered: list[str]
    encoded: int
    config: dict[str, Any]


@dataclass
class Chunk:
    """Segments one step encodes: (item id, segment, file relative to the artifact root)."""

    number: int
    segments: list[tuple[str, Segment, str]] = field(default_factory=list)


def scratch_dir(artifacts: ArtifactStore, key: str) -> Path:
    return artifacts.cut_dir(key) / "final_video_parts"


def chunks_of(todo: list[tuple[str, Segment, str]], size: int | None) -> list[Chunk]:
    """`todo` in consecutive chunks of at most `size` segments (None: one chunk), at least one."""
    if not todo or size is None:
        return [Chunk(0, todo)]
    return [Chunk(n, todo[start : start + size]) for n, start in enumerate(range(0, len(todo), size))]


def chunk_size(settings: Settings) -> int | None:
    """Segments per chunk step: MEDIA_PIPELINE_CHUNK_SEGMENTS, or by default all in one step with
    the in-process executor (chunk steps would run one after another there, each leaving the
    ffmpeg threads of its tail idle) and CHUNK_SEGMENTS otherwise."""
    if settings.chunk_segments:
        return settings.chunk_segments
    return None if settings.executor == "in_process" else CHUNK_SEGMENTS


@dg.op(
    ins={"cut_shots": dg.In(dg.Nothing)},
    out={"conform": dg.Out(), "chunks": dg.DynamicOut()},
    description="Plans the conform: its segments, which are cached, and the chunks that encode the rest.",
)
def final_video_plan(
    context: dg.OpExecutionContext, config: FinalVideoConfig, database: DatabaseResource, artifacts: ArtifactStore
) -> Iterator[dg.Output[Any] | dg.DynamicOutput[Chunk]]:
    key = context.partition_key
    with database.session() as session:
        cut = load_cut(session, key)
        shots = list(session.scalars(sa.select(Shot).where(Shot.cut_version_id == cut.id).order_by(Shot.index)))
        total = int(cut.options.get("duration") or 0)
        options = config.options(Fraction(cut.rate or "24"))
        # The timeline's start, at the output rate (the same instant when fps differs).
        rate = cut_rate(cut)
        start_frame = round(Fraction(record_origin(cut)) / rate * options.fps)
        drop_frame = cut_drop_frame(cut) and options.fps == rate
        cut_id, roots, origin = cut.id, cut.options.get("media_roots", []), cut.options.get("origin_dir")
    if not shots:
        raise dg.Failure(description=f"{key} has no shots; materialize cut_shots first")
    plan = plan_conform(shots, total)
    for item in plan.not_rendered:
        context.log.warning(f"not rendered: {item}")
    # Segments that come out short are joined from here (their frames, then a slate), never cached.
    shutil.rmtree(scratch_dir(artifacts, key), ignore_errors=True)

    # Items are the segments, by position in the cut; progress counts the frames to encode.
    ids = [f"{number:04d}" for number in range(len(plan.segments))]
    todo: list[tuple[str, Segment, str]] = []
    files: list[str] = []
    for item_id, segment in zip(ids, plan.segments, strict=True):
        path = artifacts.relative(segment_path(artifacts, segment.cache_key(options)))
        files.append(path)
        # Encoded before on this machine, or by any machine into the store (S3).
        cached = artifacts.path(path).exists() or artifacts.exists(path)
        if not cached and all(path != other for _, _, other in todo):
            todo.append((item_id, segment, path))
    encoding = {item_id for item_id, _, _ in todo}
    with ProgressReporter.for_context(context, unit="frames", step=PROGRESS_STEP) as progress:
        progress.plan(
            total=sum(segment.frames for _, segment, _ in todo),
            items={item_id: segment.label for item_id, segment in zip(ids, plan.segments, strict=True)},
        )
        for item_id in ids:
            if item_id not in encoding:
                progress.item_done(item_id, reused=True, advance=0)
        chunks = chunks_of(todo, chunk_size(load_settings()))
        progress.log(
            "info",
            f"{len(plan.segments)} segment(s): {len(plan.segments) - len(todo)} reused, {len(todo)} to encode "
            f"in {len(chunks)} chunk(s)",
        )
    yield dg.Output(
        Conform(
            key=key,
            options=options,
            segments=plan.segments,
            files=files,
            ids=ids,
            total_frames=plan.total_frames,
            timecode=to_timecode(start_frame, options.fps, drop_frame),
            cut_id=cut_id,
            roots=roots,
            origin=origin,
            not_rendered=plan.not_rendered,
            encoded=len(todo),
            config=config.model_dump(),
        ),
        "conform",
    )
    for chunk in chunks:
        yield dg.DynamicOutput(chunk, mapping_key=str(chunk.number), output_name="chunks")


@dg.op(
    pool="ffmpeg",
    tags=FFMPEG_STEP_TAGS,
    description="Encodes one chunk of the conform's segments (each a cached file), on any worker.",
)
def final_video_chunk(
    context: dg.OpExecutionContext, conform: Conform, chunk: Chunk, artifacts: ArtifactStore, ffmpeg: FFmpegResource
) -> dict[str, Shortfall]:
    """The chunk's segments that came out short (by cached file), each with what to join instead."""
    options = conform.options
    scratch = scratch_dir(artifacts, conform.key)
    encoded: dict[str, int] = {}
    lock = threading.Lock()
    host = f"{load_settings().host_id} (pid {os.getpid()})"
    # Each chunk counts its own frames; the job adds the chunks' counts up (RunProgress.done_of).
    step = f"{PROGRESS_STEP}[{chunk.number}]"
    with ProgressReporter.for_context(context, unit="frames", step=step) as progress:
        if chunk.segments:
            progress.log("info", f"chunk {chunk.number}: {len(chunk.segments)} segment(s) on {host}")

        def frames_done(item_id: str, segment: Segment, frames: int) -> int:
            # How many more frames of `segment` are encoded than were counted already.
            with lock:
                before = encoded.get(item_id, 0)
                encoded[item_id] = max(before, min(frames, segment.frames))
                return encoded[item_id] - before

        def encode(item: tuple[str, Segment, str]) -> Shortfall | None:
            item_id, segment, path = item
            progress.item_started(item_id)

            def on_frames(frames: int) -> None:
                new = frames_done(item_id, segment, frames)
                if new:
                    progress.advance(new)
                progress.item(item_id, "running", progress=encoded[item_id] / max(1, segment.frames))

            return encode_checked(segment, options, artifacts.path(path), scratch, on_frames)

        failures: list[str] = []
        short: dict[str, Shortfall] = {}

        def finished(item: tuple[str, Segment, str], outcome: Shortfall | BaseException | None) -> None:
            item_id, segment, path = item
            if isinstance(outcome, BaseException):
                failures.append(f"{segment.label}: {outcome}")
                progress.item_failed(item_id, str(outcome), advance=0)
                return
            if outcome is not None:
                short[path] = outcome
            progress.item_done(item_id, advance=frames_done(item_id, segment, segment.frames))

        ffmpeg.map_parallel(encode, chunk.segments, finished)
    if failures:
        raise dg.Failure(
            description=f"{len(failures)} segment(s) failed to encode; the others are kept and reused on re-run",
            metadata={"failures": dg.MetadataValue.md("\n".join(f"- {line}" for line in failures))},
            allow_retries=False,
        )
    # The join may run on another machine: with S3 storage it fetches what this chunk made from
    # the bucket (local storage: a no-op, the artifact root is shared or the same machine).
    made = [artifacts.path(path) for _, _, path in chunk.segments if path not in short]
    artifacts.publish(*made, *(part for shortfall in short.values() for part in shortfall.parts))
    context.add_output_metadata({"segments": len(chunk.segments), "short": len(short), "host": host})
    return short


@dg.op(
    out=dg.Out(dg.Nothing),
    pool="ffmpeg",
    tags=FFMPEG_STEP_TAGS,
    description="Joins the segments by stream copy with the conformed audio, and records the render.",
)
def final_video_join(
    context: dg.OpExecutionContext,
    conform: Conform,
    chunks: list[dict[str, Shortfall]],
    database: DatabaseResource,
    artifacts: ArtifactStore,
    media_search: MediaSearchResource,
) -> None:
    options = conform.options
    cut_dir = artifacts.cut_dir(conform.key)
    short = {path: shortfall for chunk in chunks for path, shortfall in chunk.items()}
    # Every place of a short segment in the cut (a repeated one too) says so, on its item.
    places = zip(conform.ids, conform.segments, conform.files, strict=True)
    shortfalls = [
        (item_id, segment, short[path].note(segment.label)) for item_id, segment, path in places if path in short
    ]
    if shortfalls:
        with ProgressReporter.for_context(context, unit="frames", step=PROGRESS_STEP) as progress:
            for item_id, _, note in shortfalls:
                progress.log("warning", note, item=item_id)
    add_shot_notes(database, [(shot_id, note) for _, segment, note in shortfalls for shot_id in segment.shot_ids])
    padded = [note for _, _, note in shortfalls]
    audio_notes: list[str] = []
    output = cut_dir / "final_video.mp4"
    seconds = Fraction(conform.total_frames) / options.fps
    with tempfile.TemporaryDirectory(prefix="conform-") as tmp:
        audio_path = None
        if options.audio:
            timeline_path = artifacts.localize(cut_dir / "timeline.otio")
            timeline = otio.adapters.read_from_file(str(timeline_path), adapter_name="otio_json")
            origin = conform.origin
            resolver = MediaResolver(media_search.allowed_roots(), conform.roots, Path(origin) if origin else None)
            clips, audio_notes = timeline_audio(timeline, resolver)
            audio_path = Path(tmp) / "audio.wav"
            render_audio(clips, seconds, audio_path)
        # A short segment's place in the join: the frames it had, then its slate.
        # Each fetched from the store when a chunk on another machine made it (S3).
        files = [
            artifacts.localize(part)
            for file in conform.files
            for part in (short[file].parts if file in short else [artifacts.path(file)])
        ]
        assemble(files, audio_path, output, options, conform.total_frames, conform.timecode)
    for note in audio_notes:
        context.log.warning(f"audio: {note}")
    info = probe(output)
    preview = cut_dir / "final_video_preview.jpg"
    grab_frame(output, info.rate, conform.total_frames // 2, preview, 480)
    # The video and its still are published (the segments were, by the chunks that made them).
    artifacts.publish(output, preview)
    reused = len(conform.files) - conform.encoded
    with database.session() as session:
        details = {"frames": conform.total_frames, "segments": len(conform.files), "reused": reused, "padded": padded}
        row = succeeded_render(conform.cut_id, None, "final_video", conform.config, f"final_video:{conform.key}",
                               artifacts.relative(output), context.run.run_id, None, details)  # fmt: skip
        session.add(row)
    not_rendered = conform.not_rendered + padded + audio_notes
    context.add_output_metadata(
        {
            "path": dg.MetadataValue.path(str(output)),
            "frames": conform.total_frames,
            "duration_seconds": float(seconds),
            "start_timecode": conform.timecode,
            "fps": rate_arg(options.fps),
            "resolution": f"{options.width}x{options.height}",
            "segments": len(conform.files),
            "segments_encoded": conform.encoded,
            "segments_reused": reused,
            "segments_padded": len(padded),
            "chunks": len(chunks),
            "not_rendered": dg.MetadataValue.md("\n".join(f"- {n}" for n in not_rendered) or "none"),
            "preview": preview_markdown(preview),
        }
    )


def _plan_config(config: dict[str, Any]) -> dict[str, Any]:
    return {"final_video_plan": {"config": config}}


@dg.graph_asset(
    partitions_def=cut_versions,
    group_name=GROUP,
    ins={"cut_shots": dg.AssetIn(dagster_type=dg.Nothing)},
    kinds={"ffmpeg", "mp4"},
    # Run config stays `ops: final_video: config: {...}` (the job API and the launchpad write
    # that): the graph hands it to its planning step.
    config=dg.ConfigMapping(config_fn=_plan_config, config_schema=FinalVideoConfig.to_config_schema()),
    description="The cut conformed from its source media: exact frames, black gaps, slates for missing media, "
    "dissolves, conformed audio; only changed segments are re-encoded, in chunk steps any worker can take.",
)
def final_video(cut_shots: None) -> None:
    conform, chunks = final_video_plan(cut_shots)
    encoded = chunks.map(lambda chunk: final_video_chunk(conform, chunk)).collect()
    return final_video_join(conform, encoded)
