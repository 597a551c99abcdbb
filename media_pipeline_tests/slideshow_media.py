"""Small generated media for the slideshow tests: coloured images and sine tones (real files)."""

from __future__ import annotations

import array
import json
from pathlib import Path

from PIL import Image

from media_pipeline.core import ffmpeg

COLOURS = [(220, 40, 40), (40, 200, 60), (40, 60, 220), (230, 200, 30), (200, 40, 200), (30, 200, 200)]


def make_image(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (320, 180), **save: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, colour)
    # A white block in the top-left corner shows where "up" is after orientation.
    for x in range(size[0] // 8):
        for y in range(size[1] // 8):
            image.putpixel((x, y), (255, 255, 255))
    image.save(path, **save)  # type: ignore[arg-type]
    return path


def make_tone(path: Path, *, frequency: int, seconds: float, volume_db: float = -12.0, rate: int = 48000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ffmpeg.run(
        ["-f", "lavfi", "-i", f"sine=frequency={frequency}:sample_rate={rate}:duration={seconds}",
         "-af", f"volume={volume_db}dB", "-ac", "1", "-c:a", "pcm_s16le" if path.suffix == ".wav" else "aac"],
        path,
    )  # fmt: skip
    return path


def slideshow(root: Path, scenes: list[dict[str, object]]) -> Path:
    folder = root / "slideshows" / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scenes.json").write_text(json.dumps({"scenes": scenes}))
    return folder


def pcm(path: Path, work: Path) -> array.array:
    """The first audio stream of `path` as mono 16-bit samples at 48 kHz."""
    raw = work / f"{path.stem}.pcm"
    ffmpeg.run(["-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", "48000", "-f", "s16le"], raw)
    samples = array.array("h")
    samples.frombytes(raw.read_bytes())
    return samples


def first_above(samples: array.array, threshold: int, start: int = 0) -> int:
    return next(i for i in range(start, len(samples)) if abs(samples[i]) > threshold)


def video_frames(path: Path) -> int:
    frames: list[ffmpeg.Progress] = []
    ffmpeg.run(["-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "null", "-"], on_progress=frames.append)
    return frames[-1].frame
