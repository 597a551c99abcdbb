"""One item's extraction: decode, select, crop, scale, write images and the item's manifest.

No Dagster here: the asset calls `extract_item` once per item, from its worker threads.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from media_pipeline.core import frames
from media_pipeline.core.files import atomic_path
from media_pipeline.core.frames import DecodedFrame, StreamInfo
from media_pipeline.extraction.crops import box_for
from media_pipeline.extraction.request import Best, ByIndex, CropSpec, Format, Interval, Scenes, Timestamps
from media_pipeline.extraction.selection import BestScorer, ByIndexSelector, Pick, Selector, selector_for

_PILLOW_FORMAT = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}
_SAVE_OPTIONS: dict[str, dict[str, Any]] = {
    "jpg": {"quality": 90},
    # Level 1 is several times faster than the default 6 at 1080p for a few percent more bytes.
    "png": {"compress_level": 1},
    "webp": {"quality": 90, "method": 4},
}


@dataclass(frozen=True)
class ItemPlan:
    frames: ByIndex | Interval | Timestamps | Scenes | Best
    crop: CropSpec
    format: Format
    width: int | None


@dataclass
class ItemResult:
    stream: StreamInfo
    frames: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def fraction_text(value: Any) -> str:
    return f"{value.numerator}/{value.denominator}" if value.denominator != 1 else str(value.numerator)


def extract_item(
    video: Path,
    plan: ItemPlan,
    out_dir: Path,
    *,
    deadline: float | None = None,
    on_frame: Callable[[dict[str, Any]], None] | None = None,
) -> ItemResult:
    """Write the frames `plan` names from `video` into `out_dir`; what was written, in order."""
    info = frames.stream_info(video)
    result = ItemResult(stream=info)
    if isinstance(plan.frames, Best):
        scorer = BestScorer(plan.frames.count)
        for _ in _feed(video, scorer, deadline):
            pass
        scores = scorer.choose()
        selector: Selector = ByIndexSelector(list(scores), {i: [f"best #{int(s['rank'])}"] for i, s in scores.items()})
        result.warnings += scorer.warnings
    else:
        scores = {}
        selector = selector_for(plan.frames, info)
    for pick in _feed(video, selector, deadline):
        record = _write(pick, plan, info, out_dir)
        if pick.frame.index in scores:
            record["score"] = scores[pick.frame.index]
        elif pick.score is not None:
            record["score"] = pick.score
        result.frames.append(record)
        if on_frame is not None:
            on_frame(record)
    result.warnings += selector.warnings
    result.frames.sort(key=lambda record: record["index"])
    return result


def _feed(video: Path, selector: Selector, deadline: float | None) -> Iterator[Pick]:
    for _, frame in frames.decode(video, deadline=deadline):
        yield from selector.feed(frame)
        if selector.done:  # e.g. the last index asked for: the rest of the file need not be decoded
            break
    yield from selector.finish()


def _write(pick: Pick, plan: ItemPlan, info: StreamInfo, out_dir: Path) -> dict[str, Any]:
    frame: DecodedFrame = pick.frame
    image = frame.image()
    box = box_for(plan.crop, image)
    if box.as_dict() != {"x": 0, "y": 0, "width": image.width, "height": image.height}:
        image = image.crop(box.pillow)
    if plan.width is not None and plan.width != image.width:
        height = max(1, round(image.height * plan.width / image.width))
        image = image.resize((plan.width, height), Image.Resampling.BICUBIC)
    path = out_dir / f"frame_{frame.index:06d}.{plan.format}"
    with atomic_path(path) as tmp:
        image.save(tmp, format=_PILLOW_FORMAT[plan.format], **_SAVE_OPTIONS[plan.format])
    return {
        "index": frame.index,
        "pts": frame.pts,
        "time_base": fraction_text(frame.time_base),
        "seconds": float(frame.seconds),
        "seconds_exact": fraction_text(frame.seconds),
        "timecode": frames.timecode(frame.seconds, info.rate),
        "crop": box.as_dict(),
        "width": image.width,
        "height": image.height,
        "file": path.name,
        "requested": pick.requested,
    }


def stream_record(info: StreamInfo) -> dict[str, Any]:
    return {
        "width": info.width,
        "height": info.height,
        "codec": info.codec,
        "time_base": fraction_text(info.time_base),
        "rate": fraction_text(info.rate),
        "frames": info.frames,
        "duration": fraction_text(info.duration) if info.duration is not None else None,
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True))
