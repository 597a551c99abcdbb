"""The built-in local generator: pictures drawn by ffmpeg's own sources, no provider, no key.

Sources: `testsrc2` (a moving test pattern), `color` (a flat field), `gradients` (moving colour
gradients), `mandelbrot` (a zooming fractal) and `title` (the prompt's text on a colour field,
passed to drawtext by file, never inside the filter graph). The seed picks what the source
leaves open (the colour, the gradient's colours and motion, the fractal's centre), so the same
segment with the same seed draws the same frames, and a new seed draws different ones.
"""

from __future__ import annotations

import random
import threading
import uuid
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from media_pipeline.compositions.generators.base import (
    Capabilities,
    GenerationRequest,
    Generator,
    GeneratorError,
    TaskState,
)
from media_pipeline.core import ffmpeg
from media_pipeline.core.files import atomic_path

Colour = Field(default=None, pattern=r"^#[0-9A-Fa-f]{6}$", description="#RRGGBB; unset: drawn from the seed")
# Centres of the fractal worth zooming into; the seed picks one and a small offset.
_FRACTAL_CENTRES = ((-0.743643887037151, 0.13182590420533), (-0.7453, 0.1127), (-1.25066, 0.02012), (-0.16, 1.0405))


class LocalParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Literal["testsrc2", "color", "gradients", "mandelbrot", "title"] = Field(
        default="testsrc2", description="What to draw; `title` writes the prompt's text"
    )
    color: str | None = Colour
    text_color: str | None = Field(default=None, pattern=r"^#[0-9A-Fa-f]{6}$", description="`title`: #RRGGBB")
    speed: float = Field(default=0.01, ge=0, le=1, description="`gradients`: how fast the colours move")


def _hex(rng: random.Random) -> str:
    return "0x" + "".join(f"{rng.randrange(40, 216):02x}" for _ in range(3))


def _colour(value: str | None, rng: random.Random) -> str:
    return "0x" + value[1:] if value else _hex(rng)


class FFmpegGenerator(Generator):
    """A generator that draws its clip with one local ffmpeg command: no provider, no key; the task
    is finished once submitted (drawing is local, so it happens in `submit`)."""

    capabilities = Capabilities(pool="ffmpeg")
    poll_seconds = 0.0

    def __init__(self) -> None:
        self._done: dict[str, Path] = {}
        self._lock = threading.Lock()

    def args(self, request: GenerationRequest, text_file: Path) -> list[str]:
        """ffmpeg's arguments (the output is appended); `text_file` is free for text a filter reads."""
        raise NotImplementedError

    def what(self, request: GenerationRequest) -> str:
        return f"the {self.id} generator"

    def submit(self, request: GenerationRequest) -> str:
        task_id = f"{self.id}-{uuid.uuid4().hex[:12]}"
        target = request.workdir / f"{task_id}.mp4"
        args = self.args(request, request.workdir / f"{task_id}.txt")
        try:
            ffmpeg.run(args, target, what=self.what(request), timeout=3600)
        except ffmpeg.FFmpegError as exc:
            raise GeneratorError(f"the {self.id} generator failed: {exc.summary}") from exc
        with self._lock:
            self._done[task_id] = target
        return task_id

    def poll(self, task_id: str) -> TaskState:
        with self._lock:
            return TaskState("SUCCEEDED", 1.0) if task_id in self._done else TaskState("FAILED", error="unknown task")

    def fetch(self, task_id: str, target: Path) -> None:
        with self._lock:
            source = self._done.pop(task_id)
        source.replace(target)


class LocalGenerator(FFmpegGenerator):
    id = "local"
    version = "1"
    description = "Test patterns, colour fields, gradients, fractals and title cards drawn by ffmpeg."
    params_model = LocalParams

    def what(self, request: GenerationRequest) -> str:
        return f"the local generator ({request.params.get('source')})"

    def args(self, request: GenerationRequest, text_file: Path) -> list[str]:
        params = LocalParams.model_validate(request.params)
        rng = random.Random(request.seed)
        size = f"{request.width}x{request.height}"
        rate = ffmpeg.rate_arg(request.rate)
        chain = ""
        if params.source == "testsrc2":
            source = f"testsrc2=s={size}:r={rate}"
        elif params.source == "color":
            source = f"color=c={_colour(params.color, rng)}:s={size}:r={rate}"
        elif params.source == "gradients":
            colours = ":".join(f"c{n}={_hex(rng)}" for n in range(3))
            source = (
                f"gradients=s={size}:r={rate}:{colours}:nb_colors=3:seed={rng.randrange(2**31)}:speed={params.speed}"
            )
        elif params.source == "mandelbrot":
            x, y = rng.choice(_FRACTAL_CENTRES)
            x, y = x + rng.uniform(-1e-4, 1e-4), y + rng.uniform(-1e-4, 1e-4)
            source = f"mandelbrot=s={size}:r={rate}:start_x={x:.12f}:start_y={y:.12f}:maxiter=256"
        else:
            with atomic_path(text_file) as tmp:
                tmp.write_text(request.prompt or " ", encoding="utf-8")
            source = f"color=c={_colour(params.color, rng)}:s={size}:r={rate}"
            fg = _colour(params.text_color, random.Random(request.seed + 1)) if params.text_color else "white"
            size_px = max(10, request.height // 12)
            chain = (
                f",drawtext={ffmpeg.drawtext_font()}:textfile={ffmpeg.filter_value(str(text_file))}:expansion=none"
                f":fontsize={size_px}:fontcolor={fg}:x=(w-text_w)/2:y=(h-text_h)/2"
            )
        return [
            "-f", "lavfi", "-i", source + chain + ",format=yuv420p",
            "-frames:v", str(request.frames), "-c:v", "libx264", "-preset", "ultrafast", "-crf", "12",
            "-pix_fmt", "yuv420p", "-an", "-f", "mp4",
        ]  # fmt: skip
