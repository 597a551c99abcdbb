"""The soundtrack: voiceovers placed to the sample, crossfaded, over a looped, ducked music bed,
brought to a loudness target.

Each scene's voice starts at the sample where the scene's first frame begins and is never
stretched; a voice longer than its scene is faded out over its scene's last samples. Scene
tracks overlap by the crossfade like the pictures (the outgoing one fades out, the incoming one
starts at full level so its first word is not softened). Ducking is ffmpeg's
`sidechaincompress` keyed on the voice with look-ahead: the key is the voice advanced by
`LOOKAHEAD_SECONDS`, so the music is already down when a phrase begins.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from media_pipeline.core import ffmpeg
from media_pipeline.core.audio import SAMPLE_RATE, Loudness, measure_loudness
from media_pipeline.slideshows.plan import FramePlan

LOOKAHEAD_SECONDS = Fraction(1, 10)
# The music bed before the mix, relative to its own level; the loudness target sets the final level.
MUSIC_GAIN_DB = -10
MUSIC_FADE_SECONDS = Fraction(2)
VOICE_FADE_SECONDS = Fraction(3, 10)
TRUE_PEAK_CEILING = -1.5  # a margin under -1 dBTP for the AAC encode
# Sidechain settings that hold the music >= 10 dB down under speech (measured by a test).
DUCK = "threshold=0.01:ratio=20:attack=5:release=250:level_sc=4:makeup=1"


@dataclass(frozen=True)
class VoiceClip:
    path: Path  # 48 kHz stereo WAV
    samples: int


@dataclass(frozen=True)
class MixResult:
    path: Path
    before: Loudness | None  # None: silent (no voice and no music)
    warnings: list[str]


def scene_samples(plan: FramePlan) -> list[tuple[int, int]]:
    """(first, end) sample of each scene in the output."""
    return [(plan.sample(s.start), plan.sample(s.end)) for s in plan.scenes]


def _voice_graph(plan: FramePlan, voices: list[VoiceClip | None], args: list[str]) -> tuple[list[str], list[str]]:
    chains: list[str] = []
    warnings: list[str] = []
    spans = scene_samples(plan)
    labels = []
    for index, ((start, end), voice) in enumerate(zip(spans, voices, strict=True)):
        length = end - start
        label = f"s{index}"
        if voice is None:
            chains.append(f"anullsrc=r={SAMPLE_RATE}:cl=stereo,atrim=end_sample={length}[{label}]")
        else:
            number = len(args) // 2
            args += ["-i", str(voice.path)]
            chain = f"[{number}:a]aformat=sample_fmts=fltp:sample_rates={SAMPLE_RATE}:channel_layouts=stereo"
            if voice.samples > length:
                fade = min(length, round(VOICE_FADE_SECONDS * SAMPLE_RATE))
                chain += f",atrim=end_sample={length},afade=t=out:start_sample={length - fade}:nb_samples={fade}"
                warnings.append(
                    f"scene {index + 1}: the voiceover lasts {voice.samples / SAMPLE_RATE:.3f} s, longer than the "
                    f"scene ({length / SAMPLE_RATE:.3f} s); it is faded out at the scene's end (raise maxShot or "
                    "set the scene's duration to hear all of it)"
                )
            chains.append(f"{chain},apad=whole_len={length}[{label}]")
        labels.append(label)
    current = labels[0]
    for index in range(1, len(labels)):
        overlap = spans[index - 1][1] - spans[index][0]
        out = f"j{index}"
        if overlap > 0:
            chains.append(f"[{current}][{labels[index]}]acrossfade=ns={overlap}:c1=tri:c2=nofade[{out}]")
        else:
            chains.append(f"[{current}][{labels[index]}]concat=n=2:v=0:a=1[{out}]")
        current = out
    chains.append(f"[{current}]apad=whole_len={plan.total_samples},atrim=end_sample={plan.total_samples}[voice]")
    return chains, warnings


def mix(
    plan: FramePlan,
    voices: list[VoiceClip | None],
    music: Path | None,
    *,
    ducking: bool,
    output: Path,
    beds: tuple[Path, Path] | None = None,
) -> tuple[list[str], bool]:
    """Write the raw mix (48 kHz stereo float WAV of exactly the video's samples) to `output`,
    and with ducking the music bed ducked and dry to `beds` (to measure the ducking on).

    Returns the warnings and whether anything is audible at all.
    """
    total = plan.total_samples
    args: list[str] = []
    chains, warnings = _voice_graph(plan, voices, args)
    has_voice = any(v is not None for v in voices)
    if music is not None:
        number = len(args) // 2  # every earlier input is one "-i PATH" pair
        args += ["-stream_loop", "-1", "-i", str(music)]
        fade = min(round(MUSIC_FADE_SECONDS * SAMPLE_RATE), total // 4)
        chains.append(
            f"[{number}:a]aformat=sample_fmts=fltp:sample_rates={SAMPLE_RATE}:channel_layouts=stereo,"
            f"atrim=end_sample={total},afade=t=in:nb_samples={max(fade, 1)},"
            f"afade=t=out:start_sample={total - fade}:nb_samples={max(fade, 1)},volume={MUSIC_GAIN_DB}dB[music]"
        )
        if ducking and has_voice:
            lead = round(LOOKAHEAD_SECONDS * SAMPLE_RATE)
            chains.append("[voice]asplit=2[vmix][vkey]")
            chains.append(f"[vkey]atrim=start_sample={lead},asetpts=PTS-STARTPTS,apad=whole_len={total}[key]")
            chains.append("[music]asplit=2[mkey][mdry]")
            chains.append(f"[mkey][key]sidechaincompress={DUCK},asplit=2[bed][bedout]")
            chains.append("[vmix][bed]amix=inputs=2:duration=first:normalize=0[mix]")
        else:
            chains.append("[voice][music]amix=inputs=2:duration=first:normalize=0[mix]")
    else:
        chains.append("[voice]anull[mix]")
    chains[-1] = chains[-1][: -len("[mix]")] + f",atrim=end_sample={total}[mix]"
    args += ["-filter_complex", ";".join(chains)]
    if ducking and has_voice and music is not None:
        for label, path in zip(("[bedout]", "[mdry]"), beds or (), strict=True):
            path.parent.mkdir(parents=True, exist_ok=True)
            args += ["-map", label, "-c:a", "pcm_f32le", "-f", "wav", str(path)]
    args += ["-map", "[mix]", "-c:a", "pcm_f32le", "-f", "wav"]
    ffmpeg.run(args, output, what="mixing the soundtrack", timeout=3600)
    return warnings, has_voice or music is not None


def normalise(raw: Path, output: Path, *, target: float, samples: int) -> Loudness:
    """Two-pass loudnorm (linear when it can be): measure `raw`, then bring it to `target` LUFS
    with the true peak under the ceiling. Returns the first pass's measurement."""
    before = measure_loudness(raw, target=target, true_peak=TRUE_PEAK_CEILING)
    norm = (
        f"loudnorm=I={target}:TP={TRUE_PEAK_CEILING}:LRA=20:measured_I={before.integrated}"
        f":measured_TP={before.true_peak}:measured_LRA={before.lra}:measured_thresh={before.threshold}:linear=true"
    )
    # loudnorm works at 192 kHz; back to 48 kHz, and exactly as many samples as went in.
    ffmpeg.run(
        [
            "-i",
            str(raw),
            "-af",
            f"{norm},aresample={SAMPLE_RATE},apad=whole_len={samples},atrim=end_sample={samples}",
            "-c:a",
            "pcm_s16le",
            "-f",
            "wav",
        ],
        output,
        what="bringing the soundtrack to its loudness target",
        timeout=3600,
    )
    return before
