"""What the media core raises: each `str()` is a sentence a user can act on."""

from __future__ import annotations


class FFmpegError(RuntimeError):
    """ffmpeg failed; `str()` is a sentence for a user, `stderr_tail` what ffmpeg said last."""

    def __init__(self, summary: str, stderr_tail: str = "", returncode: int | None = None):
        self.summary = summary
        self.stderr_tail = stderr_tail
        self.returncode = returncode
        detail = f" ffmpeg said: {stderr_tail.strip()}" if stderr_tail.strip() else ""
        super().__init__(f"{summary}.{detail}")


class MediaError(FFmpegError):
    """A media file is missing, unreadable, not media at all, or beyond the decoder limits."""


class Cancelled(FFmpegError):
    """The work was cancelled (the run was terminated); nothing it was writing was published."""
