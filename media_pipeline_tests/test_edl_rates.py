"""EDLs cut at NTSC rates, drop-frame and not: exact shots, frame maths checked by hand here."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
import sqlalchemy as sa

from media_pipeline.core.timecode import from_timecode, parse_rate, to_timecode
from media_pipeline.db.models import CutVersion, Shot
from media_pipeline.editorial.assets.cuts import cut_shots, cut_timeline
from media_pipeline.editorial.shots import extract_shots
from media_pipeline.editorial.timeline import ReadOptions, TimelineError, drop_frame_of, read_timeline
from media_pipeline.resources import DatabaseResource
from media_pipeline_tests.conftest import ingest, make_resources, publish


def edl(path: Path, events: list[tuple[str, str, str, str, str]], fcm: str | None = None) -> Path:
    """Write an EDL by hand: (clip name, source in, source out, record in, record out) per event."""
    lines = ["TITLE: rates", *([f"FCM: {fcm}"] if fcm else []), ""]
    for number, (name, src_in, src_out, rec_in, rec_out) in enumerate(events, start=1):
        lines.append(f"{number:03d}  A{number:03d}C001 V     C        {src_in} {src_out} {rec_in} {rec_out}")
        lines.append(f"* FROM CLIP NAME: {name}")
    path.write_text("\n".join(lines) + "\n")
    return path


# Each case: the rate as a user gives it, the EDL, and what the shots must be, worked out by hand:
# (name, record_start, record_duration, source_start, source_duration) with the timeline's first
# frame and its exact rate.
CASES = {
    # 23.976 counts 24 frames a second: 01:00:10:00 is (3600 + 10) * 24 = 86640; 01:00:00:00 is 86400.
    "23.976": (
        "23.976",
        None,
        [
            ("sh010", "01:00:10:00", "01:00:12:12", "01:00:00:00", "01:00:02:12"),
            ("sh020", "02:00:00:23", "02:00:01:00", "01:00:02:12", "01:00:02:13"),
        ],
        Fraction(24000, 1001),
        86400,
        [("sh010", 0, 60, 86640, 60), ("sh020", 60, 1, 7200 * 24 + 23, 1)],
    ),
    "24000/1001 text": (
        "24000/1001",
        None,
        [("sh010", "00:00:01:00", "00:00:02:00", "00:59:59:00", "01:00:00:00")],
        Fraction(24000, 1001),
        3599 * 24,
        [("sh010", 0, 24, 24, 24)],
    ),
    # 29.97 non-drop counts 30 a second, no frame numbers skipped: 01:00:00:00 is 108000, and
    # 00:00:59:28 -> 00:01:00:04 is 6 frames (28, 29, 00, 01, 02, 03).
    "29.97 NDF": (
        "29.97",
        "NON-DROP FRAME",
        [("sh010", "00:00:59:28", "00:01:00:04", "01:00:00:00", "01:00:00:06")],
        Fraction(30000, 1001),
        108000,
        [("sh010", 0, 6, 59 * 30 + 28, 6)],
    ),
    # 29.97 drop-frame declared by FCM with colon timecodes: frames ;00 and ;01 do not exist at
    # each minute but every tenth. 00:00:59;28 -> 00:01:00;04 is 4 frames (28, 29, 02, 03).
    # 01:00:00;00 is 108000 - 2 * (60 - 6) = 107892; 01:00:10;00 is 108300 - 108 = 108192.
    "29.97 DF by FCM": (
        "29.97",
        "DROP FRAME",
        [
            ("sh010", "00:00:59:28", "00:01:00:04", "01:00:00:00", "01:00:00:04"),
            ("sh020", "01:00:10:00", "01:00:11:00", "01:00:00:04", "01:00:01:04"),
        ],
        Fraction(30000, 1001),
        107892,
        [("sh010", 0, 4, 1798, 4), ("sh020", 4, 30, 108192, 30)],
    ),
    # The same drop-frame, written with semicolons and no FCM line; the rate as exact text.
    "29.97 DF by semicolons": (
        "30000/1001",
        None,
        [
            ("sh010", "00:00:59;28", "00:01:00;04", "01:00:00;00", "01:00:00;04"),
            # 00:10:00;00 is a tenth minute: nothing is dropped there, so ;29 -> ;01 is 2 frames.
            ("sh020", "00:09:59;29", "00:10:00;01", "01:00:00;04", "01:00:00;06"),
        ],
        Fraction(30000, 1001),
        107892,
        [("sh010", 0, 4, 1798, 4), ("sh020", 4, 2, 10 * 60 * 30 - 2 * 9 - 1, 2)],
    ),
    # 47.952 counts 48 a second: 01:00:00:00 is 172800; 00:00:10:47 is 527.
    "47.952": (
        "47.952",
        None,
        [("sh010", "00:00:10:47", "00:00:12:00", "01:00:00:00", "01:00:01:01")],
        Fraction(48000, 1001),
        172800,
        [("sh010", 0, 49, 527, 49)],
    ),
    # 59.94 non-drop counts 60: 00:00:59:58 -> 00:01:00:04 is 6 frames.
    "59.94 NDF": (
        "59.94",
        "NON-DROP FRAME",
        [("sh010", "00:00:59:58", "00:01:00:04", "01:00:00:00", "01:00:00:06")],
        Fraction(60000, 1001),
        216000,
        [("sh010", 0, 6, 59 * 60 + 58, 6)],
    ),
    # 59.94 drop-frame skips four frame numbers a minute (but every tenth): 00:00:59;58 ->
    # 00:01:00;06 is 58, 59, 04, 05 = 4 frames; 01:00:00;00 is 216000 - 4 * 54 = 215784.
    "59.94 DF": (
        "59.94",
        "DROP FRAME",
        [("sh010", "00:00:59:58", "00:01:00:06", "01:00:00:00", "01:00:00:04")],
        Fraction(60000, 1001),
        215784,
        [("sh010", 0, 4, 59 * 60 + 58, 4)],
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_edls_at_ntsc_rates_give_exact_shots(tmp_path: Path, case: str) -> None:
    rate_text, fcm, events, rate, start, expected = CASES[case]
    path = edl(tmp_path / "reel.edl", events, fcm)
    result = read_timeline(path, ReadOptions(rate=parse_rate(rate_text)))
    shot_list = extract_shots(result.timeline)
    assert shot_list.rate == rate
    assert shot_list.global_start_frame == start
    got = [(s.name, s.record_start, s.record_duration, s.source_start, s.source_duration) for s in shot_list.shots]
    assert got == expected
    assert all(s.source_rate == rate for s in shot_list.shots)
    assert drop_frame_of(result.timeline) == (" DF" in case)


def test_timecode_round_trips_at_every_rate() -> None:
    assert to_timecode(107892, Fraction(30000, 1001), drop_frame=True) == "01:00:00;00"
    assert to_timecode(1800, Fraction(30000, 1001), drop_frame=True) == "00:01:00;02"
    assert to_timecode(215784, Fraction(60000, 1001), drop_frame=True) == "01:00:00;00"
    assert to_timecode(86400, Fraction(24000, 1001)) == "01:00:00:00"
    assert to_timecode(-1, Fraction(25)) == "-00:00:00:01"
    for rate in (Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(48000, 1001),
                 Fraction(60000, 1001), Fraction(15)):  # fmt: skip
        drop = rate in (Fraction(30000, 1001), Fraction(60000, 1001))
        for frame in (0, 1, 1799, 1800, 17982, 107892, 215784):
            assert from_timecode(to_timecode(frame, rate, drop), rate) == frame


@pytest.mark.parametrize(
    ("rate", "words"),
    [("25", ["drop-frame", "rate=29.97"]), ("abc", ["not a number", "23.976"]), ("0", ["out of range"])],
)
def test_a_wrong_rate_is_refused_with_a_sentence(tmp_path: Path, rate: str, words: list[str]) -> None:
    path = edl(tmp_path / "df.edl", CASES["29.97 DF by FCM"][2], "DROP FRAME")
    with pytest.raises((TimelineError, ValueError)) as caught:
        read_timeline(path, ReadOptions(rate=parse_rate(rate)))
    for word in words:
        assert word in str(caught.value)


def test_a_drop_frame_edl_is_ingested_with_exact_rates_and_timecodes(tmp_path, domain_url, artifact_root, instance):
    path = edl(tmp_path / "df_reel.edl", CASES["29.97 DF by FCM"][2], "DROP FRAME")
    key = publish(domain_url, artifact_root, path, rate=parse_rate("29.97"))
    result = ingest(instance, key, make_resources(domain_url, artifact_root), selection=[cut_timeline, cut_shots])
    with DatabaseResource(url=domain_url).session() as session:
        cut = session.scalar(sa.select(CutVersion).where(CutVersion.partition_key == key))
        shots = list(session.scalars(sa.select(Shot).order_by(Shot.index)))
        assert cut is not None
        assert cut.rate == "30000/1001"
        assert cut.options["drop_frame"] is True
        assert cut.options["rate"] == "30000/1001"
    assert [(s.source_rate, s.source_start, s.source_duration) for s in shots] == [
        ("30000/1001", 1798, 4),
        ("30000/1001", 108192, 30),
    ]
    # The Dagster UI's shot table shows drop-frame timecodes beside the frame numbers.
    table = result.asset_materializations_for_node("cut_shots")[0].metadata["shots"]
    rows = [record.data for record in table.records]  # type: ignore[attr-defined]
    assert [(r["record_in"], r["record_out"], r["source_in"], r["frames"]) for r in rows] == [
        ("01:00:00;00", "01:00:00;04", "00:00:59;28", 4),
        ("01:00:00;04", "01:00:01;04", "01:00:10;00", 30),
    ]
