"""Per-shot review proxies with burn-ins, and a filmstrip per shot.

User text (shot and cut names) reaches drawtext through `textfile=`, never inside the filter
graph string, so no name can break or inject into the graph.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from media_pipeline.core import ffmpeg
from media_pipeline.core.timecode import to_timecode
from media_pipeline.db.models import MediaStatus, Shot
from media_pipeline.editorial.thumbnails import render_slate

BURN_INS = ("shot_name", "source_timecode", "frame_number", "cut_version")
PROXY_VERSION = 2  # 2: the timecode track is the shot's first source frame
_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/dejavu/DejaVuSansMono.ttf",
    "/Library/Fonts/Courier New.ttf",
)


@dataclass(frozen=True)
class ProxyOptions:
    width: int = 1280
    crf: int = 23
    preset: str = "veryfast"
    gop: int = 12
    handles: int = 0
    burn_ins: tuple[str, ...] = ("shot_name", "source_timecode", "frame_number")
    filmstrip_frames: int = 8


@dataclass
class ProxyPlan:
    shot_id: int
    index: int
    name: str
    first_source_frame: int  # timecode frame (at source rate) of the proxy's first frame
    frames: int
    head: int  # handle frames actually available before the shot
    tail: int
    source_rate: Fraction
    kind: str  # movie | sequence | still | slate
    path: str | None = None
    first_media_frame: int = 0
    media_rate: Fraction | None = None
    slate: list[str] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)
    drop_frame: bool = False

    @property
    def timecode(self) -> str:
        """Timecode of the proxy's first frame: where it sits in the source, so that an NLE
        placing proxies by timecode puts them where the originals go."""
        return to_timecode(self.first_source_frame, self.source_rate, self.drop_frame)

    def cache_key(self, options: ProxyOptions) -> str:
        identity: dict[str, Any] = {
            "v": PROXY_VERSION,
            "options": [options.width, options.crf, options.preset, options.gop, list(options.burn_ins)],
            "frames": self.frames,
            "first_source_frame": self.first_source_frame,
            "rate": str(self.source_rate),
            "drop_frame": self.drop_frame,
            "texts": self.texts,
            "slate": self.slate,
        }
        if self.path and not self.slate:
            probe = Path(self.path % self.first_media_frame if self.kind == "sequence" else self.path)
            stat = probe.stat() if probe.exists() else None
            identity.update(path=self.path, first=self.first_media_frame, size=stat and stat.st_size,
                            mtime=stat and stat.st_mtime_ns)  # fmt: skip
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def plan_proxy(shot: Shot, options: ProxyOptions, cut_label: str, drop_frame: bool = False) -> ProxyPlan:
    """The frames a proxy covers: the shot plus handles, clamped to the media that exists."""
    source_rate = Fraction(shot.source_rate)
    plan = ProxyPlan(
        shot_id=shot.id, index=shot.index, name=shot.name, first_source_frame=shot.source_start,
        frames=shot.source_duration, head=0, tail=0, source_rate=source_rate, kind="slate",
        texts={"shot_name": shot.name, "cut_version": cut_label}, drop_frame=drop_frame,
    )  # fmt: skip
    if shot.media_status != MediaStatus.LINKED or shot.media_frame is None or shot.media_path is None:
        headline = "GENERATOR" if shot.media_status == MediaStatus.GENERATOR else "MEDIA MISSING"
        plan.slate = [headline, shot.name, (shot.notes or ["no media"])[-1]]
        return plan
    plan.kind = shot.media_kind or "movie"
    plan.path = shot.media_path
    plan.media_rate = Fraction(shot.media_rate) if shot.media_rate else source_rate
    lowest = int((shot.details or {}).get("start_frame", 0)) if plan.kind == "sequence" else 0
    count = shot.media_frame_count
    last = shot.media_frame + shot.source_duration - 1
    if plan.kind == "still":
        plan.head = plan.tail = options.handles
    else:
        plan.head = max(0, min(options.handles, shot.media_frame - lowest))
        highest = lowest + count - 1 if count else last + options.handles
        plan.tail = max(0, min(options.handles, highest - last))
    plan.first_media_frame = shot.media_frame - plan.head
    plan.first_source_frame = shot.source_start - plan.head
    plan.frames = shot.source_duration + plan.head + plan.tail
    return plan


def _font() -> str:
    for candidate in _FONT_CANDIDATES:
        if Path(candidate).is_file():
            return f"fontfile={ffmpeg.filter_value(candidate)}"
    return "font=Mono"  # fontconfig's choice


def _drawtext(spec: str, x: str, y: str, size: int) -> str:
    return (
        f"drawtext={_font()}:{spec}:x={x}:y={y}:fontsize={size}:fontcolor=white:box=1:boxcolor=black@0.55:boxborderw=6"
    )


def burn_in_filters(plan: ProxyPlan, options: ProxyOptions, workdir: Path, height: int) -> list[str]:
    size = max(12, height // 24)
    margin = max(8, size // 2)
    filters = []
    positions = {
        "shot_name": (str(margin), str(margin)),
        "cut_version": (f"w-tw-{margin}", str(margin)),
        "source_timecode": (str(margin), f"h-th-{margin}"),
        "frame_number": (f"w-tw-{margin}", f"h-th-{margin}"),
    }
    for item in options.burn_ins:
        x, y = positions[item]
        if item in ("shot_name", "cut_version"):
            text_file = workdir / f"{item}.txt"
            text_file.write_text(plan.texts.get(item, ""), encoding="utf-8")
            # expansion=none: a % in a name must print as itself, not start a %{...} expansion.
            spec = f"textfile={ffmpeg.filter_value(str(text_file))}:expansion=none"
        elif item == "source_timecode":
            spec = f"timecode={ffmpeg.filter_value(plan.timecode)}:timecode_rate={ffmpeg.rate_arg(plan.source_rate)}"
        else:
            spec = f"text='%{{frame_num}}':start_number={plan.first_source_frame}"
        filters.append(_drawtext(spec, x, y, size))
    return filters


def proxy_height(width: int, aspect: Fraction) -> int:
    return max(2, round(width / aspect / 2) * 2)


def render_proxy(plan: ProxyPlan, options: ProxyOptions, output: Path, aspect: Fraction) -> None:
    """Encode the proxy (atomically): H.264 yuv420p, bt709 tags, short GOP, +faststart."""
    height = proxy_height(options.width, aspect)
    rate = plan.media_rate or plan.source_rate
    with tempfile.TemporaryDirectory(prefix="proxy-") as tmp:
        workdir = Path(tmp)
        if plan.slate:
            slate = workdir / "slate.png"
            render_slate(plan.slate, slate, options.width, Fraction(options.width, height))
            inputs = ["-loop", "1", "-framerate", ffmpeg.rate_arg(plan.source_rate), "-i", str(slate)]
            rate = plan.source_rate
        elif plan.kind == "movie":
            seek = ffmpeg.seek_seconds(plan.first_media_frame, rate)
            inputs = ["-ss", ffmpeg.format_seconds(seek), "-i", str(plan.path)]
        elif plan.kind == "sequence":
            inputs = ["-framerate", ffmpeg.rate_arg(rate), "-start_number", str(plan.first_media_frame),
                      "-i", str(plan.path)]  # fmt: skip
        else:
            inputs = ["-loop", "1", "-framerate", ffmpeg.rate_arg(rate), "-i", str(plan.path)]
        # The first picture at 0: an input seek leaves it a frame in, which next to a timecode
        # track starting at 0 would put the whole proxy one frame late.
        steps = ["setpts=PTS-STARTPTS", f"scale={options.width}:{height}", "setsar=1"]
        steps += burn_in_filters(plan, options, workdir, height)
        steps += ["format=yuv420p"]
        args = [*inputs, "-frames:v", str(plan.frames), "-vf", ",".join(steps), "-an"]
        args += ["-r", ffmpeg.rate_arg(rate), "-c:v", "libx264", "-preset", options.preset, "-crf", str(options.crf)]
        args += ["-g", str(options.gop), "-pix_fmt", "yuv420p", "-colorspace", "bt709", "-color_primaries", "bt709"]
        args += ["-color_trc", "bt709", "-movflags", "+faststart"]
        # Without this the proxy inherits the whole source movie's start timecode.
        args += ["-timecode", plan.timecode]
        ffmpeg.run(args, output, what=f"proxy of shot {plan.name!r}", timeout=3600)


def render_filmstrip(proxy: Path, frames: int, count: int, output: Path, tile_width: int = 240) -> None:
    """`count` evenly spaced frames of the proxy side by side in one JPEG."""
    count = max(1, min(count, frames))
    step = max(1, frames // count)
    select = ffmpeg.filter_value(f"not(mod(n,{step}))")
    args = ["-i", str(proxy), "-vf", f"select={select},scale={tile_width}:-2,tile={count}x1:padding=2",
            "-frames:v", "1", "-fps_mode", "vfr", "-q:v", "3", "-update", "1"]  # fmt: skip
    ffmpeg.run(args, output, what=f"filmstrip of {proxy.name}", timeout=600)
