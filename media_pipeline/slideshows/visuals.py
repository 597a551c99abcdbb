"""Scene pictures: images fitted to the frame, panned, captioned, encoded as joinable segments.

A scene's picture is a pure function of its images, fit, motion, caption and length in frames,
so any frame range of it can be rendered on its own. The final video is the scenes' bodies and
the crossfades between them, each encoded once and joined by stream copy; a scene's own file is
its head, body and tail. Each segment is cached by what determines its pixels.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

from media_pipeline.core import ffmpeg
from media_pipeline.core.segments import Look, encoder_args

# Bump when the pictures a segment gets change for the same inputs (invalidates the cache).
RENDER_VERSION = 1
# Room to pan: images are fitted to the frame grown by this much on each side.
PAN_MARGIN = Fraction(3, 100)


@dataclass(frozen=True)
class SceneVisual:
    images: tuple[Path, ...]  # oriented files, ready for ffmpeg
    image_hashes: tuple[str, ...]
    fit: Literal["cover", "contain"]
    motion: Literal["pan", "none"]
    caption_file: Path | None  # the caption's text, passed to drawtext by file
    caption_hash: str | None
    frames: int

    def identity(self) -> dict[str, object]:
        return {
            "images": list(self.image_hashes),
            "fit": self.fit,
            "motion": self.motion,
            "caption": self.caption_hash,
            "frames": self.frames,
        }


SegmentKind = Literal["head", "body", "tail", "transition"]


@dataclass(frozen=True)
class Segment:
    kind: SegmentKind
    scene: int
    first: int  # frame range inside the scene (for a transition: the outgoing scene's)
    last: int
    visual: SceneVisual
    incoming: SceneVisual | None = None  # a transition's next scene (its frames 0..frames)

    @property
    def frames(self) -> int:
        return self.last - self.first

    def key(self, look: Look) -> str:
        payload = {
            "v": RENDER_VERSION,
            "kind": self.kind,
            "range": [self.first, self.last],
            "scene": self.visual.identity(),
            "incoming": self.incoming.identity() if self.incoming else None,
            "look": [look.width, look.height, str(look.rate), look.crf, look.preset],
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    @property
    def label(self) -> str:
        if self.kind == "transition":
            return f"crossfade scene {self.scene + 1} -> {self.scene + 2}"
        return f"scene {self.scene + 1} {self.kind}"


@dataclass(frozen=True)
class SegmentPlan:
    final: list[Segment]  # in order; joined they are the whole video
    scenes: list[list[Segment]]  # per scene: head?, body, tail?; joined they are the scene alone


def plan_segments(visuals: list[SceneVisual], xfade: int) -> SegmentPlan:
    final: list[Segment] = []
    scenes: list[list[Segment]] = []
    count = len(visuals)
    for index, visual in enumerate(visuals):
        head = xfade if index > 0 else 0
        tail = xfade if index < count - 1 else 0
        own: list[Segment] = []
        if head:
            own.append(Segment("head", index, 0, head, visual))
        body = Segment("body", index, head, visual.frames - tail, visual)
        if body.frames > 0:
            own.append(body)
            final.append(body)
        if tail:
            own.append(Segment("tail", index, visual.frames - tail, visual.frames, visual))
            final.append(
                Segment("transition", index, visual.frames - tail, visual.frames, visual, incoming=visuals[index + 1])
            )
        scenes.append(own)
    return SegmentPlan(final, scenes)


def _even(value: Fraction) -> int:
    return 2 * round(value / 2)


def _scene_chains(visual: SceneVisual, look: Look, first_input: int, label: str, first: int, last: int) -> list[str]:
    """Filter chains producing frames [first, last) of the scene as `[label]`."""
    width, height = look.width, look.height
    if visual.motion == "pan":
        canvas_w, canvas_h = _even(width * (1 + 2 * PAN_MARGIN)), _even(height * (1 + 2 * PAN_MARGIN))
    else:
        canvas_w, canvas_h = width, height
    tb = f"{look.rate.denominator}/{look.rate.numerator}"
    count = len(visual.images)
    chains, parts = [], []
    for number in range(count):
        # Images share the scene equally, in whole frames: image j has [f*j/k, f*(j+1)/k).
        frames = visual.frames * (number + 1) // count - visual.frames * number // count
        to_yuv = "out_color_matrix=bt709:out_range=tv"
        if visual.fit == "cover":
            fit = (
                f"scale={canvas_w}:{canvas_h}:force_original_aspect_ratio=increase:{to_yuv},crop={canvas_w}:{canvas_h}"
            )
        else:
            fit = (
                f"scale={canvas_w}:{canvas_h}:force_original_aspect_ratio=decrease:force_divisible_by=2:{to_yuv},"
                f"pad={canvas_w}:{canvas_h}:(ow-iw)/2:(oh-ih)/2:black"
            )
        chain = (
            f"[{first_input + number}:v]{fit},format=yuv420p,setsar=1,"
            f"loop=loop={max(frames - 1, 0)}:size=1:start=0,settb=expr={tb},setpts=N"
        )
        if visual.motion == "pan":
            # Alternate directions so consecutive images do not all drift the same way.
            progress = f"n/{max(frames - 1, 1)}" if number % 2 == 0 else f"(1-n/{max(frames - 1, 1)})"
            chain += f",crop={width}:{height}:x=(iw-ow)*{progress}:y=(ih-oh)/2"
        chains.append(f"{chain}[{label}i{number}]")
        parts.append(f"[{label}i{number}]")
    joined = f"{''.join(parts)}concat=n={count}:v=1:a=0," if count > 1 else f"{parts[0]}null,"
    # concat answers in microseconds; xfade wants both inputs in the frame's own time base.
    chain = f"{joined}settb=expr={tb},setpts=N,trim=start_frame={first}:end_frame={last},setpts=PTS-STARTPTS"
    if visual.caption_file is not None:
        size = max(10, height // 18)
        chain += (
            f",drawtext={ffmpeg.drawtext_font()}:textfile={ffmpeg.filter_value(str(visual.caption_file))}:expansion=none"
            f":fontsize={size}:fontcolor=white:box=1:boxcolor=black@0.5:boxborderw={size // 3}"
            f":x=(w-text_w)/2:y=h-text_h-h/12"
        )
    chains.append(f"{chain}[{label}]")
    return chains


def _inputs(visual: SceneVisual) -> list[str]:
    args: list[str] = []
    for image in visual.images:
        args += ["-i", str(image)]
    return args


def encode_segment(segment: Segment, look: Look, output: Path) -> None:
    ffmpeg.run(encode_args(segment, look), output, what=segment.label, timeout=3600)


def encode_args(segment: Segment, look: Look) -> list[str]:
    args = _inputs(segment.visual)
    chains = _scene_chains(segment.visual, look, 0, "a", segment.first, segment.last)
    if segment.incoming is not None:
        args += _inputs(segment.incoming)
        chains += _scene_chains(segment.incoming, look, len(segment.visual.images), "b", 0, segment.frames)
        seconds = ffmpeg.format_seconds(Fraction(segment.frames) / look.rate)
        chains.append(f"[a][b]xfade=transition=fade:duration={seconds}:offset=0[v]")
    else:
        chains.append("[a]null[v]")
    return [*args, "-filter_complex", ";".join(chains), "-map", "[v]", *encoder_args(look, segment.frames)]
