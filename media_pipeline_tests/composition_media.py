"""Library media for composition tests below the API: real files stored by the library's own
store (content-addressed in an artifact root) and described as the library describes them."""

from __future__ import annotations

import shutil
import uuid
from fractions import Fraction
from pathlib import Path

from PIL import Image

from media_pipeline.compositions.generators.base import InputMedia
from media_pipeline.library.media import Limits, examine
from media_pipeline.library.store import LibraryStore
from media_pipeline.resources import ArtifactStore


def library(root: Path) -> LibraryStore:
    return LibraryStore(ArtifactStore(root=str(root)))


def stored(root: Path, source: Path, media_id: int) -> InputMedia:
    """`source` put into the library under `root` as item `media_id` (the source file stays)."""
    probed = examine(source, source.name, Limits(max_pixels=50_000_000, max_duration=3600))
    copy = root / "incoming" / f"{uuid.uuid4().hex}{source.suffix}"
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, copy)
    sha256, _, key = library(root).put_file(copy)
    return InputMedia(
        id=media_id, type="video" if probed.type == "video" else "image", sha256=sha256, storage_key=key,
        width=probed.width, height=probed.height, rate=Fraction(probed.rate) if probed.rate else None,
        frame_count=probed.frame_count, has_audio=probed.has_audio,
    )  # fmt: skip


QUADRANTS = {(0, 0): (255, 0, 0), (1, 0): (0, 255, 0), (0, 1): (0, 0, 255), (1, 1): (255, 255, 255)}


def quadrants(path: Path, size: tuple[int, int] = (320, 180)) -> Path:
    """Red top left, green top right, blue bottom left, white bottom right."""
    width, height = size
    image = Image.new("RGB", size)
    for (x, y), colour in QUADRANTS.items():
        image.paste(colour, (x * width // 2, y * height // 2, (x + 1) * width // 2, (y + 1) * height // 2))
    image.save(path)
    return path
