"""The built-in generators over library media: `still` (a slow move over an image) and `clip` (a
trimmed video). Both draw with one local ffmpeg command, through the same interface as every
other generator; the segment's single input is the library item, handed over as a local file.

`still`: a Ken Burns move. The picture is scaled to cover the composition's aspect (centre-cropped)
at up to 4 times its size, so the window's whole-pixel steps are a fraction of an output pixel and
the move does not judder. The window zooms from `zoom_start` to `zoom_end` while its centre moves
from `start` to `end` (fractions of the picture, clamped so the window stays inside it), linear or
eased; a point left unset is drawn from the seed, so a segment's frames depend only on its
params and seed. Frame 0 is the start of the move, the last frame its end.

`clip`: output frame i shows source frame `start_frame + floor(i * source rate / rate)` (source
frames counted from 0, as decoded): at the composition's rate that is `start_frame + i`, the
segment's frames count of them; at another rate, the frame on screen at that instant. The
pictures are scaled to cover the composition's size and centre-cropped. A range past the
source's last frame is refused when the segment is saved.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from media_pipeline.compositions.generators.base import Capabilities, GenerationRequest, GeneratorError, InputMedia
from media_pipeline.compositions.generators.local import FFmpegGenerator
from media_pipeline.core import ffmpeg
from media_pipeline.core.probe import probe

MAX_SUPERSAMPLED_WIDTH = 4096


class Focus(BaseModel):
    model_config = ConfigDict(extra="forbid")

    x: float = Field(ge=0, le=1, description="0 is the picture's left edge, 1 its right")
    y: float = Field(ge=0, le=1, description="0 is the picture's top edge, 1 its bottom")


class StillParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    zoom_start: float = Field(default=1.0, ge=1, le=8, description="1 shows the whole (cropped) picture")
    zoom_end: float = Field(default=1.25, ge=1, le=8, description="2 shows a quarter of it, twice as large")
    start: Focus | None = Field(
        default=None, description="The window's centre on the first frame; unset: from the seed"
    )
    end: Focus | None = Field(default=None, description="The window's centre on the last frame; unset: from the seed")
    easing: Literal["linear", "ease_in_out"] = Field(default="ease_in_out", description="How the move speeds up")


class ClipParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start_frame: int = Field(
        default=0, ge=0, le=10_000_000, description="The source frame the clip starts at (0: first)"
    )


def _one_input(request: GenerationRequest, generator: str, kind: str) -> Path:
    if len(request.inputs) != 1:
        raise GeneratorError(f"generator {generator} takes exactly one input, a library {kind}")
    return request.inputs[0]


def _single_input(generator: str, kind: str, inputs: tuple[InputMedia, ...]) -> list[tuple[str, str]]:
    if len(inputs) != 1:
        return [("inputs", f"generator {generator} takes exactly one input: the id of a library {kind}")]
    return []


class StillGenerator(FFmpegGenerator):
    id = "still"
    version = "1"
    description = "A slow zoom and pan (Ken Burns) over a library image: the segment's one input."
    params_model = StillParams
    capabilities = Capabilities(pool="ffmpeg", inputs=1, requires_input=True, input_types=("image",))

    def input_problems(
        self, params: dict[str, Any], frames: int, rate: Fraction, inputs: tuple[InputMedia, ...]
    ) -> list[tuple[str, str]]:
        return _single_input(self.id, "image", inputs)

    def move(self, request: GenerationRequest) -> tuple[float, float, Focus, Focus]:
        """Zoom and centre at the first and the last frame (unset centres drawn from the seed)."""
        params = StillParams.model_validate(request.params)
        rng = random.Random(request.seed)
        # Drawn in a fixed order whether or not a point is given, so giving one keeps the other.
        drawn = [Focus(x=rng.uniform(0.3, 0.7), y=rng.uniform(0.3, 0.7)) for _ in range(2)]
        return params.zoom_start, params.zoom_end, params.start or drawn[0], params.end or drawn[1]

    def args(self, request: GenerationRequest, text_file: Path) -> list[str]:
        image = _one_input(request, self.id, "image")
        params = StillParams.model_validate(request.params)
        zoom_start, zoom_end, start, end = self.move(request)
        width, height, frames = request.width, request.height, request.frames
        factor = max(1, min(4, MAX_SUPERSAMPLED_WIDTH // width))
        big_w, big_h = width * factor, height * factor
        t = f"(on/{max(1, frames - 1)})"
        eased = t if params.easing == "linear" else f"(0.5-0.5*cos(PI*{t}))"
        zoom = f"({zoom_start!r}+({zoom_end - zoom_start!r})*{eased})"
        centre_x = f"(({start.x!r}+({end.x - start.x!r})*{eased})*iw)"
        centre_y = f"(({start.y!r}+({end.y - start.y!r})*{eased})*ih)"
        x = f"clip({centre_x}-iw/{zoom}/2,0,iw-iw/{zoom})"
        y = f"clip({centre_y}-ih/{zoom}/2,0,ih-ih/{zoom})"
        chain = (
            f"scale={big_w}:{big_h}:force_original_aspect_ratio=increase:flags=lanczos,crop={big_w}:{big_h},setsar=1,"
            f"zoompan=z='{zoom}':x='{x}':y='{y}':d={frames}:s={width}x{height}:fps={ffmpeg.rate_arg(request.rate)},"
            "format=yuv420p"
        )
        return [
            "-i", str(image), "-vf", chain, "-frames:v", str(frames), "-r", ffmpeg.rate_arg(request.rate),
            "-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-pix_fmt", "yuv420p", "-an", "-f", "mp4",
        ]  # fmt: skip


def source_frame(start_frame: int, index: int, source_rate: Fraction, rate: Fraction) -> int:
    """The source frame output frame `index` shows."""
    return start_frame + math.floor(index * source_rate / rate)


class ClipGenerator(FFmpegGenerator):
    id = "clip"
    version = "1"
    description = "A library video (the segment's one input), trimmed frame-exactly from `start_frame`."
    params_model = ClipParams
    capabilities = Capabilities(pool="ffmpeg", inputs=1, requires_input=True, input_types=("video",))

    def input_problems(
        self, params: dict[str, Any], frames: int, rate: Fraction, inputs: tuple[InputMedia, ...]
    ) -> list[tuple[str, str]]:
        problems = _single_input(self.id, "video", inputs)
        if problems or inputs[0].rate is None or inputs[0].frame_count is None:
            return problems
        media = inputs[0]
        start = int(params.get("start_frame", 0))
        assert media.rate is not None and media.frame_count is not None
        last = source_frame(start, frames - 1, media.rate, rate)
        if last >= media.frame_count:
            need = last - start + 1
            return [
                (
                    "params.start_frame",
                    f"media {media.id} has {media.frame_count} frames (0 to {media.frame_count - 1}); {frames} frames "
                    f"at {rate} fps from frame {start} need source frames {start} to {last} ({need} of them); "
                    f"start at frame {max(0, media.frame_count - need)} at the latest, or shorten the segment",
                )
            ]
        return []

    def args(self, request: GenerationRequest, text_file: Path) -> list[str]:
        video = _one_input(request, self.id, "video")
        params = ClipParams.model_validate(request.params)
        try:
            source_rate = probe(video).require_video().rate
        except ffmpeg.MediaError as exc:
            raise GeneratorError(f"the clip generator cannot read its input ({exc.summary})") from exc
        width, height, frames, rate = request.width, request.height, request.frames, request.rate
        needed = source_frame(params.start_frame, frames - 1, source_rate, rate) + 1
        # Frames are selected by index (trim counts decoded frames) and given timestamps from their
        # index, so `fps` with round=up shows at output frame i the source frame floor(i * src / rate).
        chain = (
            f"trim=start_frame={params.start_frame}:end_frame={needed},"
            f"settb=expr={source_rate.denominator}/{source_rate.numerator},setpts=N,"
            f"fps=fps={ffmpeg.rate_arg(rate)}:round=up,"
            f"scale={width}:{height}:force_original_aspect_ratio=increase,crop={width}:{height},setsar=1,"
            # The last source frame needed is shown to the end: `fps` may stop at the source's end.
            f"tpad=stop_mode=clone:stop={frames},format=yuv420p"
        )
        return [
            "-i", str(video), "-map", "0:v:0", "-vf", chain, "-frames:v", str(frames), "-r", ffmpeg.rate_arg(rate),
            "-fps_mode", "cfr", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-pix_fmt", "yuv420p",
            "-an", "-f", "mp4",
        ]  # fmt: skip
