"""Frame rates and SMPTE timecode, exact: 23.976 is 24000/1001, 29.97 DF counts drop-frame.

Timecode counts frames at the rate's nominal whole fps (23.976 counts 24 a second). Drop-frame
exists only at 29.97 and 59.94 and is written with `;` before the frames; its maths (frame
numbers skipped at each minute but every tenth) is OTIO's, not ours.
"""

from __future__ import annotations

from fractions import Fraction

import opentimelineio as otio

from media_pipeline.core.ffmpeg import exact_rate

DROP_FRAME_RATES = frozenset({Fraction(30000, 1001), Fraction(60000, 1001)})
MAX_RATE = 1000


class RateError(ValueError):
    """A frame rate given by a user is not one; the message says what to give instead."""


def parse_rate(value: float | int | str | Fraction) -> Fraction:
    """A user's frame rate: 25, 23.976, "29.97" or "30000/1001", as an exact rational."""
    text = str(value).strip()
    try:
        rate = exact_rate(text if not isinstance(value, Fraction) else value)
    except (ValueError, ZeroDivisionError):
        raise RateError(f"frame rate {text!r} is not a number: give it as 25, 23.976, 29.97 or 24000/1001") from None
    if not 0 < rate <= MAX_RATE:
        raise RateError(f"frame rate {text!r} is out of range: it must be above 0 and at most {MAX_RATE} fps")
    return rate


def rate_text(rate: Fraction) -> str:
    """How rates are stored and shown to programs: "24", "24000/1001"."""
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"


def rate_label(rate: Fraction) -> str:
    """How rates are shown to people: "24", "23.976", "29.97"."""
    return f"{float(rate):.3f}".rstrip("0").rstrip(".")


def nominal_fps(rate: Fraction) -> int:
    return max(1, round(rate))


def is_drop_frame(text: str) -> bool:
    """Timecode written as drop-frame: `;` (or `.`, as some tools write it) before the frames."""
    return len(text) >= 3 and text[-3] in ";."


def to_timecode(frame: int, rate: Fraction, drop_frame: bool = False) -> str:
    """The timecode of frame number `frame` (frames since 00:00:00:00) at `rate`."""
    sign, frames = ("-", -frame) if frame < 0 else ("", frame)
    if drop_frame and rate in DROP_FRAME_RATES:
        seconds = float(rate)
        return sign + otio.opentime.to_timecode(otio.opentime.RationalTime(frames, seconds), seconds, True)
    fps = nominal_fps(rate)
    whole_seconds, ff = divmod(frames, fps)
    minutes, ss = divmod(whole_seconds, 60)
    hh, mm = divmod(minutes, 60)
    return f"{sign}{hh:02d}:{mm:02d}:{ss:02d}:{ff:02d}"


def from_timecode(text: str, rate: Fraction) -> int:
    """The frame number of a timecode at `rate`; drop-frame when written with `;`."""
    text = text.strip()
    if is_drop_frame(text) and rate in DROP_FRAME_RATES:
        return round(otio.opentime.from_timecode(text[:-3] + ";" + text[-2:], float(rate)).value)
    try:
        hh, mm, ss, ff = (int(part) for part in text.replace(";", ":").replace(".", ":").split(":"))
    except ValueError:
        raise RateError(f"{text!r} is not a timecode (HH:MM:SS:FF)") from None
    fps = nominal_fps(rate)
    if ff >= fps or ss >= 60 or mm >= 60:
        raise RateError(f"timecode {text} does not fit {rate_label(rate)} fps (frames go up to {fps - 1})")
    return ((hh * 60 + mm) * 60 + ss) * fps + ff
