"""What a media file holds, read with PyAV (FFmpeg's own libraries) from its streams.

Exact by construction: frame counts come from the video stream (the container's sample table
where it has one, else its demuxed packets: nothing is decoded), rates are the stream's own
rationals (60000/1001 stays 60000/1001), audio is counted in samples. Nothing here decodes a
picture, so the checks that keep hostile files away from the decoders run first:

- only local files, opened with FFmpeg's `protocol_whitelist=file`;
- only the demuxers and decoders of `DEMUXERS` / `DECODERS` (post-production video, audio and
  still formats), decided by FFmpeg's probe of the content, never by the extension; SVG,
  playlists (HLS, DASH, concat lists) and text formats are refused with a sentence;
- a pixel limit read from headers (Pillow reads only an image's header; PyAV a movie's stream).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, UnidentifiedImageError

from media_pipeline.core.errors import MediaError
from media_pipeline.core.rates import exact_rate

if TYPE_CHECKING:
    # Imported where used: loading FFmpeg's libraries costs a Dagster run worker 0.3-0.7 s at
    # start, which runs that never probe should not pay.
    import av

DEFAULT_MAX_PIXELS = 100_000_000  # imgproxy allows 50 MP, thumbor 75 MP; 8K DCI is 35 MP
_process_limit = {"max_pixels": DEFAULT_MAX_PIXELS}


def set_max_pixels(limit: int) -> None:
    """The pixel limit of this process, for calls that pass none (the platform sets
    MEDIA_PIPELINE_MAX_PIXELS here when the code location loads)."""
    if limit < 1:
        raise ValueError(f"the pixel limit must be a positive number of pixels, not {limit}")
    _process_limit["max_pixels"] = limit


def max_pixels_limit() -> int:
    return _process_limit["max_pixels"]


# FFmpeg demuxer names (an alias list like "mov,mp4,m4a,3gp,3g2,mj2" matches by any alias).
DEMUXERS: tuple[str, ...] = (
    # movies
    "mov", "mxf", "matroska", "avi", "mpegts", "mpeg", "dv", "gxf", "r3d", "h264", "hevc", "m4v",
    # audio
    "wav", "w64", "aiff", "flac", "mp3", "aac", "caf", "ac3", "eac3", "ogg",
    # stills and image sequences
    "image2", "png_pipe", "jpeg_pipe", "tiff_pipe", "exr_pipe", "dpx_pipe", "bmp_pipe", "webp_pipe", "j2k_pipe",
    "gif",  # the library's GIF renditions are read back to be recorded
)  # fmt: skip

_PCM = ("s8", "u8", "s16le", "s16be", "s24le", "s24be", "s32le", "s32be", "f32le", "f32be", "f64le", "f64be",
        "alaw", "mulaw", "s24daud", "bluray", "dvd")  # fmt: skip
# FFmpeg decoder names; where FFmpeg has several decoders for a codec, each of them.
DECODERS: tuple[str, ...] = (
    # video
    "h264", "hevc", "prores", "dnxhd", "mpeg2video", "mpeg1video", "mpeg4", "mjpeg", "vp8", "vp9", "av1",
    "libdav1d", "rawvideo", "v210", "v410", "r210", "ffv1", "cfhd", "hap", "qtrle", "dvvideo", "huffyuv",
    "utvideo", "jpeg2000", "libopenjpeg",
    # stills
    "png", "tiff", "exr", "dpx", "targa", "bmp", "webp", "libwebp", "gif",
    # audio
    "aac", "aac_fixed", "mp3", "mp3float", "mp2", "mp2float", "flac", "alac", "ac3", "eac3", "opus", "libopus",
    "vorbis", "libvorbis", *(f"pcm_{name}" for name in _PCM),
)  # fmt: skip
# Containers whose header states a video stream's frame count exactly (a sample table / index).
_STATED_FRAME_COUNTS = ("mov", "avi")
_URL = re.compile(r"^[A-Za-z0-9+.-]+[:,]")  # http:, concat:, file:, subfile,... as ffmpeg tells protocols
_IMAGE_FORMATS = re.compile(r"^(image2|\w+_pipe)$")


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    width: int
    height: int
    rate: Fraction  # frames per second, exact
    frames: int  # exact count of the stream's pictures
    time_base: Fraction
    pixel_format: str | None
    sample_aspect: Fraction = Fraction(1)


@dataclass(frozen=True)
class AudioInfo:
    codec: str
    sample_rate: int
    channels: int
    samples: int | None  # the stream's length in samples, when the container tells it
    time_base: Fraction

    @property
    def duration(self) -> Fraction | None:
        return Fraction(self.samples, self.sample_rate) if self.samples is not None else None


@dataclass(frozen=True)
class MediaInfo:
    """A probed file: its first video and first audio stream, either of which may be absent."""

    path: str
    format_name: str  # FFmpeg's demuxer, e.g. "mov,mp4,m4a,3gp,3g2,mj2" or "png_pipe"
    video: VideoInfo | None
    audio: AudioInfo | None
    start_timecode: str | None  # "HH:MM:SS:FF" (";" for drop-frame), from the stream, tmcd or format tags
    duration: Fraction  # the container's duration in seconds (the longest stream)

    @property
    def is_image(self) -> bool:
        """A still (or one file of an image sequence)."""
        return bool(_IMAGE_FORMATS.match(self.format_name))

    def require_video(self) -> VideoInfo:
        if self.video is None:
            raise MediaError(f"{Path(self.path).name} has no video stream")
        return self.video

    # The video stream's facts, as most callers want them (MediaError when there is no video).
    @property
    def width(self) -> int:
        return self.require_video().width

    @property
    def height(self) -> int:
        return self.require_video().height

    @property
    def rate(self) -> Fraction:
        return self.require_video().rate

    @property
    def codec(self) -> str:
        return self.require_video().codec

    @property
    def frame_count(self) -> int:
        """Pictures in the video stream, counted, not derived from any duration."""
        return self.require_video().frames

    @property
    def sample_aspect(self) -> Fraction:
        return self.require_video().sample_aspect

    @property
    def display_aspect(self) -> Fraction:
        return Fraction(self.width, self.height) * self.sample_aspect

    @property
    def has_audio(self) -> bool:
        return self.audio is not None


def is_url(text: str) -> bool:
    """Whether ffmpeg would read `text` through a protocol (http:, concat:, subfile,...) rather than as a file."""
    return bool(_URL.match(text))


def local_file(path: Path | str) -> Path:
    """`path` as a local regular file, or a MediaError saying why it is not one."""
    text = str(path)
    if is_url(text):
        raise MediaError(
            f"{text[:80]!r} is a URL or an FFmpeg protocol, not a media file: only files on this machine are read; "
            "give the path of a file"
        )
    local = Path(text)
    if not local.exists():
        raise MediaError(f"Media file {local.name} does not exist")
    if not local.is_file():
        raise MediaError(
            f"{local.name} is not a regular file (a folder, device or pipe); give the path of a media file"
        )
    return local


def probe(path: Path | str, *, max_pixels: int | None = None) -> MediaInfo:
    """Streams, exact frame count, rates, start timecode and audio length of a media file.

    Raises MediaError (a sentence) for anything that is not a readable, allowed media file or
    whose pictures are larger than `max_pixels` (default: the process's limit, see set_max_pixels).
    """
    import av

    max_pixels = max_pixels or max_pixels_limit()
    local = local_file(path)
    _check_image_header(local, max_pixels)
    try:
        # Tags in another encoding than UTF-8 (old cameras) must not make a file unreadable.
        container = av.open(str(local), options=_OPEN_OPTIONS, metadata_errors="replace")
    except av.FFmpegError as exc:
        raise _refusal(local, exc) from None
    with container:
        try:
            info = _read(local, container)
        except (ValueError, ZeroDivisionError, OverflowError, TypeError):
            # Nonsense in the headers (a zero rate or time base, absurd durations).
            raise MediaError(
                f"{local.name} states impossible stream values (a zero rate or time base, an absurd duration); "
                "re-export or re-copy it"
            ) from None
    if info.video is None and info.audio is None:
        raise MediaError(f"{local.name} holds no video or audio stream; re-export or re-copy it")
    if info.video is not None:
        _check_decoder(local, info.video.codec)
        pixels = info.video.width * info.video.height
        if pixels > max_pixels:
            raise _too_large(local, f"{info.video.width}x{info.video.height}", max_pixels)
        if pixels == 0:
            raise MediaError(f"{local.name}: its picture size cannot be read (corrupt or truncated); re-export it")
    if info.audio is not None:
        _check_decoder(local, info.audio.codec)
    return info


_OPEN_OPTIONS = {
    "protocol_whitelist": "file",
    "format_whitelist": ",".join(DEMUXERS),
    "codec_whitelist": ",".join(DECODERS),
}


def count_pictures(path: Path | str) -> int:
    """Pictures the file's video stream really holds, by reading every packet (nothing decoded).

    `probe` trusts a sample table where the container has one; this is the truth when that
    table (or a duration) over-states the stream, at the cost of reading the whole file.
    """
    import av

    local = local_file(path)
    try:
        container = av.open(str(local), options=_OPEN_OPTIONS, metadata_errors="replace")
    except av.FFmpegError as exc:
        raise _refusal(local, exc) from None
    with container:
        if not container.streams.video:
            return 0
        frames, _ = _count(container, container.streams.video[0], None)
    return frames


def _read(path: Path, container: av.container.InputContainer) -> MediaInfo:
    import av

    video_stream = container.streams.video[0] if container.streams.video else None
    audio_stream = container.streams.audio[0] if container.streams.audio else None
    format_name = container.format.name
    frames: int | None = None
    samples: int | None = None
    rate = Fraction(0)
    if video_stream is not None:
        rate = _rate(video_stream)
        frames = _stated_frames(format_name, video_stream, rate)
    if audio_stream is not None and audio_stream.duration:
        samples = round(audio_stream.duration * audio_stream.time_base * audio_stream.codec_context.sample_rate)
    if (video_stream is not None and frames is None) or (audio_stream is not None and samples is None):
        counted_frames, counted_samples = _count(container, video_stream, audio_stream)
        frames = frames if frames is not None else counted_frames
        samples = samples if samples is not None else counted_samples

    video = None
    if video_stream is not None:
        context = video_stream.codec_context
        sar = video_stream.sample_aspect_ratio or context.sample_aspect_ratio
        video = VideoInfo(
            codec=context.name,
            width=context.width,
            height=context.height,
            rate=rate,
            frames=frames or 0,
            time_base=Fraction(video_stream.time_base or 0),
            pixel_format=context.pix_fmt,
            sample_aspect=Fraction(sar) if sar else Fraction(1),
        )
    audio = None
    if audio_stream is not None:
        context = audio_stream.codec_context
        audio = AudioInfo(
            codec=context.name,
            sample_rate=context.sample_rate,
            channels=context.channels,
            samples=samples,
            time_base=Fraction(audio_stream.time_base or 0),
        )
    duration = Fraction(container.duration, av.time_base) if container.duration else Fraction(0)
    if duration == 0 and video is not None and rate:
        duration = Fraction(video.frames) / rate
    return MediaInfo(
        path=str(path),
        format_name=format_name,
        video=video,
        audio=audio,
        start_timecode=_timecode(container, video_stream),
        duration=duration,
    )


def _rate(stream: av.video.stream.VideoStream) -> Fraction:
    for candidate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if candidate:
            # Matroska and MPEG-TS store times in milliseconds / 90 kHz ticks, so their average
            # rate comes out as 19001/317 for 60000/1001: snap to the rate an editor means.
            return exact_rate(Fraction(candidate))
    return Fraction(25)  # FFmpeg's own default for inputs that state no rate (single images)


def _stated_frames(format_name: str, stream: av.video.stream.VideoStream, rate: Fraction) -> int | None:
    if _IMAGE_FORMATS.match(format_name):
        return None  # counted: one packet per picture
    aliases = format_name.split(",")
    if stream.frames and any(name in aliases for name in _STATED_FRAME_COUNTS):
        return stream.frames
    if "mxf" in aliases and stream.duration and stream.time_base and Fraction(stream.time_base) * rate == 1:
        return stream.duration  # MXF times are counted in edit units: one per frame
    return None


def _count(
    container: av.container.InputContainer,
    video: av.video.stream.VideoStream | None,
    audio: av.audio.stream.AudioStream | None,
) -> tuple[int, int | None]:
    """Video packets and audio samples, by demuxing (reading packets, decoding nothing)."""
    import av

    streams = [s for s in (video, audio) if s is not None]
    frames = 0
    ticks = 0
    try:
        for packet in container.demux(*streams):
            if not packet.size:
                continue  # the demuxer's flush packet at the end
            if video is not None and packet.stream.index == video.index:
                frames += 1
            elif packet.duration:
                ticks += packet.duration
    except av.FFmpegError as exc:
        raise MediaError(
            f"{Path(container.name).name} is damaged: reading its packets failed ({exc.strerror or 'error'}); "
            "re-export or re-copy it"
        ) from None
    samples = None
    if audio is not None and ticks:
        samples = round(ticks * audio.time_base * audio.codec_context.sample_rate)
    return frames, samples


def _timecode(container: av.container.InputContainer, video: av.video.stream.VideoStream | None) -> str | None:
    # The video stream's tag, then a tmcd (data) track's, then the format's (MXF, MKV).
    sources = [video.metadata if video is not None else {}]
    sources += [stream.metadata for stream in container.streams.data]
    sources.append(container.metadata)
    for tags in sources:
        for key, value in tags.items():
            if key.lower() == "timecode" and re.fullmatch(r"\d\d:\d\d:\d\d[:;.]\d\d", value.strip()):
                return value.strip()
    return None


def _check_decoder(path: Path, codec: str) -> None:
    if codec not in DECODERS:
        raise MediaError(
            f"{path.name} is encoded as {codec}, which the pipeline does not decode; "
            "transcode it to a post-production codec (ProRes, DNxHD, H.264, PNG, EXR, DPX, PCM ...)"
        )


def _check_image_header(path: Path, max_pixels: int) -> None:
    # FFmpeg's probe of a still decodes it to learn its size: a tiny PNG declaring a huge canvas
    # would allocate it there. Pillow reads the header only.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                width, height = image.size
        except Image.DecompressionBombError:
            # Above Pillow's own ceiling (twice Image.MAX_IMAGE_PIXELS, about 179 MP).
            raise _too_large(path, "more than 179 MP", max_pixels) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            return  # not an image Pillow knows (movies, EXR, DPX): PyAV's stream size is checked
    if width * height > max_pixels:
        raise _too_large(path, f"{width}x{height}", max_pixels)


def _too_large(path: Path, size: str, max_pixels: int) -> MediaError:
    return MediaError(
        f"{path.name} declares a picture of {size} pixels, above the limit of {max_pixels / 1e6:g} MP "
        "(MEDIA_PIPELINE_MAX_PIXELS); scale it down before using it"
    )


_SNIFFED = (
    (re.compile(rb"^\s*(<\?xml|<svg|<!DOCTYPE|<[A-Za-z])"), "an XML document (a timeline, SVG image or manifest)"),
    (re.compile(rb"^\s*#EXTM3U"), "an HLS playlist"),
    (re.compile(rb"^\s*ffconcat"), "an FFmpeg concat list"),
)


def _refusal(path: Path, exc: av.FFmpegError) -> MediaError:
    """A sentence for a file FFmpeg would not open (or would open with a refused demuxer)."""
    import av

    with path.open("rb") as fh:
        head = fh.read(4096)
    if not head:
        return MediaError(f"{path.name} is empty, not a readable media file; re-export or re-copy it")
    kind = next((what for pattern, what in _SNIFFED if pattern.match(head.lstrip(b"\xef\xbb\xbf"))), None)
    if kind is None and _looks_like_text(head):
        kind = "a text file"
    if kind is not None:
        return MediaError(
            f"{path.name} is {kind}, not media: only video, audio and still image files are read; "
            "point the clip at the media file itself"
        )
    if isinstance(exc, av.ArgumentError):  # EINVAL: FFmpeg recognised it, as a format not allowed
        return MediaError(
            f"{path.name} is in a format the pipeline does not read; use MOV/MP4, MXF, MKV, AVI, WAV, AIFF, FLAC, "
            "MP3, AAC, or PNG, JPEG, TIFF, EXR, DPX, TGA, BMP, WebP stills"
        )
    return MediaError(
        f"{path.name} is not a readable media file (corrupt, truncated or not video); re-export or re-copy it",
        exc.strerror or "",
    )


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in text)
