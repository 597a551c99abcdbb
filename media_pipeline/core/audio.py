"""Audio measurements on real files: loudness (EBU R128 through loudnorm), band levels, lengths."""

from __future__ import annotations

import json
import math
import re
import wave
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from media_pipeline.core import ffmpeg

SAMPLE_RATE = 48000


def frame_to_sample(frame: int, rate: Fraction, sample_rate: int = SAMPLE_RATE) -> int:
    """The audio sample at which `frame` begins (nearest sample; exact at 25 and 30 fps)."""
    return math.floor(Fraction(frame) * sample_rate / rate + Fraction(1, 2))


@dataclass(frozen=True)
class Loudness:
    integrated: float  # LUFS
    true_peak: float  # dBTP
    lra: float  # LU
    threshold: float  # the gating threshold loudnorm's second pass needs

    @property
    def silent(self) -> bool:
        return not math.isfinite(self.integrated) or self.integrated < -70


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:  # "-inf" for silence is a float; anything else is not a measurement
        return float("-inf")


def measure_loudness(path: Path, *, target: float = -16.0, true_peak: float = -1.5) -> Loudness:
    """Integrated loudness and true peak of `path`'s first audio stream (loudnorm's first pass)."""
    report = ffmpeg.analyse(
        ["-i", str(path), "-map", "0:a:0", "-af", f"loudnorm=I={target}:TP={true_peak}:print_format=json",
         "-f", "null", "-"],
        what=f"measuring the loudness of {path.name}",
    )  # fmt: skip
    start = report.rfind("{")
    end = report.rfind("}")
    if start < 0 or end < start:
        raise ffmpeg.FFmpegError(f"could not measure the loudness of {path.name}", report[-400:])
    data = json.loads(report[start : end + 1])
    return Loudness(
        integrated=_number(data["input_i"]),
        true_peak=_number(data["input_tp"]),
        lra=_number(data["input_lra"]),
        threshold=_number(data["input_thresh"]),
    )


_RMS = re.compile(r"RMS level dB:\s*(-?[\d.]+|-inf)")


def rms_db(path: Path, *, start: Fraction, end: Fraction, band: str = "") -> float:
    """RMS level (dBFS) of `path`'s audio between `start` and `end` seconds, after an optional
    fixed filter chain such as `lowpass=f=300` (to look at one frequency band)."""
    chain = f"{band}," if band else ""
    report = ffmpeg.analyse(
        ["-i", str(path), "-map", "0:a:0", "-af",
         f"atrim=start={float(start):.6f}:end={float(end):.6f},{chain}pan=mono|c0=c0,astats=measure_overall=RMS_level",
         "-f", "null", "-"],
        what=f"measuring the level of {path.name}",
    )  # fmt: skip
    levels = _RMS.findall(report)
    if not levels:
        raise ffmpeg.FFmpegError(f"could not measure the level of {path.name}", report[-400:])
    return _number(levels[-1])


def wav_samples(path: Path) -> int:
    """Exact length in samples of a PCM WAV file."""
    with wave.open(str(path), "rb") as handle:
        return handle.getnframes()


def to_wav(source: Path, target: Path, *, what: str) -> None:
    """Decode any audio file to 48 kHz stereo 16-bit PCM, the format every mix step reads."""
    ffmpeg.run(
        ["-i", str(source), "-map", "0:a:0", "-vn", "-ac", "2", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le",
         "-f", "wav"],
        target,
        what=what,
        timeout=600,
    )  # fmt: skip


def check_audio(path: Path) -> None:
    """MediaError with a sentence unless `path` holds an audio stream ffmpeg can decode."""
    try:
        ffmpeg.analyse(
            ["-i", str(path), "-map", "0:a:0", "-t", "1", "-f", "null", "-"], what=f"reading {path.name}", timeout=60
        )
    except ffmpeg.FFmpegError as exc:
        raise ffmpeg.MediaError(
            f"{path.name} is not readable audio (no audio stream ffmpeg can decode); re-export it as WAV, MP3 or AAC"
        ) from exc
