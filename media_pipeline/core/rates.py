"""Exact rational frame rates: 23.976 is 24000/1001, never a float."""

from __future__ import annotations

import math
from fractions import Fraction

# Rates that editorial tools write as rounded decimals; containers with millisecond clocks
# (Matroska) state them inexactly too.
NTSC_RATES = (Fraction(24000, 1001), Fraction(30000, 1001), Fraction(48000, 1001), Fraction(60000, 1001))


def exact_rate(rate: float | str | Fraction) -> Fraction:
    """The exact rational rate behind a decimal one: 23.976 -> 24000/1001, 25 -> 25."""
    value = Fraction(str(rate)) if not isinstance(rate, Fraction) else rate
    for ntsc in NTSC_RATES:
        if abs(value - ntsc) < Fraction(6, 1000):
            return ntsc
    return value.limit_denominator(1001)


def rate_arg(rate: Fraction) -> str:
    """A rate as ffmpeg reads it exactly: "24000/1001"."""
    return f"{rate.numerator}/{rate.denominator}"


def seconds_to_frames(seconds: float | Fraction, rate: Fraction) -> int:
    """Whole frames for a duration in seconds: `floor(seconds * rate + 1/2)` (nearest frame,
    halves up), with the seconds read exactly as written (2.5 is 5/2, not a float)."""
    exact = Fraction(str(seconds)) if isinstance(seconds, float) else Fraction(seconds)
    return math.floor(exact * rate + Fraction(1, 2))
