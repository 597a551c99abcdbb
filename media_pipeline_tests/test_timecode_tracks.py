"""Timecode tracks of what the pipeline writes, read back from the files with ffmpeg."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
import sqlalchemy as sa

from media_pipeline.core.ffmpeg import probe
from media_pipeline.db.models import CutVersion, Render, Shot
from media_pipeline.editorial.assets.cuts import cut_shots, cut_timeline
from media_pipeline.editorial.assets.final_video import final_video
from media_pipeline.editorial.assets.proxies import shot_proxies
from media_pipeline.resources import DatabaseResource
from media_pipeline.samples import make_indexed_movie, read_index
from media_pipeline_tests.conftest import decode_frames, ingest, make_resources, publish

# Per rate: the media's own start timecode, the EDL events (source in/out, record in/out) and
# what must come out: each proxy's timecode (its first source frame), the final video's (the
# record side's first timecode), and the first frame index each proxy shows.
CASES = {
    "24": (
        Fraction(24),
        "01:00:00:00",
        None,
        [
            ("sh010", "01:00:01:10", "01:00:01:20", "01:00:00:00", "01:00:00:10"),
            ("sh020", "01:00:02:00", "01:00:02:06", "01:00:00:10", "01:00:00:16"),
        ],
        ["01:00:01:10", "01:00:02:00"],
        "01:00:00:00",
        [34, 48],  # 1 s 10 f and 2 s after the media's 01:00:00:00 at 24 fps
    ),
    # Drop-frame: 01:00:00;00 is frame 107892; 01:00:01;10 is 40 frames later.
    "29.97 DF": (
        Fraction(30000, 1001),
        "01:00:00;00",
        "DROP FRAME",
        [
            ("sh010", "01:00:01:10", "01:00:01:20", "01:00:00:00", "01:00:00:10"),
            ("sh020", "01:00:02:00", "01:00:02:06", "01:00:00:10", "01:00:00:16"),
        ],
        ["01:00:01;10", "01:00:02;00"],
        "01:00:00;00",
        [40, 60],
    ),
}


def write_edl(path: Path, media: Path, fcm: str | None, events: list[tuple[str, str, str, str, str]]) -> Path:
    lines = ["TITLE: timecode", *([f"FCM: {fcm}"] if fcm else []), ""]
    for number, (name, src_in, src_out, rec_in, rec_out) in enumerate(events, start=1):
        lines.append(f"{number:03d}  A001C003 V     C        {src_in} {src_out} {rec_in} {rec_out}")
        lines.append(f"* FROM CLIP NAME: {name}")
        lines.append(f"* FROM CLIP: {media}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_proxies_and_final_video_carry_the_timecode_the_edl_names(tmp_path, domain_url, artifact_root, instance, case):
    rate, media_tc, fcm, events, proxy_tcs, final_tc, first_frames = CASES[case]
    media = make_indexed_movie(tmp_path / "media" / "A001C003.mov", frames=120, rate=rate, start_timecode=media_tc)
    edl = write_edl(tmp_path / "reel.edl", media, fcm, events)
    key = publish(domain_url, artifact_root, edl, rate=rate)
    result = ingest(
        instance,
        key,
        make_resources(domain_url, artifact_root),
        selection=[cut_timeline, cut_shots, shot_proxies, final_video],
        run_config={
            "ops": {
                "shot_proxies": {"config": {"width": 160, "burn_ins": []}},
                "final_video": {"config": {"resolution": "160x90", "preset": "ultrafast", "audio": False}},
            }
        },
    )
    with DatabaseResource(url=domain_url).session() as session:
        renders = session.scalars(sa.select(Render).where(Render.run_id == result.run_id)).all()
        proxies = sorted((r for r in renders if r.kind == "proxy"), key=lambda r: r.details["index"])
        final = next(r for r in renders if r.kind == "final_video")
        cut = session.scalar(sa.select(CutVersion).where(CutVersion.partition_key == key))
        assert cut is not None and cut.options["global_start_frame"] == (107892 if "DF" in case else 86400)
        assert len(session.scalars(sa.select(Shot)).all()) == 2
    assert [probe(artifact_root / r.output_path).start_timecode for r in proxies] == proxy_tcs
    assert [r.details["timecode"] for r in proxies] == proxy_tcs
    assert [decode_index(artifact_root / r.output_path) for r in proxies] == first_frames
    assert probe(artifact_root / final.output_path).start_timecode == final_tc


def decode_index(path: Path) -> int:
    return read_index(decode_frames(path)[0])
