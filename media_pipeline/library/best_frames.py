"""The best frames of a library video, by the extraction area's scorer (two passes: score every
frame, then write the chosen ones as PNG library items with their exact positions)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from media_pipeline.core import frames
from media_pipeline.extraction.selection import BestScorer


@dataclass(frozen=True)
class Chosen:
    index: int
    pts: int
    time_base: str
    seconds: str  # exact, "n/d"
    timecode: str
    score: dict[str, float]
    png: bytes


def best_frames(path: Path, count: int) -> tuple[list[Chosen], list[str]]:
    """The `count` best frames (best first) and the scorer's warnings."""
    scorer = BestScorer(count)
    for _, frame in frames.decode(path):
        scorer.feed(frame)
    scores = scorer.choose()
    chosen: dict[int, Chosen] = {}
    for info, frame in frames.decode(path):
        if frame.index not in scores:
            continue
        buffer = io.BytesIO()
        frame.image().save(buffer, "PNG", compress_level=1)
        chosen[frame.index] = Chosen(
            frame.index,
            frame.pts,
            f"{frame.time_base.numerator}/{frame.time_base.denominator}",
            f"{frame.seconds.numerator}/{frame.seconds.denominator}",
            frames.timecode(frame.seconds, info.rate),
            scores[frame.index],
            buffer.getvalue(),
        )
        if len(chosen) == len(scores):
            break
    ordered = sorted(chosen.values(), key=lambda c: c.score["rank"])
    return ordered, scorer.warnings


def position(chosen: Chosen) -> dict[str, Any]:
    return {
        "index": chosen.index,
        "pts": chosen.pts,
        "time_base": chosen.time_base,
        "seconds": chosen.seconds,
        "timecode": chosen.timecode,
        "score": chosen.score,
    }
