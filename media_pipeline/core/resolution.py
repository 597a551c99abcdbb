"""Output picture sizes: `WIDTHxHEIGHT` text, one rule and one sentence for every area.

H.264 in 4:2:0 halves the colour resolution, so both sides must be even. How large an area lets
an output be is the area's call (a supersampled still costs more than a plain encode); the
smallest and the shape of the sentence are the same everywhere.
"""

from __future__ import annotations

import re

SMALLEST = 16
LARGEST = (7680, 4320)  # 8K UHD: the largest H.264 level 6.2 frame this project encodes
_TEXT = re.compile(r"^(\d{1,5})x(\d{1,5})$")


def check_size(width: int, height: int, largest: tuple[int, int] = LARGEST) -> None:
    """Raise ValueError with the sentence when a size is odd, too small or larger than `largest`."""
    most_wide, most_high = largest
    if not (SMALLEST <= width <= most_wide and SMALLEST <= height <= most_high):
        raise ValueError(
            f"resolution must be between {SMALLEST}x{SMALLEST} and {most_wide}x{most_high}, not {width}x{height}"
        )
    if width % 2 or height % 2:
        raise ValueError(
            f"resolution must be even in width and height (H.264 halves the colour resolution), not {width}x{height}"
        )


def parse_resolution(text: str, largest: tuple[int, int] = LARGEST) -> tuple[int, int]:
    """`"1920x1080"` as (1920, 1080), checked by `check_size`."""
    match = _TEXT.match(text)
    if match is None:
        raise ValueError(f"resolution must be WIDTHxHEIGHT in pixels, like 1920x1080, not {text!r}")
    width, height = int(match[1]), int(match[2])
    check_size(width, height, largest)
    return width, height
