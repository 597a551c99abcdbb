"""Per-shot thumbnails, slates for shots without media, and contact sheets.

Which frame: `first` is the shot's first source frame, `middle` is first + duration // 2, `last`
is first + duration - 1, an integer is an offset from the first frame. Movies are read with input
seeking (`-ss` before `-i`) aimed half a frame early, which lands on exactly that frame.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from media_pipeline.core import ffmpeg
from media_pipeline.core.files import atomic_path
from media_pipeline.db.models import MediaStatus, Shot

RENDER_VERSION = 1  # bump when the rendering itself changes, so cached outputs are not reused
FrameChoice = str | int
NAMED_FRAMES = ("first", "middle", "last")


class FrameChoiceError(ValueError):
    pass


def parse_frame_choice(value: str | int) -> FrameChoice:
    if isinstance(value, int):
        return value
    text = str(value).strip().lower()
    if text in NAMED_FRAMES:
        return text
    try:
        return int(text)
    except ValueError:
        raise FrameChoiceError(
            f"frame must be 'first', 'middle', 'last' or a whole number of frames from the shot's first frame, "
            f"not {value!r}"
        ) from None


def frame_offset(choice: FrameChoice, duration: int) -> int:
    """Offset from the shot's first source frame for a frame choice."""
    if choice == "first":
        return 0
    if choice == "middle":
        return duration // 2
    if choice == "last":
        return max(0, duration - 1)
    if isinstance(choice, int) and 0 <= choice < duration:
        return choice
    raise FrameChoiceError(f"frame offset {choice} is outside the shot, which has frames 0..{duration - 1}")


@dataclass
class ThumbnailPlan:
    shot_id: int
    index: int
    name: str
    source_frame: int  # the frame the timeline names (timecode frame at the source rate)
    media_frame: int | None  # decode index / file number inside the media
    width: int
    media_kind: str | None = None
    media_path: str | None = None
    media_rate: Fraction | None = None
    slate: list[str] = field(default_factory=list)  # non-empty: render a slate with these lines
    aspect: Fraction = Fraction(16, 9)

    def cache_key(self) -> str:
        identity: dict[str, Any] = {"v": RENDER_VERSION, "width": self.width}
        if self.slate:
            identity.update(slate=self.slate, aspect=str(self.aspect))
        else:
            source = Path(self.input_path())
            stat = source.stat() if source.exists() else None
            identity.update(
                media=str(source),
                size=stat.st_size if stat else None,
                mtime_ns=stat.st_mtime_ns if stat else None,
                frame=self.media_frame if self.media_kind == "movie" else 0,
            )
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()

    def input_path(self) -> str:
        assert self.media_path is not None
        if self.media_kind == "sequence":
            return self.media_path % self.media_frame
        return self.media_path

    def metadata(self) -> dict[str, Any]:
        return {
            "shot_id": self.shot_id,
            "index": self.index,
            "name": self.name,
            "source_frame": self.source_frame,
            "media_frame": self.media_frame,
            "slate": bool(self.slate),
        }


def plan_thumbnail(shot: Shot, choice: FrameChoice, width: int) -> ThumbnailPlan:
    offset = frame_offset(choice, shot.source_duration)
    plan = ThumbnailPlan(
        shot_id=shot.id,
        index=shot.index,
        name=shot.name,
        source_frame=shot.source_start + offset,
        media_frame=None,
        width=width,
        media_kind=shot.media_kind,
        media_path=shot.media_path,
        media_rate=Fraction(shot.media_rate) if shot.media_rate else None,
    )
    details = shot.details or {}
    if "display_aspect" in details:
        plan.aspect = Fraction(details["display_aspect"])
    if shot.media_status == MediaStatus.GENERATOR:
        plan.slate = ["GENERATOR", shot.name, f"{details.get('generator_kind') or 'generated'} clip: no media"]
        return plan
    if shot.media_status != MediaStatus.LINKED or shot.media_frame is None:
        reason = (shot.notes or ["media missing"])[-1]
        plan.slate = ["MEDIA MISSING", shot.name, reason]
        return plan
    if shot.media_kind == "still":
        plan.media_frame = 0
        return plan
    source_rate = Fraction(shot.source_rate)
    rate = plan.media_rate or source_rate
    plan.media_frame = shot.media_frame + round(Fraction(offset) / source_rate * rate)
    if (
        shot.media_frame_count is not None
        and shot.media_kind == "movie"
        and not (0 <= plan.media_frame < shot.media_frame_count)
    ):
        plan.slate = [
            "FRAME OUTSIDE MEDIA",
            shot.name,
            f"media frame {plan.media_frame} requested; the file has 0..{shot.media_frame_count - 1}",
        ]
    return plan


def render_thumbnail(plan: ThumbnailPlan, output: Path) -> str | None:
    """Write the planned thumbnail (a frame or a slate) to `output`, atomically.

    Returns why, when the frame turned out to be past the media's last picture and a slate was
    written instead.
    """
    if plan.slate:
        render_slate(plan.slate, output, plan.width, plan.aspect)
        return None
    movie = plan.media_kind == "movie"  # sequences and stills: the input file is the one picture
    source = Path(plan.input_path())
    try:
        grab_frame(source, plan.media_rate if movie else None, plan.media_frame if movie else None,
                   output, plan.width)  # fmt: skip
    except (FileNotFoundError, ffmpeg.FFmpegError):
        # ffmpeg finds no picture when the seek lands past the last one (a container or an
        # earlier probe over-stated the length): the slate the plan promises, said so.
        pictures = _pictures(source) if movie and plan.media_frame is not None else None
        if pictures is None or plan.media_frame is None or plan.media_frame < pictures:
            raise
        plan.slate = [
            "FRAME OUTSIDE MEDIA",
            plan.name,
            f"media frame {plan.media_frame} requested; {source.name} holds only {pictures} picture(s)",
        ]
        render_slate(plan.slate, output, plan.width, plan.aspect)
        return plan.slate[-1]
    return None


def _pictures(source: Path) -> int | None:
    try:
        return ffmpeg.count_pictures(source)
    except ffmpeg.MediaError:
        return None  # unreadable: the render's own error says more


def grab_frame(source: Path, rate: Fraction | None, frame: int | None, output: Path, width: int) -> None:
    """Write frame `frame` of a movie (or the only picture of an image file) as a JPEG `width` wide."""
    # Scale by the display aspect (anamorphic media), even height for any later video use.
    scale = f"scale={width}:trunc({width}/dar/2)*2,setsar=1"
    args: list[str] = []
    if rate is not None and frame is not None:
        args += ["-ss", ffmpeg.format_seconds(ffmpeg.seek_seconds(frame, rate))]
    args += ["-i", str(source), "-frames:v", "1", "-vf", scale, "-q:v", "2", "-update", "1"]
    ffmpeg.run(args, output, what=f"frame {frame} of {source.name}", timeout=120)


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def render_slate(lines: list[str], output: Path, width: int, aspect: Fraction = Fraction(16, 9)) -> None:
    height = max(2, round(width / aspect))
    image = Image.new("RGB", (width, height), (40, 40, 44))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width - 1, height - 1), outline=(200, 60, 60), width=max(2, width // 120))
    title_font, body_font = font(max(10, width // 14)), font(max(8, width // 32))
    y = height // 6
    for number, line in enumerate(lines):
        current = title_font if number == 0 else body_font
        for wrapped in _wrap(draw, line, current, width - width // 10):
            draw.text((width // 20, y), wrapped, font=current, fill=(240, 240, 240) if number else (230, 90, 90))
            y += int(current.size * 1.3) if hasattr(current, "size") else 14
    with atomic_path(output) as tmp:
        image.save(tmp, "JPEG", quality=90)


def _wrap(draw: ImageDraw.ImageDraw, text: str, used_font: Any, max_width: int) -> list[str]:
    words, lines, current = text.split(), [], ""
    for word in words:
        candidate = f"{current} {word}".strip()
        if current and draw.textlength(candidate, font=used_font) > max_width:
            lines.append(current)
            current = word
        else:
            current = candidate
    return [*lines, current][:4]


@dataclass
class SheetCell:
    image: Path
    caption: str
    detail: str


SHOTS_PER_SHEET = 200  # 40 rows of 5: a sheet stays a few MB and far inside JPEG's 65,535 px


def sheet_page_path(first_page: Path, page: int) -> Path:
    """Page 1 is `contact_sheet.jpg`; page 2 `contact_sheet_p002.jpg`, and so on."""
    return first_page if page == 1 else first_page.with_name(f"{first_page.stem}_p{page:03d}{first_page.suffix}")


def render_contact_sheets(
    cells: list[SheetCell], first_page: Path, title: str, per_sheet: int = SHOTS_PER_SHEET, cell_width: int = 240
) -> list[tuple[Path, tuple[int, int]]]:
    """Sheets of at most `per_sheet` thumbnails each; every page and its size."""
    pages = math.ceil(len(cells) / per_sheet)
    written = []
    for page in range(1, pages + 1):
        chunk = cells[(page - 1) * per_sheet : page * per_sheet]
        heading = f"{title}  (sheet {page} of {pages})" if pages > 1 else title
        path = sheet_page_path(first_page, page)
        written.append((path, render_contact_sheet(chunk, path, heading, cell_width)))
    return written


def render_contact_sheet(cells: list[SheetCell], output: Path, title: str, cell_width: int = 240) -> tuple[int, int]:
    """A grid of thumbnails with shot names, five across; returns the sheet's size.

    Memory holds the sheet and one thumbnail at a time: sizes come from the files' headers,
    and each picture is decoded only when it is pasted.
    """
    columns = min(5, max(1, len(cells)))
    rows = math.ceil(len(cells) / columns)
    heights = []
    for cell in cells:
        with Image.open(cell.image) as img:  # reads the header only
            heights.append(max(1, round(img.height * cell_width / img.width)))
    image_height = max(heights, default=cell_width * 9 // 16)
    caption_height, margin, header = 40, 10, 48
    sheet = Image.new(
        "RGB",
        (columns * (cell_width + margin) + margin, header + rows * (image_height + caption_height + margin) + margin),
        (18, 18, 20),
    )
    draw = ImageDraw.Draw(sheet)
    draw.text((margin, 12), title, font=font(22), fill=(235, 235, 235))
    small, smaller = font(14), font(12)
    for number, (cell, height) in enumerate(zip(cells, heights, strict=True)):
        x = margin + (number % columns) * (cell_width + margin)
        y = header + (number // columns) * (image_height + caption_height + margin)
        with Image.open(cell.image) as img:
            # JPEG decodes at 1/2, 1/4 ... scale directly: far cheaper than a full decode + resize.
            img.draft("RGB", (cell_width, 1))
            sheet.paste(img.convert("RGB").resize((cell_width, height)), (x, y))
        draw.text((x, y + height + 3), cell.caption[:48], font=small, fill=(235, 235, 235))
        draw.text((x, y + height + 21), cell.detail[:56], font=smaller, fill=(160, 160, 160))
    with atomic_path(output) as tmp:
        sheet.save(tmp, "JPEG", quality=88)
    return sheet.size
