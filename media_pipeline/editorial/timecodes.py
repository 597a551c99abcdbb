"""Which timecode each of a cut's frame numbers has: record side from the timeline's start,
source side as the timeline (and the media's own timecode track) name it, drop-frame where the
file said so.
"""

from __future__ import annotations

from fractions import Fraction

from media_pipeline.core.timecode import DROP_FRAME_RATES, is_drop_frame, to_timecode
from media_pipeline.db.models import CutVersion, Shot


def cut_rate(cut: CutVersion) -> Fraction:
    return Fraction(cut.rate or "24")


def cut_drop_frame(cut: CutVersion) -> bool:
    """The cut's timecode is drop-frame: the timeline file said so (EDL `FCM: DROP FRAME` or `;`)."""
    return bool((cut.options or {}).get("drop_frame")) and cut_rate(cut) in DROP_FRAME_RATES


def record_origin(cut: CutVersion) -> int:
    """The frame number of the timeline's first frame (01:00:00:00 is 86400 at 24 fps)."""
    return int((cut.options or {}).get("global_start_frame") or 0)


def source_drop_frame(shot: Shot, cut: CutVersion) -> bool:
    """Source timecode is drop-frame where the media's timecode track is (`;`), or, without one,
    where the timeline's is and the source runs at the timeline's rate."""
    rate = Fraction(shot.source_rate)
    if rate not in DROP_FRAME_RATES:
        return False
    media_timecode = (shot.details or {}).get("start_timecode")
    if media_timecode:
        return is_drop_frame(str(media_timecode))
    return cut_drop_frame(cut) and rate == cut_rate(cut)


def record_timecode(shot: Shot, cut: CutVersion, offset: int = 0) -> str:
    return to_timecode(record_origin(cut) + shot.record_start + offset, cut_rate(cut), cut_drop_frame(cut))


def source_timecode(shot: Shot, cut: CutVersion, offset: int = 0) -> str:
    rate = Fraction(shot.source_rate)
    return to_timecode(shot.source_start + offset, rate, source_drop_frame(shot, cut))
