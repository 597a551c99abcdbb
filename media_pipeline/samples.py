"""Generated media whose every frame shows its own index, for the demo, tests and benches.

Each frame carries its index as 16 black/white bars (least significant bit on the left), wide
enough to survive scaling and H.264 compression, so any thumbnail or conformed frame can be
decoded back to the exact source frame it came from.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from PIL import Image

from media_pipeline.core import ffmpeg

BITS = 16
_BARS = "({low}+{span}*mod(floor((N+{first})/pow(2\\,floor(X*{bits}/W)))\\,2))"
_GEQ = "geq=lum='" + _BARS + "':cb=128:cr=128"


def make_indexed_movie(
    path: Path,
    *,
    frames: int,
    rate: Fraction = Fraction(24),
    size: tuple[int, int] = (320, 180),
    start_timecode: str | None = None,
    gop: int = 48,
    audio: bool = False,
    first_index: int = 0,
    levels: tuple[int, int] = (0, 255),
    extra_filters: str = "",
    pts_expr: str | None = None,
    timescale: int | None = None,
) -> Path:
    """An H.264 movie of `frames` frames; frame N shows first_index + N.

    The bars are drawn at 160x90 and scaled up with nearest-neighbour, which keeps generating
    a 1080p source as cheap as a tiny one. `levels` are the luma of a 0 and a 1 bar;
    `extra_filters` are appended to the picture's filter chain (blur some frames, pad...);
    `pts_expr` (a `setpts` expression) makes a variable-frame-rate file, written with every
    frame's own timestamp kept (`-fps_mode passthrough`), `timescale` its track time base.
    """
    width, height = size
    low, high = levels
    bars = _GEQ.format(first=first_index, bits=BITS, low=low, span=high - low)
    scale = f"scale={width}:{height}:flags=neighbor,setsar=1"
    source = f"nullsrc=size=160x90:rate={ffmpeg.rate_arg(rate)},format=gray,{bars},{scale}"
    if extra_filters:
        source += f",{extra_filters}"
    if pts_expr:
        source += f",setpts='{pts_expr}'"
    args = ["-f", "lavfi", "-i", source]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    args += ["-frames:v", str(frames), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    args += ["-g", str(gop)]
    args += ["-fps_mode", "passthrough"] if pts_expr else ["-r", ffmpeg.rate_arg(rate)]
    if timescale:
        args += ["-video_track_timescale", str(timescale)]
    if audio:
        args += ["-c:a", "aac", "-shortest"]
    if start_timecode:
        args += ["-timecode", start_timecode]
    ffmpeg.run(args, path, what=f"generating {path.name}")
    return path


def make_scene_movie(
    path: Path, *, frames: int, cuts: list[int], rate: Fraction = Fraction(25), size: tuple[int, int] = (320, 180)
) -> Path:
    """Shots of flat grey (a different level each) starting at the frames in `cuts`, with the
    frame index as bars across the middle fifth only (crop rows 2/5..3/5 to read it back), so
    the index changing from frame to frame is never mistaken for a cut."""
    levels = [40, 200, 110, 235, 15, 160]
    level = str(levels[(len(cuts) - 1) % len(levels)])
    for number in reversed(range(len(cuts) - 1)):
        level = f"if(lt(N\\,{cuts[number + 1]})\\,{levels[number % len(levels)]}\\,{level})"
    if not cuts or cuts[0] != 0:
        raise ValueError("the first shot starts at frame 0")
    bars = _BARS.format(first=0, bits=BITS, low=0, span=255)
    picture = f"if(between(Y\\,H*2/5\\,H*3/5)\\,{bars}\\,{level})"
    width, height = size
    source = f"nullsrc=size={width}x{height}:rate={ffmpeg.rate_arg(rate)},format=gray,geq=lum='{picture}':cb=128:cr=128"
    args = ["-f", "lavfi", "-i", source, "-frames:v", str(frames), "-c:v", "libx264", "-preset", "ultrafast"]
    args += ["-pix_fmt", "yuv420p", "-g", "48", "-r", ffmpeg.rate_arg(rate)]
    ffmpeg.run(args, path, what=f"generating {path.name}")
    return path


def make_indexed_sequence(
    folder: Path, *, prefix: str, start: int, frames: int, padding: int = 4, suffix: str = ".png"
) -> list[Path]:
    """Numbered image files `prefix<start..start+frames-1><suffix>`; file N shows N."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(start, start + frames):
        image = Image.new("L", (160, 90))
        draw_index(image, number)
        path = folder / f"{prefix}{number:0{padding}d}{suffix}"
        image.convert("RGB").save(path)
        paths.append(path)
    return paths


def draw_index(image: Image.Image, index: int) -> None:
    width, height = image.size
    for bit in range(BITS):
        value = 255 if (index >> bit) & 1 else 0
        x0, x1 = bit * width // BITS, (bit + 1) * width // BITS
        image.paste(value, (x0, 0, x1, height))


def read_index(image: Image.Image) -> int:
    """Decode the frame index drawn by `make_indexed_movie` / `draw_index`."""
    gray = image.convert("L")
    width, height = gray.size
    index = 0
    for bit in range(BITS):
        x = int((bit + 0.5) * width / BITS)
        samples = [gray.getpixel((x + dx, height // 2 + dy)) for dx in (-1, 0, 1) for dy in (-2, 0, 2)]
        if sum(samples) / len(samples) > 127:
            index |= 1 << bit
    return index


def make_sample_cut(media_folder: Path, drop_folder: Path, rate: Fraction = Fraction(24)) -> Path:
    """A demo cut: five shots over a generated 10 s plate with timecode 01:00:00:00, one more
    whose media is missing (it renders as a slate). Written under a hidden name and renamed,
    like any well-behaved copy into a watch folder."""
    import opentimelineio as otio

    plate = media_folder / "A001C001.mov"
    if not plate.exists():
        make_indexed_movie(plate, frames=240, rate=rate, size=(640, 360), start_timecode="01:00:00:00")
    float_rate = float(rate)
    start = otio.opentime.from_timecode("01:00:00:00", float_rate).value
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    for number, (offset, duration) in enumerate([(0, 24), (30, 36), (80, 12), (100, 48), (190, 50)]):
        track.append(
            otio.schema.Clip(
                name=f"sh{(number + 1) * 10:03d}",
                media_reference=otio.schema.ExternalReference(target_url=plate.as_uri()),
                source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(start + offset, float_rate),
                    otio.opentime.RationalTime(duration, float_rate),
                ),
            )
        )
    track.append(
        otio.schema.Clip(
            name="sh060",
            media_reference=otio.schema.ExternalReference(target_url="file:///Volumes/offline/B002C007.mov"),
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(start, float_rate), otio.opentime.RationalTime(24, float_rate)
            ),
        )
    )
    timeline = otio.schema.Timeline(name="sample_cut")
    timeline.tracks.append(track)
    drop_folder.mkdir(parents=True, exist_ok=True)
    final = drop_folder / "sample_cut.otio"
    hidden = drop_folder / ".sample_cut.otio.tmp"
    otio.adapters.write_to_file(timeline, str(hidden), adapter_name="otio_json")
    hidden.replace(final)
    return final
