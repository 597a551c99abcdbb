"""The cut conformed into one playable H.264 file, re-encoding only segments that changed."""

import shutil
import tempfile
import threading
from fractions import Fraction
from pathlib import Path

import dagster as dg
import opentimelineio as otio
import sqlalchemy as sa
from pydantic import Field

from media_pipeline.core.ffmpeg import exact_rate, probe, rate_arg
from media_pipeline.core.timecode import to_timecode
from media_pipeline.db.models import Shot
from media_pipeline.editorial.assets.cuts import (
    add_shot_notes,
    ffmpeg_render,
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
from media_pipeline.editorial.thumbnails import grab_frame
from media_pipeline.editorial.timecodes import cut_drop_frame, cut_rate, record_origin
from media_pipeline.platform.progress import ProgressReporter
from media_pipeline.resources import ArtifactStore, DatabaseResource, FFmpegResource, MediaSearchResource

PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


class FinalVideoConfig(dg.Config):
    width: int = Field(default=1920, description="Output width; media is scaled to fit and letterboxed")
    height: int = Field(default=1080, description="Output height")
    fps: str = Field(default="", description="Output frame rate, e.g. '24000/1001'; empty: the timeline's")
    crf: int = Field(default=18, description="H.264 constant rate factor, 0-51 (lower is better)")
    preset: str = Field(default="medium", description="x264 preset, ultrafast ... veryslow")
    audio: bool = Field(default=True, description="Conform the timeline's audio tracks (else no audio stream)")

    def options(self, timeline_rate: Fraction) -> EncodeOptions:
        problems = []
        if not (16 <= self.width <= 7680 and 16 <= self.height <= 4320) or self.width % 2 or self.height % 2:
            problems.append(f"resolution must be even and between 16x16 and 7680x4320, not {self.width}x{self.height}")
        if not 0 <= self.crf <= 51:
            problems.append(f"crf must be between 0 and 51, not {self.crf}")
        if self.preset not in PRESETS:
            problems.append(f"preset must be one of {', '.join(PRESETS)}, not {self.preset!r}")
        try:
            fps = exact_rate(self.fps) if self.fps else timeline_rate
        except (ValueError, ZeroDivisionError):
            problems.append(f"fps must be a number or a ratio like 24000/1001, not {self.fps!r}")
            fps = timeline_rate
        if problems:
            raise dg.Failure(description="; ".join(problems), allow_retries=False)
        return EncodeOptions(self.width, self.height, fps, self.crf, self.preset, self.audio)


def segment_path(artifacts: ArtifactStore, key: str) -> Path:
    # Content-addressed and shared by every cut version: a shot unchanged between versions is
    # the same file, found and not encoded again.
    return artifacts.path(f"segments/{key[:2]}/{key}.mp4")


@ffmpeg_render(
    kind="mp4",
    description="The cut conformed from its source media: exact frames, black gaps, slates for missing media, "
    "dissolves, conformed audio; only changed segments are re-encoded.",
)
def final_video(
    context: dg.AssetExecutionContext,
    config: FinalVideoConfig,
    database: DatabaseResource,
    artifacts: ArtifactStore,
    ffmpeg: FFmpegResource,
    media_search: MediaSearchResource,
) -> dg.MaterializeResult:
    key = context.partition_key
    cut_dir = artifacts.cut_dir(key)
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

    # Segments that came out short are joined from here (their frames, then a slate), never cached.
    scratch = cut_dir / "final_video_parts"
    shutil.rmtree(scratch, ignore_errors=True)
    todo: list[tuple[Segment, Path]] = []
    files: list[Path] = []
    for segment in plan.segments:
        path = segment_path(artifacts, segment.cache_key(options))
        files.append(path)
        if not path.exists() and all(path != other for _, other in todo):
            todo.append((segment, path))
    reused = len(plan.segments) - len(todo)

    # Items are the segments, by position in the cut; progress counts the frames to encode.
    ids = {id(segment): f"{number:04d}" for number, segment in enumerate(plan.segments)}
    encoding = {id(segment) for segment, _ in todo}
    encoded: dict[int, int] = {}
    lock = threading.Lock()
    with ProgressReporter.for_context(context, unit="frames") as progress:
        progress.plan(
            total=sum(segment.frames for segment, _ in todo),
            items={ids[id(segment)]: segment.label for segment in plan.segments},
        )
        for segment in plan.segments:
            if id(segment) not in encoding:
                progress.item_done(ids[id(segment)], reused=True, advance=0)
        progress.log("info", f"{len(plan.segments)} segment(s): {reused} reused, {len(todo)} to encode")

        def frames_done(segment: Segment, frames: int) -> int:
            # How many more frames of `segment` are encoded than were counted already.
            with lock:
                before = encoded.get(id(segment), 0)
                encoded[id(segment)] = max(before, min(frames, segment.frames))
                return encoded[id(segment)] - before

        def encode(item: tuple[Segment, Path]) -> Shortfall | None:
            segment, path = item
            progress.item_started(ids[id(segment)])

            def on_frames(frames: int) -> None:
                new = frames_done(segment, frames)
                if new:
                    progress.advance(new)
                progress.item(ids[id(segment)], "running", progress=encoded[id(segment)] / max(1, segment.frames))

            return encode_checked(segment, options, path, scratch, on_frames)

        failures: list[str] = []
        short: dict[Path, Shortfall] = {}

        def finished(item: tuple[Segment, Path], outcome: Shortfall | BaseException | None) -> None:
            segment, path = item
            if isinstance(outcome, BaseException):
                failures.append(f"{segment.label}: {outcome}")
                progress.item_failed(ids[id(segment)], str(outcome), advance=0)
                return
            if outcome is not None:
                short[path] = outcome
            progress.item_done(ids[id(segment)], advance=frames_done(segment, segment.frames))

        ffmpeg.map_parallel(encode, todo, finished)
        # Every place of a short segment in the cut (a repeated one too) says so, on its item.
        shortfalls = [
            (segment, short[path].note(segment.label))
            for segment, path in zip(plan.segments, files, strict=True)
            if path in short
        ]
        for segment, note in shortfalls:
            progress.log("warning", note, item=ids[id(segment)])
    if failures:
        raise dg.Failure(
            description=f"{len(failures)} segment(s) failed to encode; the others are kept and reused on re-run",
            metadata={"failures": dg.MetadataValue.md("\n".join(f"- {line}" for line in failures))},
        )

    add_shot_notes(database, [(shot_id, note) for segment, note in shortfalls for shot_id in segment.shot_ids])
    padded = [note for _, note in shortfalls]
    # A short segment's place in the join: the frames it had, then its slate.
    files = [part for path in files for part in (short[path].parts if path in short else [path])]

    audio_notes: list[str] = []
    output = cut_dir / "final_video.mp4"
    seconds = Fraction(plan.total_frames) / options.fps
    timecode = to_timecode(start_frame, options.fps, drop_frame)
    with tempfile.TemporaryDirectory(prefix="conform-") as tmp:
        audio_path = None
        if options.audio:
            timeline_path = artifacts.localize(cut_dir / "timeline.otio")
            timeline = otio.adapters.read_from_file(str(timeline_path), adapter_name="otio_json")
            resolver = MediaResolver(media_search.allowed_roots(), roots, Path(origin) if origin else None)
            clips, audio_notes = timeline_audio(timeline, resolver)
            audio_path = Path(tmp) / "audio.wav"
            render_audio(clips, seconds, audio_path)
        assemble(files, audio_path, output, options, plan.total_frames, timecode)
    for note in audio_notes:
        context.log.warning(f"audio: {note}")
    info = probe(output)
    preview = cut_dir / "final_video_preview.jpg"
    grab_frame(output, info.rate, plan.total_frames // 2, preview, 480)
    # Segments stay in this machine's working copy (a cache); the video and its still are published.
    artifacts.publish(output, preview)
    with database.session() as session:
        details = {"frames": plan.total_frames, "segments": len(plan.segments), "reused": reused, "padded": padded}
        row = succeeded_render(cut_id, None, "final_video", config.model_dump(), f"final_video:{key}",
                               artifacts.relative(output), context.run.run_id, None, details)  # fmt: skip
        session.add(row)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(output)),
            "frames": plan.total_frames,
            "duration_seconds": float(seconds),
            "start_timecode": timecode,
            "fps": rate_arg(options.fps),
            "resolution": f"{options.width}x{options.height}",
            "segments": len(plan.segments),
            "segments_encoded": len(todo),
            "segments_reused": reused,
            "segments_padded": len(padded),
            "not_rendered": dg.MetadataValue.md(
                "\n".join(f"- {n}" for n in plan.not_rendered + padded + audio_notes) or "none"
            ),
            "preview": preview_markdown(preview),
        }
    )
