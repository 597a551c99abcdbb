"""One render of a composition: plan, generate what is missing, conform, join.

    compositions/cache/                      the generation cache (cache.py), shared
    compositions/<id>/renders/<render>/      plan.json, result.json, the join list
    compositions/<id>/output/<render>.mp4    the video; latest.json names the newest

PLAN (VALIDATE included: every problem a client can fix, as sentences, before any work): each
segment's inputs (media library items, looked up by the caller) checked for its generator, its
cache key, and whether it is cached, to generate (missing or forced) or, against the
previous render, removed. GENERATE: the missing clips, concurrently, one step per provider pool.
COMPOSE: every clip conformed to the composition's rate, size, pixel format and exact frame count
(fps, scale and crop to cover, padded with its last frame when the clip is short, trimmed when
long); the video is the segments' bodies and the crossfades between them, each a piece encoded
alike and cached, joined by stream copy. A crossfade of n frames overlaps the two segments, so
the video has `sum(frames) - sum(crossfade frames)` frames. Nothing reaches `output/` unless
its frame count is the planned one. A soundtrack (a library video's audio) is decoded to 48 kHz
PCM, padded with silence or trimmed to exactly the video's length in samples
(`floor(frames * 48000 / rate + 1/2)`), and muxed as AAC when the pieces are joined.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, Protocol

from media_pipeline.compositions import inputs as segment_inputs
from media_pipeline.compositions.cache import GenerationCache, key_of
from media_pipeline.compositions.generators.base import (
    FINISHED,
    GenerationRequest,
    Generator,
    GeneratorError,
    InputMedia,
    TaskState,
)
from media_pipeline.core import ffmpeg
from media_pipeline.core.audio import frame_to_sample, to_wav, wav_samples
from media_pipeline.core.files import atomic_path
from media_pipeline.core.probe import probe
from media_pipeline.core.segments import Look, count_frames, encoder_args, join
from media_pipeline.core.timecode import parse_rate, rate_text
from media_pipeline.resources import ArtifactStore

PIECE_VERSION = 1  # bump when conformed pictures change for the same clip (invalidates pieces)
Decision = Literal["cached", "generate"]


class RenderError(RuntimeError):
    """Bad input, or segments that failed: every problem, each a sentence."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


class Hooks(Protocol):
    def stage(self, name: str) -> None: ...
    def item(self, item: str, status: str, **details: Any) -> None: ...
    def log(self, level: str, message: str) -> None: ...


@dataclass(frozen=True)
class SegmentSpec:
    id: int
    generator: str
    prompt: str
    negative_prompt: str
    params: dict[str, Any]
    seed: int
    frames: int
    inputs: tuple[int, ...] = ()  # media library ids
    transition: dict[str, Any] = field(default_factory=lambda: {"type": "cut"})

    @property
    def item(self) -> str:
        return f"segment_{self.id}"


@dataclass(frozen=True)
class CompositionSpec:
    composition_id: int
    rate: Fraction
    width: int
    height: int
    segments: tuple[SegmentSpec, ...]
    force_segments: frozenset[int] = frozenset()
    crf: int = 18
    preset: str = "veryfast"
    soundtrack: int | None = None  # a media library id

    @property
    def look(self) -> Look:
        return Look(self.width, self.height, self.rate, self.crf, self.preset)


@dataclass
class PlannedSegment:
    id: int
    index: int
    generator: str
    pool: str
    key: str
    payload: dict[str, Any]
    decision: Decision
    frames: int
    head: int  # frames crossfaded with the previous segment
    tail: int  # frames crossfaded with the next
    inputs: list[str]  # the input media's storage keys (localized by the generation step)
    ask_seconds: str
    ask_size: list[int]
    request: dict[str, Any]  # prompt, negative prompt, params, seed

    @property
    def item(self) -> str:
        return f"segment_{self.id}"


@dataclass
class Plan:
    composition_id: int
    rate: str
    width: int
    height: int
    crf: int
    preset: str
    segments: list[PlannedSegment]
    removed: list[int]
    soundtrack: str | None = None  # the soundtrack's storage key
    soundtrack_media: int | None = None
    soundtrack_sha256: str | None = None

    @property
    def total_frames(self) -> int:
        return sum(s.frames for s in self.segments) - sum(s.tail for s in self.segments)

    @property
    def total_samples(self) -> int:
        """The video's length in audio samples at 48 kHz (the nearest sample)."""
        return frame_to_sample(self.total_frames, parse_rate(self.rate))

    @property
    def look(self) -> Look:
        return Look(self.width, self.height, parse_rate(self.rate), self.crf, self.preset)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        raw = json.loads(text)
        raw["segments"] = [PlannedSegment(**s) for s in raw["segments"]]
        return cls(**raw)


def render_dir(artifact_root: Path, composition_id: int, render_id: str) -> Path:
    return artifact_root / "compositions" / str(composition_id) / "renders" / render_id


def cache_for(artifacts: ArtifactStore) -> GenerationCache:
    return GenerationCache(artifacts)


# -- PLAN -------------------------------------------------------------------------------------


def plan(
    spec: CompositionSpec,
    generators: dict[str, Generator],
    cache: GenerationCache,
    media: Mapping[int, InputMedia],
    previous: Plan | None = None,
) -> Plan:
    """The plan, or RenderError with every problem found. `media`: the library items the segments
    name as inputs (one missing from it was deleted since the segment was saved)."""
    problems: list[str] = []
    if not spec.segments:
        problems.append("the composition has no segments; add one with POST /v1/compositions/{id}/segments")
    rate = spec.rate
    planned: list[PlannedSegment] = []
    for index, segment in enumerate(spec.segments):
        label = f"segment {index + 1} (id {segment.id})"
        generator = generators.get(segment.generator)
        if generator is None:
            problems.append(f"{label}: there is no generator {segment.generator!r} (is its package installed?)")
            continue
        reason = generator.unavailable()
        if reason:
            problems.append(f"{label}: {reason}")
            continue
        caps = generator.capabilities
        try:
            params = generator.params(segment.params)
        except ValueError as exc:  # pydantic's ValidationError is one
            problems.append(f"{label}: its params are not valid for {generator.id}: {exc}")
            continue
        found = segment_inputs.problems(generator, params, segment.frames, rate, segment.inputs, dict(media))
        if found:
            problems += [f"{label}: {where}: {message}" for where, message in found]
            continue
        inputs = [media[i] for i in segment.inputs]
        seconds = generator.ask_seconds(segment.frames, rate)
        width, height = generator.ask_size(spec.width, spec.height)
        duration: dict[str, Any] = (
            {"frames": segment.frames, "rate": rate_text(rate)} if caps.durations is None else {"seconds": str(seconds)}
        )
        payload = {
            "generator": generator.id, "version": generator.version, "model": generator.model(params),
            "prompt": segment.prompt, "negative_prompt": segment.negative_prompt, "params": params,
            "seed": segment.seed, "duration": duration, "size": [width, height],
            # The content's sha-256, as the library recorded it on upload (its storage key is that hash).
            "inputs": [m.sha256 for m in inputs],
        }  # fmt: skip
        key = key_of(payload)
        forced = segment.id in spec.force_segments
        planned.append(
            PlannedSegment(
                id=segment.id, index=index, generator=generator.id, pool=caps.pool, key=key, payload=payload,
                decision="generate" if forced or not cache.has(key) else "cached", frames=segment.frames,
                head=0, tail=0, inputs=[m.storage_key for m in inputs], ask_seconds=str(seconds),
                ask_size=[width, height],
                request={"prompt": segment.prompt, "negative_prompt": segment.negative_prompt, "params": params,
                         "seed": segment.seed},
            )
        )  # fmt: skip
    for before, after in itertools.pairwise(planned):
        transition = spec.segments[before.index].transition
        if transition.get("type") == "crossfade":
            before.tail = after.head = int(transition["frames"])
    for segment in planned:
        if segment.head + segment.tail > segment.frames:
            problems.append(
                f"segment {segment.index + 1} (id {segment.id}) has {segment.frames} frames, fewer than its "
                f"crossfades take ({segment.head} in, {segment.tail} out); lengthen it or shorten the crossfades"
            )
    soundtrack = media.get(spec.soundtrack) if spec.soundtrack is not None else None
    if spec.soundtrack is not None and soundtrack is None:
        problems.append(f"the soundtrack, media {spec.soundtrack}, is no longer in the library; choose another one")
    elif soundtrack is not None and not soundtrack.has_audio:
        problems.append(f"the soundtrack, media {spec.soundtrack}, has no audio track")
    if problems:
        raise RenderError(problems)
    current = {s.id for s in planned}
    removed = sorted(s.id for s in previous.segments if s.id not in current) if previous else []
    return Plan(
        spec.composition_id, rate_text(rate), spec.width, spec.height, spec.crf, spec.preset, planned, removed,
        soundtrack=soundtrack.storage_key if soundtrack else None, soundtrack_media=spec.soundtrack,
        soundtrack_sha256=soundtrack.sha256 if soundtrack else None,
    )  # fmt: skip


# -- GENERATE ---------------------------------------------------------------------------------


@dataclass
class Generated:
    segment: int
    task_id: str | None = None
    error: str | None = None


def generate(
    plan_: Plan,
    pool: str,
    generators: dict[str, Generator],
    cache: GenerationCache,
    workdir: Path,
    hooks: Hooks,
    localize: Callable[[str], Path],
    *,
    concurrency: int = 2,
    timeout: float = 1800.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Generated]:
    """Generate the plan's missing clips of generators in `pool`, at most `concurrency` at once.
    `localize` turns an input's storage key into a local file (S3: fetched first).

    A failed segment fails alone (its item names the generator's error); RenderError after the
    others finished. Interrupted (the run is cancelled), in-flight provider tasks are cancelled.
    """
    wanted = [s for s in plan_.segments if s.decision == "generate" and s.pool == pool]
    # Segments asking for the very same clip share one generation.
    same: dict[str, list[PlannedSegment]] = {}
    for segment in wanted:
        same.setdefault(segment.key, []).append(segment)
    todo = [group[0] for group in same.values()]
    stop = threading.Event()
    in_flight: dict[str, Generator] = {}
    lock = threading.Lock()
    rate = parse_rate(plan_.rate)

    def one(segment: PlannedSegment) -> Generated:
        generator = generators[segment.generator]
        try:
            files = tuple(localize(key) for key in segment.inputs)
        except OSError:
            raise GeneratorError(
                "an input's content is no longer in the artifact store (deleted from the library?); upload it again"
            ) from None
        request = GenerationRequest(
            prompt=segment.request["prompt"], negative_prompt=segment.request["negative_prompt"],
            params=segment.request["params"], seed=segment.request["seed"], frames=segment.frames, rate=rate,
            width=segment.ask_size[0], height=segment.ask_size[1], seconds=Fraction(segment.ask_seconds),
            inputs=files, workdir=workdir,
        )  # fmt: skip
        hooks.item(segment.item, "running", progress=0.0, cache="miss")
        task_id = generator.submit(request)
        with lock:
            in_flight[task_id] = generator
        hooks.item(segment.item, "running", progress=0.0, cache="miss", task_id=task_id)
        deadline = time.monotonic() + timeout
        state = TaskState("PENDING")
        while True:
            state = generator.poll(task_id)
            if state.status in FINISHED:
                break
            if stop.is_set():
                raise GeneratorError("the render was cancelled")
            if time.monotonic() > deadline:
                _cancel(generator, task_id)
                raise GeneratorError(f"{generator.id} did not finish task {task_id} within {timeout:.0f} s")
            # Generation is half the segment's work; conforming it is the other half.
            hooks.item(segment.item, "running", progress=0.5 * (state.progress or 0.0), task_id=task_id)
            sleep(generator.poll_seconds)
        with lock:
            in_flight.pop(task_id, None)
        if state.status != "SUCCEEDED":
            raise GeneratorError(state.error or f"{generator.id} task {task_id} ended {state.status.lower()}")
        clip = workdir / f"{segment.key}.fetch.mp4"
        generator.fetch(task_id, clip)
        try:
            probe(clip)
        except ffmpeg.MediaError as exc:
            clip.unlink(missing_ok=True)
            raise GeneratorError(f"{generator.id} returned a clip that is not readable video ({exc.summary})") from exc
        cache.put(segment.key, segment.payload, clip, task_id)
        hooks.item(segment.item, "running", progress=0.5, cache="miss", task_id=task_id)
        return Generated(segment.id, task_id)

    results: list[Generated] = []
    workdir.mkdir(parents=True, exist_ok=True)
    with ffmpeg.cancel_scope(), ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool_:
        futures = {pool_.submit(ffmpeg.run_in_scope(one), s): s for s in todo}
        try:
            for future, segment in futures.items():
                twins = same[segment.key][1:]
                try:
                    done = future.result()
                except (GeneratorError, ffmpeg.FFmpegError, OSError, KeyError, ValueError) as exc:
                    message = f"{segment.generator}: {exc}"
                    for failed in (segment, *twins):
                        hooks.item(failed.item, "failed", error=message, cache="miss")
                        results.append(Generated(failed.id, error=message))
                    continue
                results.append(done)
                for twin in twins:
                    hooks.item(twin.item, "running", progress=0.5, cache="miss", task_id=done.task_id)
                    results.append(Generated(twin.id, done.task_id))
        except BaseException:
            stop.set()
            for future in futures:
                future.cancel()
            with lock:
                pending = list(in_flight.items())
            for task_id, generator in pending:
                _cancel(generator, task_id)
            raise
    failed = [f"segment {r.segment}: {r.error}" for r in results if r.error]
    if failed:
        raise RenderError(failed)
    return results


def _cancel(generator: Generator, task_id: str) -> None:
    if generator.capabilities.can_cancel:
        # Best effort: a task that cannot be cancelled ends on the provider's side; nothing of it is used.
        with contextlib.suppress(GeneratorError, OSError):
            generator.cancel(task_id)


# -- COMPOSE ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    kind: Literal["body", "crossfade"]
    segment: PlannedSegment
    first: int  # frame range inside the segment (a crossfade: the outgoing segment's tail)
    last: int
    incoming: PlannedSegment | None = None

    @property
    def frames(self) -> int:
        return self.last - self.first

    def key(self, look: Look) -> str:
        return key_of({
            "v": PIECE_VERSION, "kind": self.kind, "clip": self.segment.key, "frames": self.segment.frames,
            "range": [self.first, self.last], "incoming": [self.incoming.key, self.incoming.frames] if self.incoming
            else None, "look": [look.width, look.height, rate_text(look.rate), look.crf, look.preset],
        })  # fmt: skip


def pieces(plan_: Plan) -> list[Piece]:
    out: list[Piece] = []
    for index, segment in enumerate(plan_.segments):
        if segment.frames - segment.tail > segment.head:
            out.append(Piece("body", segment, segment.head, segment.frames - segment.tail))
        if segment.tail:
            incoming = plan_.segments[index + 1]
            out.append(Piece("crossfade", segment, segment.frames - segment.tail, segment.frames, incoming))
    return out


def conform_chain(clip_input: int, segment: PlannedSegment, look: Look, first: int, last: int, label: str) -> str:
    """Frames [first, last) of the clip conformed to the look: the composition's rate, its size
    (scaled to cover, then centre-cropped), yuv420p BT.709, and exactly `segment.frames` frames
    (a short clip holds its last frame, a long one is cut)."""
    tb = f"{look.rate.denominator}/{look.rate.numerator}"
    return (
        f"[{clip_input}:v]setpts=PTS-STARTPTS,fps={ffmpeg.rate_arg(look.rate)},"
        f"scale={look.width}:{look.height}:force_original_aspect_ratio=increase:out_color_matrix=bt709:out_range=tv,"
        f"crop={look.width}:{look.height},setsar=1,format=yuv420p,"
        f"tpad=stop_mode=clone:stop={segment.frames},trim=end_frame={segment.frames},"
        f"settb=expr={tb},setpts=N,trim=start_frame={first}:end_frame={last},setpts=PTS-STARTPTS[{label}]"
    )


def encode_piece(piece: Piece, look: Look, cache: GenerationCache, output: Path) -> None:
    args = ["-i", str(cache.clip(piece.segment.key))]
    chains = [conform_chain(0, piece.segment, look, piece.first, piece.last, "a")]
    if piece.incoming is not None:
        args += ["-i", str(cache.clip(piece.incoming.key))]
        chains.append(conform_chain(1, piece.incoming, look, 0, piece.frames, "b"))
        seconds = ffmpeg.format_seconds(Fraction(piece.frames) / look.rate)
        chains.append(f"[a][b]xfade=transition=fade:duration={seconds}:offset=0[v]")
    else:
        chains.append("[a]null[v]")
    args += ["-filter_complex", ";".join(chains), "-map", "[v]", *encoder_args(look, piece.frames)]
    what = f"{piece.kind} of segment {piece.segment.id}" + (f" into {piece.incoming.id}" if piece.incoming else "")
    ffmpeg.run(args, output, what=what, timeout=3600)


@dataclass
class Composed:
    video: Path
    frames: int
    planned_frames: int
    encoded_pieces: int
    reused_pieces: int
    short_clips: list[int]
    audio_samples: int | None = None  # the soundtrack as muxed (before AAC), exactly the video's length


def compose(
    plan_: Plan,
    cache: GenerationCache,
    staging: Path,
    output: Path,
    hooks: Hooks,
    *,
    concurrency: int = 2,
    localize: Callable[[str], Path] | None = None,
) -> Composed:
    """Conform and join (in `staging`); publish to `output` only if it has the planned frames.
    `localize` turns the soundtrack's storage key into a local file (needed when there is one)."""
    look = plan_.look
    hooks.stage("CONFORM")
    todo = pieces(plan_)
    encoded = reused = 0
    errors: list[str] = []
    per_segment: dict[int, list[Piece]] = {}
    for piece in todo:
        per_segment.setdefault(piece.segment.id, []).append(piece)
        if piece.incoming is not None:
            per_segment.setdefault(piece.incoming.id, []).append(piece)

    def build(piece: Piece) -> bool:
        key = piece.key(look)
        if cache.has_piece(key):
            return False
        encode_piece(piece, look, cache, cache.piece_target(key))
        cache.stored_piece(key)
        return True

    done: dict[int, int] = {}
    with ffmpeg.cancel_scope(), ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = [(piece, pool.submit(ffmpeg.run_in_scope(build), piece)) for piece in todo]
        for piece, future in futures:
            try:
                new = future.result()
            except ffmpeg.FFmpegError as exc:
                errors.append(f"segment {piece.segment.id}: {exc}")
                hooks.item(piece.segment.item, "failed", error=f"conforming failed: {exc.summary}")
                continue
            encoded, reused = encoded + new, reused + (not new)
            for segment in (piece.segment, piece.incoming):
                if segment is None:
                    continue
                done[segment.id] = done.get(segment.id, 0) + 1
                if done[segment.id] == len(per_segment[segment.id]):
                    hit = segment.decision == "cached"
                    hooks.item(segment.item, "reused" if hit else "succeeded", cache="hit" if hit else "miss")
    if errors:
        raise RenderError(errors)
    soundtrack = None
    if plan_.soundtrack is not None:
        hooks.stage("SOUNDTRACK")
        soundtrack = prepare_soundtrack(plan_, staging, localize)
    hooks.stage("JOIN")
    video = staging / f".joined{output.suffix}"
    join([cache.piece(p.key(look)) for p in todo], soundtrack, video, frames=plan_.total_frames,
         list_file=staging / "join.txt")  # fmt: skip
    frames = count_frames(video)
    if frames != plan_.total_frames:
        raise RenderError([f"the joined video has {frames} frames, planned {plan_.total_frames}; it was not published"])
    output.parent.mkdir(parents=True, exist_ok=True)
    os.replace(video, output)
    short = [s.id for s in plan_.segments if _clip_frames(cache, s, look) < s.frames]
    samples = wav_samples(soundtrack) if soundtrack is not None else None
    return Composed(output, frames, plan_.total_frames, encoded, reused, short, samples)


def prepare_soundtrack(plan_: Plan, staging: Path, localize: Callable[[str], Path] | None) -> Path:
    """The soundtrack as 48 kHz stereo PCM of exactly the video's samples: silence after a short
    one, a long one cut."""
    assert plan_.soundtrack is not None
    if localize is None:
        raise RenderError(["the soundtrack cannot be read here (no artifact store given)"])
    try:
        source = localize(plan_.soundtrack)
    except OSError:
        raise RenderError([f"the soundtrack, media {plan_.soundtrack_media}, is no longer in the artifact store; "
                           "upload it again"]) from None  # fmt: skip
    decoded = staging / "soundtrack.decoded.wav"
    to_wav(source, decoded, what=f"decoding the soundtrack (media {plan_.soundtrack_media})")
    exact = staging / "soundtrack.wav"
    samples = plan_.total_samples
    ffmpeg.run(
        ["-i", str(decoded), "-af", f"apad=whole_len={samples},atrim=end_sample={samples}", "-c:a", "pcm_s16le",
         "-f", "wav"],
        exact, what="fitting the soundtrack to the video's length", timeout=600,
    )  # fmt: skip
    decoded.unlink(missing_ok=True)
    found = wav_samples(exact)
    if found != samples:
        raise RenderError([f"the soundtrack came out {found} samples long, not the video's {samples}"])
    return exact


def _clip_frames(cache: GenerationCache, segment: PlannedSegment, look: Look) -> int:
    video = probe(cache.clip(segment.key)).video
    if video is None:
        return 0
    return int(Fraction(video.frames) / video.rate * look.rate)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True))
