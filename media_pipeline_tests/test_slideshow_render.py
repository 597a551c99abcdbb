"""Slideshow renders with real ffmpeg on generated images and tones, measured on the files written."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest
from PIL import Image

from media_pipeline.core.audio import rms_db
from media_pipeline.core.ffmpeg import probe
from media_pipeline.slideshows.plan import frame_to_sample
from media_pipeline.slideshows.render import RenderError, RenderSpec, render
from media_pipeline_tests.slideshow_media import (
    COLOURS,
    first_above,
    make_image,
    make_tone,
    pcm,
    slideshow,
    video_frames,
)

SPEC = RenderSpec(
    output_name="video.mp4", rate=Fraction(25), min_shot=1.0, max_shot=3.0, xfade=0.2, crf=23, preset="veryfast",
    width=320, height=180, tts_engine=None, tts_voice=None, music=None, ducking=False, loudness=-16.0,
    max_pixels=50_000_000,
)  # fmt: skip


class Recorder:
    def __init__(self) -> None:
        self.stages: list[str] = []
        self.scenes: list[tuple[int, str]] = []
        self.logs: list[tuple[str, str]] = []

    def stage(self, name: str) -> None:
        self.stages.append(name)

    def scene(self, index: int, status: str) -> None:
        self.scenes.append((index, status))

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))


def images(folder: Path, count: int = 3) -> list[str]:
    names = []
    for number in range(count):
        make_image(folder / "images" / f"i{number}.png", COLOURS[number])
        names.append(f"i{number}.png")
    return names


def test_frames_crossfades_voice_onset_and_scene_files(tmp_path: Path) -> None:
    folder = slideshow(
        tmp_path,
        [
            {"images": ["i0.png", "i1.png"], "duration": 2.0, "caption": "it's: [a] 100%; \\ test"},
            {"images": ["i2.png"], "voiceover": "v.wav"},
            {"images": ["i0.png"], "fit": "contain", "motion": "none"},
        ],
    )
    images(folder)
    make_tone(folder / "voiceovers" / "v.wav", frequency=1000, seconds=1.5, rate=44100)  # resampled, never stretched
    rate = Fraction(30000, 1001)
    spec = replace(SPEC, rate=rate)
    hooks = Recorder()
    result = render(folder, spec, hooks, render_id="r1")

    # 2.0 s -> 60 frames; 1.5 s voice -> ceil(44.955) = 45; minShot 1.0 -> 30; xfade 0.2 -> 6.
    assert [s.frames for s in result.plan.scenes] == [60, 45, 30]
    assert result.plan.total_frames == 60 + 45 + 30 - 2 * 6
    video = folder / "output" / "video.mp4"
    assert video_frames(video) == 123 and result.checks["frame_count"][0]
    info = probe(video)
    assert (info.width, info.height, info.rate, info.codec) == (320, 180, rate, "h264")
    assert [video_frames(folder / "output" / f"scene_0{n}.mp4") for n in (1, 2, 3)] == [60, 45, 30]
    assert sorted(p.name for p in (folder / "output").iterdir()) == [
        "scene_01.mp4", "scene_02.mp4", "scene_03.mp4", "video.mp4"
    ]  # fmt: skip
    assert hooks.stages[:2] == ["VALIDATE", "AUDIO_PREP"] and hooks.stages[-2:] == ["CONCAT", "FINALIZE"]
    assert {f"SCENE_BUILD[{n}]" for n in (1, 2, 3)} <= set(hooks.stages)

    # The crossfade is frames 54..59: scene 1's second image (green) fading into scene 2 (blue).
    before, middle, after = (frame_colour(video, n, tmp_path) for n in (53, 57, 60))
    assert before[1] > 150 and before[2] < 100 and after[2] > 150 and after[1] < 100
    assert 60 < middle[1] < 190 and 60 < middle[2] < 190

    # The voice starts at the sample where scene 2's first frame (54) begins: 54 * 48000 / rate.
    onset = frame_to_sample(54, rate)
    assert onset == 86486
    lossless = pcm(soundtrack_of(folder), tmp_path)
    peak = max(abs(s) for s in lossless)
    # A 1 kHz sine from phase 0 first exceeds a quarter of its peak 2 samples in (sin(2*pi*2/48) = 0.26).
    assert first_above(lossless, peak // 4) == onset + 2
    encoded = pcm(video, tmp_path)
    assert abs(first_above(encoded, peak // 4) - (onset + 2)) <= 8  # AAC smears an onset by a few samples
    audio_seconds, video_seconds = result.audio_seconds, result.video_seconds
    assert abs(audio_seconds - video_seconds) <= 1024 / 48000
    assert abs(result.loudness - -16.0) <= 1.0 and result.true_peak <= -1.0  # type: ignore[operator]
    summary = json.loads((folder / "renders" / "r1.json").read_text())
    assert summary["frames"] == 123 and summary["reused_scenes"] == []
    assert not any(p.name.startswith(".") for p in (folder / "output").iterdir())


def frame_colour(video: Path, frame: int, work: Path) -> tuple[int, int, int]:
    """The colour at the centre-right of one frame (away from captions and corner marks)."""
    from media_pipeline.core import ffmpeg

    still = work / f"frame{frame}.png"
    ffmpeg.run(["-i", str(video), "-vf", f"select=eq(n\\,{frame})", "-frames:v", "1"], still)
    with Image.open(still) as picture:
        return picture.convert("RGB").getpixel((picture.width * 3 // 4, picture.height // 2))  # type: ignore[return-value]


def test_ducking_is_at_least_10_db_measured_on_the_output(tmp_path: Path) -> None:
    folder = slideshow(tmp_path, [{"images": ["i0.png"], "voiceover": "v.wav", "duration": 3.0}] * 3)
    images(folder, 1)
    make_tone(folder / "voiceovers" / "v.wav", frequency=2000, seconds=1.0, volume_db=-10)
    make_tone(folder / "music" / "bed.wav", frequency=150, seconds=1.7, volume_db=-6)  # looped
    result = render(folder, replace(SPEC, music="bed.wav", ducking=True, xfade=0.0), Recorder(), render_id="r1")
    video = folder / "output" / "video.mp4"
    music_band = "lowpass=f=400,lowpass=f=400,lowpass=f=400"
    # Scene 2 (3-6 s) lies between the music's 2 s fade-in and fade-out.
    for scene_start in (Fraction(3),):
        under_speech = rms_db(
            video, start=scene_start + Fraction(3, 10), end=scene_start + Fraction(9, 10), band=music_band
        )
        between = rms_db(
            video, start=scene_start + Fraction(17, 10), end=scene_start + Fraction(27, 10), band=music_band
        )
        assert between - under_speech >= 10.0, (scene_start, between, under_speech)
    assert result.ducking_depth is not None and result.ducking_depth >= 10.0
    assert result.checks["ducking_depth"][0]

    # Without ducking, the music is as loud under speech as between phrases.
    plain = render(
        folder, replace(SPEC, music="bed.wav", xfade=0.0, output_name="plain.mp4"), Recorder(), render_id="r2"
    )
    assert plain.ducking_depth is None
    plain_video = folder / "output" / "plain.mp4"
    under = rms_db(plain_video, start=Fraction(33, 10), end=Fraction(39, 10), band=music_band)
    between = rms_db(plain_video, start=Fraction(47, 10), end=Fraction(57, 10), band=music_band)
    assert abs(between - under) < 3.0


def soundtrack_of(folder: Path) -> Path:
    """The lossless soundtrack of the slideshow's one render (work/soundtracks/<key>/)."""
    (found,) = (folder / "work" / "soundtracks").glob("*/soundtrack.wav")
    return found


def test_a_caption_change_reuses_the_soundtrack_and_a_voice_change_does_not(tmp_path: Path) -> None:
    scenes = [{"images": ["i0.png"], "voiceover": "v.wav", "duration": 1.5, "caption": "one"}] * 2
    folder = slideshow(tmp_path, scenes)
    images(folder, 1)
    make_tone(folder / "voiceovers" / "v.wav", frequency=1000, seconds=1.0, volume_db=-10)
    make_tone(folder / "music" / "bed.wav", frequency=150, seconds=1.7, volume_db=-6)
    spec = replace(SPEC, music="bed.wav", ducking=True)
    first = render(folder, spec, Recorder(), render_id="r1")
    assert not first.reused_soundtrack
    before = pcm(soundtrack_of(folder), tmp_path)

    (folder / "scenes.json").write_text(json.dumps({"scenes": [scenes[0], {**scenes[1], "caption": "two"}]}))
    hooks = Recorder()
    second = render(folder, spec, hooks, render_id="r2")
    assert second.reused_soundtrack and any("soundtrack reused" in m for _, m in hooks.logs)
    assert pcm(soundtrack_of(folder), tmp_path) == before  # still the one soundtrack
    assert second.ducking_depth == first.ducking_depth and second.checks["ducking_depth"][0]

    make_tone(folder / "voiceovers" / "v.wav", frequency=700, seconds=1.0, volume_db=-10)
    third = render(folder, spec, Recorder(), render_id="r3")
    assert not third.reused_soundtrack
    assert len(list((folder / "work" / "soundtracks").glob("*/soundtrack.wav"))) == 2


def test_changing_one_scene_re_encodes_only_it_and_its_crossfades(tmp_path: Path) -> None:
    scenes = [{"images": [f"i{n % 3}.png"], "duration": 1.2} for n in range(4)]
    folder = slideshow(tmp_path, scenes)
    images(folder)
    first = render(folder, SPEC, Recorder(), render_id="r1")
    assert first.reused_scenes == [] and first.reused_segments == 0
    scenes[2] = {"images": ["i0.png"], "duration": 1.6, "caption": "changed"}
    (folder / "scenes.json").write_text(json.dumps({"scenes": scenes}))
    hooks = Recorder()
    second = render(folder, SPEC, hooks, render_id="r2")
    # Scene 3 (head, body, tail) and the crossfades 2->3 and 3->4 are new; the rest is reused.
    assert second.encoded_segments == 5
    assert second.reused_scenes == [0, 3]
    assert (2, "reused") not in hooks.scenes and (0, "reused") in hooks.scenes
    assert video_frames(folder / "output" / "video.mp4") == second.plan.total_frames == 30 + 30 + 40 + 30 - 3 * 5


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    folder = slideshow(tmp_path, [{"images": ["rotated.jpg"], "duration": 1.0, "motion": "none"}])
    source = Image.new("RGB", (320, 180), (20, 20, 200))
    for x in range(40):
        for y in range(40):
            source.putpixel((x, y), (255, 255, 255))
    exif = Image.Exif()
    exif[0x0112] = 3  # rotated 180 degrees: the white corner is bottom-right as seen
    (folder / "images").mkdir()
    source.save(folder / "images" / "rotated.jpg", exif=exif, quality=95)
    render(folder, SPEC, Recorder(), render_id="r1")
    frame = tmp_path / "frame.png"
    from media_pipeline.core import ffmpeg

    ffmpeg.run(["-i", str(folder / "output" / "video.mp4"), "-frames:v", "1"], frame)
    with Image.open(frame) as picture:
        rgb = picture.convert("RGB")
        assert min(rgb.getpixel((300, 165))) > 200  # white where the viewer sees it
        assert rgb.getpixel((10, 10))[2] > 150 and rgb.getpixel((10, 10))[0] < 100


def fake_engine(bin_dir: Path, name: str, log: Path, version: str, parse: str, hertz: int, samples: int) -> None:
    """A text-to-speech executable `name` on PATH: logs its arguments, answers `--version`, runs
    `parse` (which sets `out`, the WAV to write) and writes `samples` of a `hertz` tone at 22.05 kHz."""
    bin_dir.mkdir()
    script = bin_dir / name
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import argparse, math, os, struct, sys, wave\n"
        f"LOG = {str(log)!r}\n"
        "open(LOG, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
        "if '--version' in sys.argv:\n"
        f"    print({version!r}); sys.exit(0)\n"
        f"{parse}"
        "with wave.open(out, 'wb') as w:\n"
        "    w.setnchannels(1); w.setsampwidth(2); w.setframerate(22050)\n"
        f"    w.writeframes(b''.join(struct.pack('<h', int(8000 * math.sin(2 * math.pi * {hertz} * i / 22050)))"
        f" for i in range({samples})))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def fake_espeak(bin_dir: Path, log: Path) -> None:
    """An `espeak-ng` on PATH that writes a 0.8 s 440 Hz WAV with Python's wave module."""
    parse = "out = sys.argv[sys.argv.index('-w') + 1]\ntext = sys.stdin.read()\n"
    fake_engine(bin_dir, "espeak-ng", log, "eSpeak NG text-to-speech: 1.51-fake", parse, 440, 17640)


def test_tts_with_an_engine_on_path_is_synthesised_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "calls.log"
    fake_espeak(tmp_path / "bin", log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    folder = slideshow(tmp_path, [{"images": ["i0.png"], "text": "Hello there"}, {"images": ["i1.png"]}])
    images(folder, 2)
    spec = replace(SPEC, tts_engine="espeak-ng", tts_voice="en-us")
    result = render(folder, spec, Recorder(), render_id="r1")
    first = result.plan.scenes[0]
    assert (first.source, first.wanted, first.frames) == ("voiceover", 20, 25)  # 0.8 s at 25 fps, minShot 1.0
    synth_calls = [line for line in log.read_text().splitlines() if "-w" in line]
    assert len(synth_calls) == 1 and "-v en-us" in synth_calls[0]
    hooks = Recorder()
    render(folder, spec, hooks, render_id="r2")
    assert len([line for line in log.read_text().splitlines() if "-w" in line]) == 1  # cached
    assert any("reused from the cache" in message for _, message in hooks.logs)


def fake_piper(bin_dir: Path, log: Path) -> None:
    """A `piper` on PATH with piper's command line (`--model M --output_file F`, text on stdin)
    that writes a 1.2 s 330 Hz WAV, refusing a model file that does not exist as piper does."""
    parse = (
        "parser = argparse.ArgumentParser(); parser.add_argument('--model', '-m', required=True)\n"
        "parser.add_argument('--output_file', '-f', required=True); args = parser.parse_args()\n"
        "if not os.path.isfile(args.model):\n"
        "    sys.exit(f'Model not found: {args.model}')\n"
        "open(LOG, 'a').write('text: ' + sys.stdin.read() + '\\n')\n"
        "out = args.output_file\n"
    )
    fake_engine(bin_dir, "piper", log, "1.2.0-fake", parse, 330, 26460)


def test_piper_speaks_with_the_voice_model_and_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "calls.log"
    fake_piper(tmp_path / "bin", log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    model = tmp_path / "en_US-lessac-medium.onnx"
    model.write_bytes(b"onnx")
    folder = slideshow(tmp_path, [{"images": ["i0.png"], "text": "Welcome to the show"}, {"images": ["i1.png"]}])
    images(folder, 2)
    spec = replace(SPEC, tts_engine="piper", tts_voice=str(model))
    result = render(folder, spec, Recorder(), render_id="r1")
    first = result.plan.scenes[0]
    assert (first.source, first.wanted) == ("voiceover", 30)  # 1.2 s of speech at 25 fps
    calls = log.read_text().splitlines()
    assert f"--model {model} --output_file" in calls[-2] and calls[-1] == "text: Welcome to the show"
    before = len(calls)
    render(folder, spec, Recorder(), render_id="r2")
    assert len(log.read_text().splitlines()) == before  # cached: piper not run again

    # A voice model that is not there: the scene fails with piper's own words and what to check.
    with pytest.raises(RenderError, match=r"piper could not speak the text .*Model not found"):
        render(folder, replace(spec, tts_voice=str(tmp_path / "missing.onnx")), Recorder(), render_id="r3")


def test_tts_engine_missing_fails_validate_saying_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    folder = slideshow(tmp_path, [{"images": ["i0.png"], "text": "Hello"}])
    images(folder, 1)
    hooks = Recorder()
    with pytest.raises(RenderError, match=r"espeak-ng is not installed.*apt-get install espeak-ng"):
        render(folder, replace(SPEC, tts_engine="espeak-ng"), hooks, render_id="r1")
    assert hooks.stages == ["VALIDATE"]
    assert not (folder / "output").exists() and not (folder / "work").exists()


def test_bad_inputs_fail_validate_with_sentences_and_write_nothing(tmp_path: Path) -> None:
    folder = slideshow(
        tmp_path,
        [{"images": ["missing.png"]}, {"images": ["broken.jpg"], "voiceover": "gone.wav"}, {"images": ["huge.png"]}],
    )
    (folder / "images").mkdir()
    (folder / "images" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    Image.new("L", (4000, 3000)).save(folder / "images" / "huge.png")
    with pytest.raises(RenderError) as raised:
        render(folder, replace(SPEC, max_pixels=10_000_000, music="nope.mp3", xfade=0.6), Recorder(), render_id="r1")
    problems = raised.value.problems
    assert any("missing.png was not uploaded" in p for p in problems)
    assert any("broken.jpg is not a readable image" in p for p in problems)
    assert any("voiceover gone.wav was not uploaded" in p for p in problems)
    assert any("huge.png is 4000x3000, over the limit of 10000000 pixels" in p for p in problems)
    assert any("music nope.mp3 was not uploaded" in p for p in problems)
    assert any("xfade (0.6 s) must be at most half of minShot" in p for p in problems)
    assert all(str(tmp_path) not in p for p in problems)
    assert not (folder / "output").exists()


def test_voice_longer_than_its_scene_is_faded_with_a_warning(tmp_path: Path) -> None:
    folder = slideshow(tmp_path, [{"images": ["i0.png"], "voiceover": "long.wav"}])
    images(folder, 1)
    make_tone(folder / "voiceovers" / "long.wav", frequency=1000, seconds=4.0)
    hooks = Recorder()
    result = render(folder, SPEC, hooks, render_id="r1")
    assert result.plan.scenes[0].clamped and result.plan.scenes[0].frames == 75  # maxShot 3.0
    assert any(level == "warning" and "faded out at the scene's end" in m for level, m in hooks.logs)
    lossless = pcm(soundtrack_of(folder), tmp_path)
    assert len(lossless) == 3 * 48000
    assert max(abs(s) for s in lossless[-200:]) < max(abs(s) for s in lossless[48000:48200]) / 10


def test_one_1080p_render_has_the_delivery_format(tmp_path: Path) -> None:
    folder = slideshow(tmp_path, [{"images": ["i0.png"], "duration": 1.0}, {"images": ["i1.png"], "duration": 1.0}])
    images(folder, 2)
    make_tone(folder / "music" / "bed.m4a", frequency=300, seconds=0.7)
    spec = replace(SPEC, width=1920, height=1080, rate=Fraction(30), music="bed.m4a", preset="ultrafast")
    result = render(folder, spec, Recorder(), render_id="r1")
    video = folder / "output" / "video.mp4"
    info = probe(video)
    assert (info.width, info.height, info.codec) == (1920, 1080, "h264") and info.has_audio
    head = video.read_bytes()[:4096]
    assert head.find(b"moov") < head.find(b"mdat") or b"mdat" not in head  # +faststart: the index comes first
    assert result.frames == 60 - 6 and all(ok for ok, _ in result.checks.values())
