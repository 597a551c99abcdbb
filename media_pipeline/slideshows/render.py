"""One render of a slideshow, from its folder in the artifact store to `output/`.

    slideshows/<id>/scenes.json            the scene list (PUT .../scenes)
    slideshows/<id>/images|voiceovers|music/   uploaded assets
    slideshows/<id>/work/                  intermediates: oriented images, WAVs, TTS, segments, the mix
    slideshows/<id>/output/<outputName>    the video; output/scene_NN.mp4 each scene alone
    slideshows/<id>/renders/<render>.json  what a render did (reused scenes, loudness, warnings)

Stages, in order: VALIDATE (everything a client can get wrong, as sentences, before any work),
AUDIO_PREP (voices decoded or synthesised, lengths, the frame plan, images oriented),
SCENE_BUILD[n] (scene n's segments; cached by content), CONCAT (the soundtrack and the joins),
FINALIZE (measured on the files written: frames, A/V lengths, loudness, ducking; then published).
Nothing reaches `output/` unless every check passed; intermediates stay in `work/` for debugging.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

from PIL import Image, ImageOps, UnidentifiedImageError

from media_pipeline.core import ffmpeg
from media_pipeline.core.audio import SAMPLE_RATE, measure_loudness, rms_db, to_wav, wav_samples
from media_pipeline.core.files import atomic_path, sha256_file
from media_pipeline.core.segments import Look, join
from media_pipeline.slideshows import mix, tts
from media_pipeline.slideshows.plan import FramePlan, PlanError, TimingOptions, plan_frames, timing_frames
from media_pipeline.slideshows.spec import Scene, SceneList
from media_pipeline.slideshows.visuals import SceneVisual, Segment, SegmentPlan, encode_segment, plan_segments

LOUDNESS_TOLERANCE = 1.0  # LU either side of the target
TRUE_PEAK_MAX = -1.0
DUCKING_DEPTH_DB = 10.0
AAC_FRAME_SECONDS = Fraction(1024, SAMPLE_RATE)


class RenderError(RuntimeError):
    """Bad input: every problem found, each a sentence saying what to fix."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


class Hooks(Protocol):
    def stage(self, name: str) -> None: ...
    def scene(self, index: int, status: str) -> None: ...  # "running", "succeeded", "reused"
    def log(self, level: str, message: str) -> None: ...


@dataclass(frozen=True)
class RenderSpec:
    output_name: str
    rate: Fraction
    min_shot: float
    max_shot: float
    xfade: float
    crf: int
    preset: str
    width: int
    height: int
    tts_engine: str | None
    tts_voice: str | None
    music: str | None
    ducking: bool
    loudness: float
    max_pixels: int


@dataclass
class RenderResult:
    video: Path
    scene_files: list[Path]
    plan: FramePlan
    frames: int
    video_seconds: float
    audio_seconds: float
    loudness: float | None
    true_peak: float | None
    ducking_depth: float | None
    reused_scenes: list[int]
    encoded_segments: int
    reused_segments: int
    reused_soundtrack: bool = False
    warnings: list[str] = field(default_factory=list)
    checks: dict[str, tuple[bool, str]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "video": self.video.name,
            "scene_files": [p.name for p in self.scene_files],
            "frames": self.frames,
            "planned_frames": self.plan.total_frames,
            "rate": f"{self.plan.rate.numerator}/{self.plan.rate.denominator}",
            "scenes": [
                {"index": s.index, "start": s.start, "frames": s.frames, "source": s.source, "clamped": s.clamped}
                for s in self.plan.scenes
            ],
            "video_seconds": self.video_seconds,
            "audio_seconds": self.audio_seconds,
            "loudness_lufs": self.loudness,
            "true_peak_dbtp": self.true_peak,
            "ducking_depth_db": self.ducking_depth,
            "reused_scenes": self.reused_scenes,
            "encoded_segments": self.encoded_segments,
            "reused_segments": self.reused_segments,
            "reused_soundtrack": self.reused_soundtrack,
            "warnings": self.warnings,
            "checks": {name: {"passed": ok, "detail": detail} for name, (ok, detail) in self.checks.items()},
        }


def load_scenes(folder: Path) -> SceneList:
    path = folder / "scenes.json"
    if not path.is_file():
        raise RenderError(["the slideshow has no scenes yet; PUT its scenes first"])
    return SceneList.model_validate_json(path.read_text())


# -- VALIDATE ---------------------------------------------------------------------------------


def validate(folder: Path, scenes: SceneList, spec: RenderSpec) -> tts.Engine | None:
    problems: list[str] = []
    try:
        timing_frames(TimingOptions(spec.rate, spec.min_shot, spec.max_shot, spec.xfade))
    except PlanError as exc:
        problems.append(str(exc))
    engine = None
    wants_tts = any(s.text for s in scenes.scenes)
    if wants_tts and spec.tts_engine is None:
        problems.append('some scenes have `text` but renderOptions.tts is not set; set tts to {"engine": "espeak-ng"}')
    elif wants_tts and spec.tts_engine is not None:
        try:
            engine = tts.find_engine(spec.tts_engine)
        except tts.TtsError as exc:
            problems.append(str(exc))
    for number, scene in enumerate(scenes.scenes, start=1):
        for name in scene.images:
            problem = check_image(folder / "images" / name, spec.max_pixels)
            if problem:
                problems.append(f"scene {number}: {problem}")
        if scene.voiceover and not (folder / "voiceovers" / scene.voiceover).is_file():
            problems.append(
                f"scene {number}: voiceover {scene.voiceover} was not uploaded (POST it with subdir=voiceovers)"
            )
    if spec.music and not (folder / "music" / spec.music).is_file():
        problems.append(f"music {spec.music} was not uploaded (POST it with subdir=music)")
    if problems:
        raise RenderError(problems)
    return engine


def check_image(path: Path, max_pixels: int) -> str | None:
    """None if `path` is an image we can render, else a sentence saying what is wrong."""
    if not path.is_file():
        return f"image {path.name} was not uploaded (POST it with subdir=images)"
    try:
        with Image.open(path) as image:  # reads the header only: a decompression bomb is caught by size
            width, height = image.size
            if width * height > max_pixels:
                return (
                    f"image {path.name} is {width}x{height}, over the limit of {max_pixels} pixels; "
                    "scale it down before uploading"
                )
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return f"image {path.name} is not a readable image ({type(exc).__name__}); re-export it as JPEG or PNG"
    return None


# -- AUDIO_PREP -------------------------------------------------------------------------------


def oriented_image(path: Path, work: Path) -> tuple[Path, str]:
    """The image as a viewer sees it (EXIF orientation applied) and its content hash."""
    digest = sha256_file(path)
    with Image.open(path) as image:
        orientation = image.getexif().get(0x0112, 1)
        if orientation in (None, 1):
            return path, digest
        target = work / "images" / f"{digest}.png"
        if not target.exists():
            with atomic_path(target) as tmp:
                ImageOps.exif_transpose(image).convert("RGB").save(tmp, format="PNG")
    return target, digest


def decoded_audio(source: Path, work: Path, what: str) -> mix.VoiceClip:
    digest = sha256_file(source)
    target = work / "audio" / f"{digest}.wav"
    if not target.exists():
        try:
            to_wav(source, target, what=what)
        except ffmpeg.FFmpegError as exc:
            raise RenderError(
                [f"{what}: {source.name} is not readable audio; re-export it as WAV, MP3 or AAC"]
            ) from exc
    return mix.VoiceClip(target, wav_samples(target))


def caption_file(text: str | None, work: Path) -> tuple[Path | None, str | None]:
    if not text:
        return None, None
    digest = hashlib.sha256(text.encode()).hexdigest()
    target = work / "captions" / f"{digest}.txt"
    if not target.exists():
        with atomic_path(target) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return target, digest


# -- the whole render -------------------------------------------------------------------------


def render(
    folder: Path,
    spec: RenderSpec,
    hooks: Hooks,
    *,
    render_id: str,
    concurrency: int = 2,
    on_plan: Callable[[int, list[str]], None] | None = None,
) -> RenderResult:
    work = folder / "work"
    hooks.stage("VALIDATE")
    scenes = load_scenes(folder)
    engine = validate(folder, scenes, spec)

    hooks.stage("AUDIO_PREP")
    voices: list[mix.VoiceClip | None] = []
    for number, scene in enumerate(scenes.scenes, start=1):
        voices.append(_voice(folder, work, scene, number, engine, spec, hooks))
    music = decoded_audio(folder / "music" / spec.music, work, "music").path if spec.music else None
    plan = plan_frames(
        [s.duration for s in scenes.scenes],
        [Fraction(v.samples, SAMPLE_RATE) if v else None for v in voices],
        TimingOptions(spec.rate, spec.min_shot, spec.max_shot, spec.xfade),
    )
    visuals = []
    for scene, scene_plan in zip(scenes.scenes, plan.scenes, strict=True):
        images = [oriented_image(folder / "images" / name, work) for name in scene.images]
        caption, caption_hash = caption_file(scene.caption, work)
        visuals.append(
            SceneVisual(
                tuple(p for p, _ in images),
                tuple(h for _, h in images),
                scene.fit,
                scene.motion,
                caption,
                caption_hash,
                scene_plan.frames,
            )
        )
    for scene_plan in plan.scenes:
        if scene_plan.clamped:
            hooks.log(
                "info",
                f"scene {scene_plan.index + 1}: {scene_plan.source} asks for {scene_plan.wanted} frames, "
                f"clamped to {scene_plan.frames} (minShot..maxShot)",
            )

    if on_plan is not None:
        on_plan(len(plan.scenes), [f"scene_{s.index + 1:02d}" for s in plan.scenes])
    look = Look(spec.width, spec.height, spec.rate, spec.crf, spec.preset)
    segments = plan_segments(visuals, plan.xfade_frames)
    encoded, reused_segments, reused_scenes = _build(work, look, segments, hooks, concurrency)

    hooks.stage("CONCAT")
    audio = _soundtrack(work, plan, voices, music, spec)
    for warning in audio.warnings:
        hooks.log("warning", warning)
    if audio.reused:
        hooks.log("info", "soundtrack reused: the voices, music and timing are those of an earlier render")
    soundtrack, beds = audio.path, audio.beds
    staging = work / "final" / render_id
    staging.mkdir(parents=True, exist_ok=True)
    video = staging / spec.output_name
    spans = mix.scene_samples(plan)
    scene_files = [staging / f"scene_{index + 1:02d}.mp4" for index in range(len(segments.scenes))]

    def join_final() -> None:
        files = [segment_path(work, s, look) for s in segments.final]
        join(files, soundtrack, video, frames=plan.total_frames, list_file=staging / "final.txt")

    def join_scene(index: int) -> None:
        files = [segment_path(work, s, look) for s in segments.scenes[index]]
        target = scene_files[index]
        join(
            files, soundtrack, target, frames=plan.scenes[index].frames, list_file=staging / f"{target.stem}.txt",
            audio_samples=spans[index],
        )  # fmt: skip

    # Stream copies and small AAC encodes: run side by side like the scene builds.
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = [pool.submit(join_final), *(pool.submit(join_scene, i) for i in range(len(scene_files)))]
        for future in futures:
            future.result()

    hooks.stage("FINALIZE")
    result = _measure(video, plan, spec, voices, beds)
    result.scene_files = scene_files
    result.reused_scenes = reused_scenes
    result.encoded_segments, result.reused_segments = encoded, reused_segments
    result.reused_soundtrack = audio.reused
    result.warnings = audio.warnings
    failed = [detail for ok, detail in result.checks.values() if not ok]
    if failed:
        raise RenderError([f"the render failed its checks and was not published ({'; '.join(failed)})"])
    result.video = _publish(folder, staging, [video, *scene_files])
    result.scene_files = [folder / "output" / p.name for p in scene_files]
    summary = json.dumps({"render_id": render_id, **result.summary()}, indent=2)
    # <render>.json for this render; latest.json names the video the original API's outputs/video serves.
    for record in (folder / "renders" / f"{render_id}.json", folder / "renders" / "latest.json"):
        with atomic_path(record) as tmp:
            tmp.write_text(summary)
    return result


def _voice(
    folder: Path, work: Path, scene: Scene, number: int, engine: tts.Engine | None, spec: RenderSpec, hooks: Hooks
) -> mix.VoiceClip | None:
    if scene.voiceover:
        return decoded_audio(folder / "voiceovers" / scene.voiceover, work, f"scene {number}'s voiceover")
    if scene.text and engine is not None:
        try:
            speech, reused = tts.synthesise(engine, spec.tts_voice, scene.text, work / "tts")
        except tts.TtsError as exc:
            raise RenderError([f"scene {number}: {exc}"]) from exc
        if reused:
            hooks.log("info", f"scene {number}: speech reused from the cache")
        return decoded_audio(speech, work, f"scene {number}'s speech")
    return None


@dataclass(frozen=True)
class Soundtrack:
    path: Path  # 48 kHz stereo float WAV of exactly the video's samples, loudness-normalised if audible
    beds: tuple[Path, Path] | None  # the music ducked and dry, when ducking applies (measured later)
    warnings: list[str]
    reused: bool


def soundtrack_key(plan: FramePlan, voices: list[mix.VoiceClip | None], music: Path | None, spec: RenderSpec) -> str:
    """What decides the soundtrack: the timing, each voice and the music (decoded files named by
    their content's sha-256), ducking, the loudness target, and mix.py itself, so that a change to
    the mix's graph or constants never reuses an old soundtrack. Captions, pictures and the
    encoder do not enter: changing those reuses it."""
    payload = {
        "mix": hashlib.sha256(Path(mix.__file__).read_bytes()).hexdigest(),
        "rate": f"{plan.rate.numerator}/{plan.rate.denominator}",
        "scenes": [[scene.start, scene.frames] for scene in plan.scenes],
        "xfade": plan.xfade_frames,
        "voices": [None if v is None else [v.path.name, v.samples] for v in voices],
        "music": None if music is None else music.name,
        "ducking": spec.ducking,
        "loudness": spec.loudness,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _soundtrack(
    work: Path, plan: FramePlan, voices: list[mix.VoiceClip | None], music: Path | None, spec: RenderSpec
) -> Soundtrack:
    """The mixed and normalised soundtrack, from the cache when an earlier render made the same
    one (a folder per key, renamed into place whole)."""
    key = soundtrack_key(plan, voices, music, spec)
    folder = work / "soundtracks" / key
    ducks = spec.ducking and music is not None and any(voices)

    def paths(root: Path) -> tuple[Path, tuple[Path, Path] | None]:
        return root / "soundtrack.wav", ((root / "bed.wav", root / "dry.wav") if ducks else None)

    record = folder / "soundtrack.json"
    if record.is_file():
        path, beds = paths(folder)
        return Soundtrack(path, beds, list(json.loads(record.read_text())["warnings"]), reused=True)
    scratch = folder.with_name(f".{key}.{os.getpid()}.partial")
    scratch.mkdir(parents=True, exist_ok=True)
    path, beds = paths(scratch)
    raw = scratch / "raw.wav"
    warnings, audible = mix.mix(plan, voices, music, ducking=spec.ducking, output=raw, beds=beds)
    if audible:
        mix.normalise(raw, path, target=spec.loudness, samples=plan.total_samples)
        raw.unlink()
    else:
        os.replace(raw, path)
    (scratch / "soundtrack.json").write_text(json.dumps({"key": key, "warnings": warnings}))
    try:
        os.replace(scratch, folder)
    except OSError:  # another render made the same soundtrack meanwhile: keep theirs
        shutil.rmtree(scratch, ignore_errors=True)
    path, beds = paths(folder)
    return Soundtrack(path, beds, warnings, reused=False)


def segment_path(work: Path, segment: Segment, look: Look) -> Path:
    key = segment.key(look)
    return work / "segments" / key[:2] / f"{key}.mp4"


def _build(work: Path, look: Look, segments: SegmentPlan, hooks: Hooks, concurrency: int) -> tuple[int, int, list[int]]:
    """Encode what is not cached, scene by scene (a scene's stage covers its own segments and
    the crossfade into the next). Returns (encoded, reused, indices of scenes fully reused)."""
    per_scene: list[list[Segment]] = [list(own) for own in segments.scenes]
    for segment in segments.final:
        if segment.kind == "transition":
            per_scene[segment.scene].append(segment)
    encoded = reused = 0
    reused_scenes: list[int] = []
    errors: list[str] = []

    def build_scene(index: int) -> tuple[int, int]:
        hooks.stage(f"SCENE_BUILD[{index + 1}]")
        hooks.scene(index, "running")
        done = cached = 0
        for segment in per_scene[index]:
            path = segment_path(work, segment, look)
            if path.exists():
                cached += 1
                continue
            encode_segment(segment, look, path)
            done += 1
        hooks.scene(index, "reused" if done == 0 else "succeeded")
        return done, cached

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = [pool.submit(build_scene, index) for index in range(len(per_scene))]
        for index, future in enumerate(futures):
            try:
                done, cached = future.result()
            except ffmpeg.FFmpegError as exc:
                errors.append(f"scene {index + 1}: {exc}")
                hooks.scene(index, "failed")
                continue
            encoded += done
            reused += cached
            if done == 0:
                reused_scenes.append(index)
    if errors:
        raise RenderError(errors)
    return encoded, reused, reused_scenes


# -- FINALIZE ---------------------------------------------------------------------------------


def _count(path: Path, stream: str) -> ffmpeg.Progress:
    last: list[ffmpeg.Progress] = []
    codec = ["-c", "copy"] if stream == "v" else []
    ffmpeg.run(["-i", str(path), "-map", f"0:{stream}:0", *codec, "-f", "null", "-"], on_progress=last.append)
    return last[-1]


def _measure(
    video: Path,
    plan: FramePlan,
    spec: RenderSpec,
    voices: list[mix.VoiceClip | None],
    beds: tuple[Path, Path] | None,
) -> RenderResult:
    frames = _count(video, "v").frame
    video_seconds = float(Fraction(frames) / plan.rate)
    audio_seconds = _count(video, "a").out_seconds
    checks: dict[str, tuple[bool, str]] = {}
    checks["frame_count"] = (
        frames == plan.total_frames,
        f"{frames} frames, planned {plan.total_frames}",
    )
    gap = abs(audio_seconds - video_seconds)
    checks["av_duration"] = (
        gap <= float(AAC_FRAME_SECONDS),
        f"audio {audio_seconds:.4f} s, video {video_seconds:.4f} s (at most one AAC frame, 21.3 ms, apart)",
    )
    loudness = true_peak = None
    if any(voices) or spec.music:
        measured = measure_loudness(video, target=spec.loudness)
        loudness, true_peak = measured.integrated, measured.true_peak
        ok = abs(loudness - spec.loudness) <= LOUDNESS_TOLERANCE and true_peak <= TRUE_PEAK_MAX
        checks["loudness"] = (
            ok,
            f"{loudness:.1f} LUFS (target {spec.loudness:g} +/- {LOUDNESS_TOLERANCE:g}), "
            f"true peak {true_peak:.1f} dBTP (at most {TRUE_PEAK_MAX:g})",
        )
    else:
        checks["loudness"] = (True, "silent: no voice and no music")
    depth = None
    if beds is not None:
        depth = ducking_depth(plan, voices, beds)
        checks["ducking_depth"] = (
            depth is not None and depth >= DUCKING_DEPTH_DB,
            f"music {depth:.1f} dB quieter under speech (at least {DUCKING_DEPTH_DB:g})" if depth is not None
            else "no speech long enough to measure the ducking",
        )  # fmt: skip
    return RenderResult(
        video=video, scene_files=[], plan=plan, frames=frames, video_seconds=video_seconds,
        audio_seconds=audio_seconds, loudness=loudness, true_peak=true_peak, ducking_depth=depth,
        reused_scenes=[], encoded_segments=0, reused_segments=0, checks=checks,
    )  # fmt: skip


def ducking_depth(plan: FramePlan, voices: list[mix.VoiceClip | None], beds: tuple[Path, Path]) -> float | None:
    """How much quieter the music is under speech than it would be without ducking: the bed is
    rendered once ducked and once not, and compared over the middle of every voiced span."""
    ducked, dry = beds
    drops = []
    for (start, end), voice in zip(mix.scene_samples(plan), voices, strict=True):
        if voice is None:
            continue
        speech_end = min(end, start + voice.samples)
        # Skip the attack and the release at either end of the phrase.
        first, last = Fraction(start, SAMPLE_RATE) + Fraction(1, 5), Fraction(speech_end, SAMPLE_RATE) - Fraction(1, 5)
        if last - first < Fraction(1, 5):
            continue
        drops.append(rms_db(dry, start=first, end=last) - rms_db(ducked, start=first, end=last))
    return min(drops) if drops else None


def _publish(folder: Path, staging: Path, files: list[Path]) -> Path:
    """Rename the finished files into output/ (same file system, atomic each) and drop scene
    files an earlier, longer render left behind."""
    output = folder / "output"
    output.mkdir(parents=True, exist_ok=True)
    names = {p.name for p in files}
    for path in files:
        os.replace(path, output / path.name)
    for stale in output.glob("scene_*.mp4"):
        if stale.name not in names:
            stale.unlink(missing_ok=True)
    return output / files[0].name
