"""Image edits with Pillow: each op on the picture as the previous op left it.

Rules a client can check on pixels: crop is the array slice [y:y+height, x:x+width]; resize
sizes are exact (a missing side is round(other x shape), at least 1); opacity multiplies alpha
by the value, rounding half up; color applies ImageEnhance Brightness, Contrast, Color (in
that order) to the RGB channels, alpha untouched. The output format is the `format` op's, else
the source's (PNG for formats Pillow cannot write back losslessly).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageColor, ImageDraw, ImageEnhance, ImageFont, ImageOps

from media_pipeline.library.recipes import Color, Crop, Format, Opacity, OpRefused, Resize, Text

SAVE_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
SOURCE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp"}


@dataclass(frozen=True)
class Rendered:
    data: bytes
    format: str  # png | jpeg | webp
    width: int
    height: int


def output_format(ops: list[Any], source_content_type: str) -> Format:
    for op in ops:
        if isinstance(op, Format):
            return op
    fmt = SOURCE_FORMATS.get(source_content_type, "png")
    return Format(op="format", format=fmt)  # type: ignore[arg-type]


def _crop(image: Image.Image, op: Crop, field: str) -> Image.Image:
    if op.x + op.width > image.width:
        raise OpRefused(f"{field}.width", f"x + width = {op.x + op.width} is past the picture's width ({image.width})")
    if op.y + op.height > image.height:
        raise OpRefused(
            f"{field}.height", f"y + height = {op.y + op.height} is past the picture's height ({image.height})"
        )
    return image.crop((op.x, op.y, op.x + op.width, op.y + op.height))


def resized_size(width: int, height: int, op: Resize) -> tuple[int, int]:
    """The size `op` gives a width x height picture (for contain; cover and fill give the box)."""
    if op.width is not None and op.height is None:
        return op.width, max(1, round(height * op.width / width))
    if op.height is not None and op.width is None:
        return max(1, round(width * op.height / height)), op.height
    assert op.width is not None and op.height is not None
    if op.fit in ("fill", "cover"):
        return op.width, op.height
    scale = min(op.width / width, op.height / height)
    return max(1, min(op.width, round(width * scale))), max(1, min(op.height, round(height * scale)))


def _resize(image: Image.Image, op: Resize, field: str, max_pixels: int) -> Image.Image:
    size = resized_size(image.width, image.height, op)
    if size[0] * size[1] > max_pixels:
        raise OpRefused(
            f"{field}.width",
            f"the resize makes {size[0]}x{size[1]}, more pixels than the library accepts ({max_pixels}, "
            "MEDIA_PIPELINE_LIBRARY_MAX_PIXELS)",
        )
    if op.width is not None and op.height is not None and op.fit == "cover":
        return ImageOps.fit(image, size, method=Image.Resampling.LANCZOS)
    return image.resize(size, Image.Resampling.LANCZOS)


def _with_alpha(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGBA" else image.convert("RGBA")


def _opacity(image: Image.Image, op: Opacity) -> Image.Image:
    image = _with_alpha(image)
    alpha = image.getchannel("A").point([int(a * op.value + 0.5) for a in range(256)])
    image.putalpha(alpha)
    return image


def _color(image: Image.Image, op: Color) -> Image.Image:
    alpha = image.getchannel("A") if image.mode in ("RGBA", "LA") else None
    rgb = image.convert("RGB")
    for enhancer, factor in ((ImageEnhance.Brightness, op.brightness), (ImageEnhance.Contrast, op.contrast),
                             (ImageEnhance.Color, op.saturation)):  # fmt: skip
        if factor != 1.0:
            rgb = enhancer(rgb).enhance(factor)
    if op.grayscale:
        rgb = rgb.convert("L").convert("RGB")
    if alpha is not None:
        rgb.putalpha(alpha)
    return rgb


def _text(image: Image.Image, op: Text) -> Image.Image:
    font = ImageFont.load_default(size=op.size)
    # The text is drawn on its own layer, so a translucent colour blends instead of replacing pixels.
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    ImageDraw.Draw(layer).multiline_text((op.x, op.y), op.text, font=font, fill=ImageColor.getrgb(op.color))
    composed = Image.alpha_composite(image.convert("RGBA"), layer)
    return composed if image.mode in ("RGBA", "LA") else composed.convert("RGB")


def apply(image: Image.Image, ops: list[Any], *, prefix: str = "ops", max_pixels: int = 50_000_000) -> Image.Image:
    """The picture after every op but `format` (OpRefused for a crop outside the picture)."""
    image.load()
    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA" if "A" in image.getbands() or image.mode == "P" else "RGB")
    for number, op in enumerate(ops):
        field = f"{prefix}.{number}"
        if isinstance(op, Crop):
            image = _crop(image, op, field)
        elif isinstance(op, Resize):
            image = _resize(image, op, field, max_pixels)
        elif isinstance(op, Opacity):
            image = _opacity(image, op)
        elif isinstance(op, Color):
            image = _color(image, op)
        elif isinstance(op, Text):
            image = _text(image, op)
    return image


def encode(image: Image.Image, fmt: Format) -> Rendered:
    buffer = io.BytesIO()
    target = fmt.format
    if target == "jpeg" and image.mode not in ("RGB", "L"):
        # JPEG has no alpha: flattened on white, as a viewer would show it.
        background = Image.new("RGB", image.size, "white")
        background.paste(image, mask=image.getchannel("A") if "A" in image.getbands() else None)
        image = background
    options: dict[str, Any] = {}
    if target in ("jpeg", "webp"):
        options["quality"] = fmt.quality
    if target == "png":
        options["compress_level"] = 1  # fast: the bytes are stored once and served many times
    image.save(buffer, SAVE_FORMATS[target], **options)
    return Rendered(buffer.getvalue(), target, image.width, image.height)


def render(source: Image.Image, ops: list[Any], source_content_type: str, max_pixels: int = 50_000_000) -> Rendered:
    return encode(apply(source, ops, max_pixels=max_pixels), output_format(ops, source_content_type))
