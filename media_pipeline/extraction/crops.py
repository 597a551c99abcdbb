"""Crop boxes: given, centred to an aspect ratio, or found by removing black borders."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np
from PIL import Image

from media_pipeline.extraction.request import AspectCrop, CropBox, CropSpec, aspect_ratio

# A row or column whose mean luma (0..255, full range) is at most this is border, as ffmpeg's
# cropdetect decides (its default limit is 24 of 255).
BLACK_LIMIT = 24


class CropError(ValueError):
    """The crop asked for does not fit the video; the item fails with this sentence."""


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    width: int
    height: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def pillow(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.x + self.width, self.y + self.height)


def box_for(spec: CropSpec, image: Image.Image) -> Box:
    width, height = image.size
    if spec is None:
        return Box(0, 0, width, height)
    if isinstance(spec, CropBox):
        if spec.x + spec.width > width or spec.y + spec.height > height:
            raise CropError(
                f"the crop box {spec.width}x{spec.height} at ({spec.x}, {spec.y}) does not fit in the "
                f"{width}x{height} frame; make x + width <= {width} and y + height <= {height}"
            )
        return Box(spec.x, spec.y, spec.width, spec.height)
    if isinstance(spec, AspectCrop):
        return centred(aspect_ratio(spec.aspect), width, height)
    return without_black_borders(image)


def centred(aspect: Fraction, width: int, height: int) -> Box:
    """The largest box of `aspect` (width / height) centred in the frame, in whole pixels."""
    if width * aspect.denominator >= height * aspect.numerator:  # the frame is wider: full height
        box_w, box_h = height * aspect.numerator // aspect.denominator, height
    else:
        box_w, box_h = width, width * aspect.denominator // aspect.numerator
    box_w, box_h = max(1, box_w), max(1, box_h)
    return Box((width - box_w) // 2, (height - box_h) // 2, box_w, box_h)


def without_black_borders(image: Image.Image) -> Box:
    """The frame minus black bars at its edges (letterbox, pillarbox); a black frame is kept whole."""
    luma = np.asarray(image.convert("L"), dtype=np.float32)
    rows = np.flatnonzero(luma.mean(axis=1) > BLACK_LIMIT)
    cols = np.flatnonzero(luma.mean(axis=0) > BLACK_LIMIT)
    if rows.size == 0 or cols.size == 0:
        return Box(0, 0, image.width, image.height)
    top, bottom, left, right = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
    return Box(left, top, right - left + 1, bottom - top + 1)
