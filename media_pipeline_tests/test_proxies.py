"""Review proxies: exact frames with handles clamped to the media, burn-ins, filmstrips, reuse."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import sqlalchemy as sa
from PIL import Image

from media_pipeline.core import ffmpeg
from media_pipeline.db.models import Render
from media_pipeline.editorial.assets.cuts import cut_shots, cut_timeline
from media_pipeline.editorial.assets.proxies import shot_proxies
from media_pipeline.resources import DatabaseResource
from media_pipeline.samples import make_indexed_movie, read_index
from media_pipeline_tests.conftest import decode_frames, ingest, make_resources, publish

NASTY = "sh010 it's: [a,b];c\\ 50% {x} 'quoted' %{pts}"


def cut_with(tmp_path: Path, movie: Path, clips: list[tuple[str, int, int]]) -> Path:
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    for name, start, duration in clips:
        track.append(
            otio.schema.Clip(
                name=name,
                media_reference=otio.schema.ExternalReference(target_url=movie.as_uri()),
                source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(start, 24), otio.opentime.RationalTime(duration, 24)
                ),
            )
        )
    timeline = otio.schema.Timeline(name="p")
    timeline.tracks.append(track)
    path = tmp_path / "proxies.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path


def proxies(url: str, run_id: str) -> dict[str, Render]:
    with DatabaseResource(url=url).session() as session:
        rows = session.scalars(sa.select(Render).where(Render.kind == "proxy", Render.run_id == run_id)).all()
    return {row.details["name"]: row for row in rows}


def test_proxies_have_exact_frames_handles_clamped_and_burn_ins(tmp_path, domain_url, artifact_root, instance):
    # Burn-ins drawn at the bottom/top corners would corrupt the frame bars; a tall frame keeps
    # them clear of the middle row read_index samples.
    movie = make_indexed_movie(tmp_path / "media" / "plate.mov", frames=120, rate=Fraction(24), size=(320, 320))
    key = publish(domain_url, artifact_root, cut_with(tmp_path, movie, [(NASTY, 3, 10), ("late", 100, 15)]))
    config = {
        "width": 320,
        "handles": 6,
        "crf": 12,
        "preset": "ultrafast",
        "burn_ins": ["shot_name", "source_timecode", "frame_number", "cut_version"],
    }
    result = ingest(
        instance,
        key,
        make_resources(domain_url, artifact_root),
        selection=[cut_timeline, cut_shots, shot_proxies],
        run_config={"ops": {"shot_proxies": {"config": config}}},
    )
    made = proxies(domain_url, result.run_id)
    first = made[NASTY]
    assert (first.details["head"], first.details["tail"]) == (3, 6)  # only 3 frames exist before frame 3
    frames = decode_frames(artifact_root / first.output_path)
    assert [read_index(f) for f in frames] == list(range(0, 19))
    last = made["late"]
    assert (last.details["head"], last.details["tail"]) == (6, 5)  # the media ends at frame 119
    assert [read_index(f) for f in decode_frames(artifact_root / last.output_path)] == list(range(94, 120))
    info = ffmpeg.probe(artifact_root / last.output_path)
    assert (info.width, info.height) == (320, 320) and info.codec == "h264"
    strip = Image.open((artifact_root / last.output_path).with_suffix(".filmstrip.jpg"))
    assert strip.width > 3 * strip.height
    metadata = result.asset_materializations_for_node("shot_proxies")[0].metadata
    assert (metadata["encoded"].value, metadata["reused"].value) == (2, 0)


def test_burn_ins_are_drawn_and_tagged_bt709_with_faststart(tmp_path, domain_url, artifact_root, instance):
    movie = make_indexed_movie(tmp_path / "media" / "plate.mov", frames=60, rate=Fraction(24000, 1001))
    key = publish(domain_url, artifact_root, cut_with(tmp_path, movie, [("sh010", 5, 12)]))
    resources = make_resources(domain_url, artifact_root)
    plain = ingest(
        instance,
        key,
        resources,
        selection=[cut_timeline, cut_shots, shot_proxies],
        run_config={"ops": {"shot_proxies": {"config": {"width": 320, "burn_ins": [], "crf": 12}}}},
    )
    burnt = ingest(
        instance,
        key,
        resources,
        selection=[shot_proxies],
        run_config={"ops": {"shot_proxies": {"config": {"width": 320, "crf": 12}}}},
    )
    a = decode_frames(artifact_root / proxies(domain_url, plain.run_id)["sh010"].output_path)[0]
    b = decode_frames(artifact_root / proxies(domain_url, burnt.run_id)["sh010"].output_path)[0]
    corner = (0, 80, 40, 90)  # bottom-left: the source timecode box
    assert a.crop(corner).tobytes() != b.crop(corner).tobytes()
    path = artifact_root / proxies(domain_url, burnt.run_id)["sh010"].output_path
    report = subprocess.run(
        [ffmpeg.ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    ).stderr
    assert "bt709" in report and "yuv420p" in report
    head = path.read_bytes()[:4096]
    assert head.find(b"moov") != -1 and head.find(b"moov") < max(head.find(b"mdat"), 4096)  # +faststart


def test_unchanged_proxies_are_reused(tmp_path, domain_url, artifact_root, instance):
    movie = make_indexed_movie(tmp_path / "media" / "plate.mov", frames=60, rate=Fraction(24))
    key = publish(domain_url, artifact_root, cut_with(tmp_path, movie, [("a", 0, 10), ("b", 20, 10)]))
    resources = make_resources(domain_url, artifact_root)
    run = {"ops": {"shot_proxies": {"config": {"width": 160}}}}
    ingest(instance, key, resources, selection=[cut_timeline, cut_shots, shot_proxies], run_config=run)
    again = ingest(instance, key, resources, selection=[shot_proxies], run_config=run)
    metadata = again.asset_materializations_for_node("shot_proxies")[0].metadata
    assert (metadata["encoded"].value, metadata["reused"].value) == (0, 2)
