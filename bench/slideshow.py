"""bench/slideshow: a 10-scene 1080p narrated slideshow against one hand-written ffmpeg command.

In one run:
  baseline   one ffmpeg command: every image fitted and panned exactly as the pipeline does, the
             scenes chained with xfade at their frame offsets, the voiceovers placed and
             crossfaded, the music looped, faded and ducked by sidechaincompress, loudnorm (one
             pass), x264 + AAC, +faststart: the same video
  pipeline   the slideshow_video asset on a real Dagster instance, nothing cached (it also writes
             a file per scene and measures frames, A/V lengths, loudness and ducking)
  re-render  the same slideshow after one scene's caption changed
Prints pipeline/baseline (target <= 1.2x) and re-render/pipeline (target <= 0.35x).

Usage: .venv/bin/python bench/slideshow.py [--scenes 10] [--preset veryfast] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import dagster as dg

from media_pipeline.core import ffmpeg, segments
from media_pipeline.core.audio import to_wav, wav_samples
from media_pipeline.resources import ArtifactStore, FFmpegResource
from media_pipeline.slideshows import mix, visuals
from media_pipeline.slideshows.assets import slideshow_video
from media_pipeline.slideshows.partitions import slideshow_renders
from media_pipeline.slideshows.plan import TimingOptions, plan_frames

RATE = Fraction(30)
WIDTH, HEIGHT = 1920, 1080


def make_media(folder: Path, scenes: int) -> None:
    for number in range(scenes):
        source = "testsrc2" if number % 2 else "mandelbrot"
        ffmpeg.run(
            ["-f", "lavfi", "-i", f"{source}=s={WIDTH}x{HEIGHT}:r=25", "-ss", str(number), "-frames:v", "1",
             "-q:v", "3"],
            folder / "images" / f"img{number:02d}.jpg",
        )  # fmt: skip
        # About 4 s of "speech": a tone that comes and goes, so the ducking has phrases to follow.
        ffmpeg.run(
            ["-f", "lavfi", "-i", f"sine=frequency={600 + 40 * number}:duration={3.6 + 0.1 * number}",
             "-af", "volume='if(lt(mod(t,1.2),0.9),0.3,0)':eval=frame", "-c:a", "pcm_s16le"],
            folder / "voiceovers" / f"vo{number:02d}.wav",
        )  # fmt: skip
    ffmpeg.run(
        ["-f", "lavfi", "-i", "sine=frequency=110:duration=12", "-f", "lavfi", "-i", "sine=frequency=165:duration=12",
         "-filter_complex", "amix=inputs=2", "-c:a", "pcm_s16le"],
        folder / "music" / "bed.wav",
    )  # fmt: skip


def scenes_json(folder: Path, scenes: int, changed: int | None = None) -> None:
    items = []
    for number in range(scenes):
        caption = f"Scene {number + 1}" + (" (changed)" if number == changed else "")
        items.append({"images": [f"img{number:02d}.jpg"], "voiceover": f"vo{number:02d}.wav", "caption": caption,
                      "duration": 5.0})  # fmt: skip
    (folder / "scenes.json").write_text(json.dumps({"scenes": items}))


def baseline(folder: Path, out: Path, scenes: int, preset: str, work: Path) -> float:
    """One ffmpeg command for the same video (the WAV decode of the inputs is not timed: the
    pipeline caches it too)."""
    plan = plan_frames([5.0] * scenes, [None] * scenes, TimingOptions(RATE, 2.5, 8.0, 0.5))
    look = segments.Look(WIDTH, HEIGHT, RATE, 18, preset)
    voices = []
    for number in range(scenes):
        wav = work / f"vo{number}.wav"
        to_wav(folder / "voiceovers" / f"vo{number:02d}.wav", wav, what="voice")
        voices.append(mix.VoiceClip(wav, wav_samples(wav)))
    music = work / "bed.wav"
    to_wav(folder / "music" / "bed.wav", music, what="music")
    started = time.perf_counter()
    args: list[str] = []
    chains: list[str] = []
    for number in range(scenes):
        caption = work / f"caption{number}.txt"
        caption.write_text(f"Scene {number + 1}")
        visual = visuals.SceneVisual(
            (folder / "images" / f"img{number:02d}.jpg",),
            ("",),
            "cover",
            "pan",
            caption,
            "",
            plan.scenes[number].frames,
        )
        chains += visuals._scene_chains(visual, look, number, f"v{number}", 0, visual.frames)
        args += ["-i", str(visual.images[0])]
    current = "v0"
    for number in range(1, scenes):
        offset = ffmpeg.format_seconds(Fraction(plan.scenes[number].start) / RATE)
        seconds = ffmpeg.format_seconds(Fraction(plan.xfade_frames) / RATE)
        chains.append(f"[{current}][v{number}]xfade=transition=fade:duration={seconds}:offset={offset}[x{number}]")
        current = f"x{number}"
    audio_args: list[str] = []
    audio_chains, _ = mix._voice_graph(plan, voices, audio_args)
    shift = scenes  # the voice inputs come after the images
    for index in reversed(range(len(voices))):  # highest first, so no label is renumbered twice
        audio_chains = [c.replace(f"[{index}:a]", f"[{index + shift}:a]") for c in audio_chains]
    args += [*audio_args, "-stream_loop", "-1", "-i", str(music)]
    total = plan.total_samples
    fade = 2 * 48000
    chains += audio_chains
    chains.append(
        f"[{scenes * 2}:a]aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo,atrim=end_sample={total},"
        f"afade=t=in:nb_samples={fade},afade=t=out:start_sample={total - fade}:nb_samples={fade},volume=-10dB[music]"
    )
    chains.append("[voice]asplit=2[vmix][vkey]")
    chains.append(f"[vkey]atrim=start_sample=4800,asetpts=PTS-STARTPTS,apad=whole_len={total}[key]")
    chains.append(f"[music][key]sidechaincompress={mix.DUCK}[bed]")
    chains.append("[vmix][bed]amix=inputs=2:duration=first:normalize=0,loudnorm=I=-16:TP=-1.5,aresample=48000[a]")
    args += ["-filter_complex", ";".join(chains), "-map", f"[{current}]", "-map", "[a]"]
    args += segments.encoder_args(look, plan.total_frames)[:-3]  # without -an -f mp4
    args += ["-c:a", "aac", "-b:a", "192k", "-movflags", "+faststart", "-f", "mp4"]
    ffmpeg.run(args, out, what="baseline", timeout=3600)
    return time.perf_counter() - started


def pipeline(instance: dg.DagsterInstance, root: Path, key: str, preset: str) -> tuple[float, dict]:
    instance.add_dynamic_partitions(slideshow_renders.name, [key])
    config = {"preset": preset, "fps": "30", "music": "bed.wav", "ducking": True}
    started = time.perf_counter()
    result = dg.materialize(
        [slideshow_video],
        instance=instance,
        partition_key=key,
        resources={"artifacts": ArtifactStore(root=str(root)), "ffmpeg": FFmpegResource(concurrency=2)},
        run_config={"ops": {"slideshow_video": {"config": config}}},
    )
    elapsed = time.perf_counter() - started
    metadata = result.asset_materializations_for_node("slideshow_video")[0].metadata
    return elapsed, {k: v.value for k, v in metadata.items() if k in ("frames", "reused_scenes", "encoded_segments")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=10)
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--workdir", type=Path)
    options = parser.parse_args()
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="bench-slideshow-"))
    root = workdir / "artifacts"
    folder = root / "slideshows" / "bench"
    make_media(folder, options.scenes)
    scenes_json(folder, options.scenes)
    base = baseline(folder, workdir / "baseline.mp4", options.scenes, options.preset, workdir)
    print(f"baseline (one ffmpeg command)       {base:7.2f} s")
    with dg.instance_for_test() as instance:
        full, info = pipeline(instance, root, "bench.full", options.preset)
        print(f"pipeline, nothing cached           {full:7.2f} s  {info}")
        scenes_json(folder, options.scenes, changed=options.scenes // 2)
        again, info = pipeline(instance, root, "bench.again", options.preset)
        print(f"re-render, one caption changed     {again:7.2f} s  {info}")
    print(f"pipeline / baseline  = {full / base:.2f}x (target <= 1.2x)")
    print(f"re-render / pipeline = {again / full:.2f}x (target <= 0.35x)")
    if options.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
