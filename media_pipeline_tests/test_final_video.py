"""The conformed final video: every output frame is the exact source frame the timeline names."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import dagster as dg
import opentimelineio as otio
import pytest
import sqlalchemy as sa
from PIL import Image

from media_pipeline import db
from media_pipeline.core import ffmpeg
from media_pipeline.db.models import Shot
from media_pipeline.editorial.assets.cuts import cut_shots, cut_timeline
from media_pipeline.editorial.assets.final_video import final_video
from media_pipeline.platform.run_progress import RunProgress
from media_pipeline.samples import make_indexed_movie, read_index
from media_pipeline_tests.conftest import decode_frames, ingest, make_resources, publish

W, H = 320, 180
A_BASE, B_BASE = 0, 20000  # frame N of movie A shows N, of movie B shows 20000 + N


def mean(image: Image.Image) -> float:
    data = image.getdata()
    return sum(data) / len(data)


def build(tmp_path: Path, rate: Fraction, start_tc: str):  # type: ignore[no-untyped-def]
    fr = float(rate)
    a = make_indexed_movie(tmp_path / "media" / "A.mov", frames=300, rate=rate, size=(W, H), start_timecode=start_tc)
    b = make_indexed_movie(
        tmp_path / "media" / "B.mov", frames=300, rate=rate, size=(W, H), start_timecode=start_tc, first_index=B_BASE
    )
    tc0 = otio.opentime.from_timecode(start_tc, fr).value

    def clip(name: str, media: Path | None, start: int, duration: int) -> otio.schema.Clip:
        ref = (
            otio.schema.ExternalReference(target_url=media.as_uri())
            if media
            else otio.schema.ExternalReference(target_url="file:///offline/C099.mov")
        )
        return otio.schema.Clip(
            name=name,
            media_reference=ref,
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(tc0 + start, fr), otio.opentime.RationalTime(duration, fr)
            ),
        )

    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    track.append(clip("a1", a, 10, 17))  # record 0..16
    track.append(otio.schema.Gap(duration=otio.opentime.RationalTime(5, fr)))  # 17..21 black
    track.append(clip("b1", b, 50, 20))  # 22..41, dissolve 38..45 into a2
    track.append(
        otio.schema.Transition(
            transition_type="SMPTE_Dissolve",
            in_offset=otio.opentime.RationalTime(4, fr),
            out_offset=otio.opentime.RationalTime(4, fr),
        )
    )
    track.append(clip("a2", a, 100, 24))  # 42..65
    track.append(clip("missing", None, 0, 6))  # 66..71 slate
    track.append(clip("b2", b, 299 - 11, 11))  # 72..82, ends on the media's last frame
    timeline = otio.schema.Timeline(name="conform")
    timeline.global_start_time = otio.opentime.from_timecode("01:00:00:00", fr)  # record timecode
    timeline.tracks.append(track)
    path = tmp_path / "conform.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path


EXPECTED_TOTAL = 83


def expected(frame: int) -> tuple[str, int | None]:
    if frame < 17:
        return "frame", A_BASE + 10 + frame
    if frame < 22:
        return "black", None
    if frame < 38:
        return "frame", B_BASE + 50 + (frame - 22)
    if frame < 46:
        return "dissolve", frame
    if frame < 66:
        return "frame", A_BASE + 100 + (frame - 42)
    if frame < 72:
        return "slate", None
    return "frame", B_BASE + 288 + (frame - 72)


CONFIG = {"resolution": f"{W}x{H}", "crf": 12, "preset": "ultrafast"}


@pytest.mark.parametrize(
    "rate, start_tc",
    [(Fraction(24), "01:00:00:00"), (Fraction(24000, 1001), "00:59:58:00"), (Fraction(30000, 1001), "10:00:00:00")],
    ids=["24", "23.976", "29.97"],
)
def test_every_output_frame_is_the_named_source_frame(tmp_path, domain_url, artifact_root, instance, rate, start_tc):
    key = publish(domain_url, artifact_root, build(tmp_path, rate, start_tc))
    result = ingest(
        instance,
        key,
        make_resources(domain_url, artifact_root),
        selection=[cut_timeline, cut_shots, final_video],
        run_config={"ops": {"final_video": {"config": CONFIG}}},
    )
    output = artifact_root / "cuts" / key / "final_video.mp4"
    info = ffmpeg.probe(output)
    assert info.rate == rate and (info.width, info.height) == (W, H)
    assert info.has_audio  # silence of the right length: the timeline has no audio tracks
    frames = decode_frames(output)
    assert len(frames) == EXPECTED_TOTAL  # duration to the frame
    for number, image in enumerate(frames):
        kind, value = expected(number)
        if kind == "frame":
            assert read_index(image) == value, f"output frame {number}"
        elif kind == "black":
            assert mean(image) < 20, f"gap frame {number} is not black"
        elif kind == "slate":
            assert 25 < mean(image) < 90, f"frame {number} is not the missing-media slate"
    # Mid-dissolve: bars where the two shots differ are blended to grey, not one shot or the other.
    mid = frames[42].convert("L")
    outgoing = B_BASE + 50 + (42 - 22)
    incoming = A_BASE + 100 + (42 - 42)
    assert read_index(frames[37]) == B_BASE + 50 + 15 and read_index(frames[46]) == A_BASE + 104
    differing = [bit for bit in range(16) if (outgoing >> bit) & 1 != (incoming >> bit) & 1]
    greys = [mid.getpixel((int((bit + 0.5) * 160 / 16), 45)) for bit in differing]
    assert all(60 < g < 195 for g in greys), greys
    metadata = result.asset_materializations_for_node("final_video")[0].metadata
    assert metadata["frames"].value == EXPECTED_TOTAL
    assert metadata["start_timecode"].value == "01:00:00:00"


def test_only_changed_segments_are_encoded_again(tmp_path, domain_url, artifact_root, instance):
    resources = make_resources(domain_url, artifact_root)
    first = publish(domain_url, artifact_root, build(tmp_path, Fraction(24), "01:00:00:00"), name="edit")
    run = {"ops": {"final_video": {"config": CONFIG}}}
    one = ingest(instance, first, resources, selection=[cut_timeline, cut_shots, final_video], run_config=run)
    assert one.asset_materializations_for_node("final_video")[0].metadata["segments_reused"].value == 0
    # Version 2: the last shot is trimmed by two frames at its head; everything else is unchanged.
    timeline = otio.adapters.read_from_file(str(tmp_path / "conform.otio"))
    last = timeline.tracks[0][-1]
    last.source_range = otio.opentime.TimeRange(
        last.source_range.start_time + otio.opentime.RationalTime(2, 24),
        last.source_range.duration - otio.opentime.RationalTime(2, 24),
    )
    v2 = tmp_path / "v2" / "edit.otio"
    v2.parent.mkdir()
    otio.adapters.write_to_file(timeline, str(v2))
    second = publish(domain_url, artifact_root, v2, name="edit")
    two = ingest(instance, second, resources, selection=[cut_timeline, cut_shots, final_video], run_config=run)
    metadata = two.asset_materializations_for_node("final_video")[0].metadata
    assert (metadata["segments_encoded"].value, metadata["frames"].value) == (1, EXPECTED_TOTAL - 2)
    frames = decode_frames(artifact_root / "cuts" / second / "final_video.mp4")
    assert read_index(frames[72]) == B_BASE + 290


def test_invalid_encode_options_fail_with_a_sentence(tmp_path, domain_url, artifact_root, instance):
    key = publish(domain_url, artifact_root, build(tmp_path, Fraction(24), "01:00:00:00"))
    result = ingest(
        instance,
        key,
        make_resources(domain_url, artifact_root),
        raise_on_error=False,
        selection=[cut_timeline, cut_shots, final_video],
        run_config={"ops": {"final_video": {"config": {"resolution": "641x360", "crf": 99, "preset": "quick"}}}},
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    text = failure.step_failure_data.user_failure_data.description
    assert "resolution must be even" in text and "crf must be between 0 and 51" in text and "preset must be" in text


def test_audio_tracks_are_conformed_at_their_record_positions(tmp_path, domain_url, artifact_root, instance):
    fr = 24.0
    tone = make_indexed_movie(tmp_path / "media" / "tone.mov", frames=96, rate=Fraction(24), size=(W, H), audio=True)
    picture = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    picture.append(
        otio.schema.Clip(
            name="p",
            media_reference=otio.schema.ExternalReference(target_url=tone.as_uri()),
            source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, fr), otio.opentime.RationalTime(72, fr)),
        )
    )
    sound = otio.schema.Track(kind=otio.schema.TrackKind.Audio)
    sound.append(otio.schema.Gap(duration=otio.opentime.RationalTime(24, fr)))  # 1 s of silence first
    sound.append(
        otio.schema.Clip(
            name="s",
            media_reference=otio.schema.ExternalReference(target_url=tone.as_uri()),
            source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, fr), otio.opentime.RationalTime(24, fr)),
        )
    )
    timeline = otio.schema.Timeline(name="sound")
    timeline.tracks.extend([picture, sound])
    path = tmp_path / "sound.otio"
    otio.adapters.write_to_file(timeline, str(path))
    key = publish(domain_url, artifact_root, path)
    ingest(
        instance,
        key,
        make_resources(domain_url, artifact_root),
        selection=[cut_timeline, cut_shots, final_video],
        run_config={"ops": {"final_video": {"config": CONFIG}}},
    )
    pcm = subprocess.run(
        [
            ffmpeg.ffmpeg_exe(),
            "-v",
            "error",
            "-i",
            str(artifact_root / "cuts" / key / "final_video.mp4"),
            "-map",
            "0:a",
            "-ac",
            "1",
            "-ar",
            "8000",
            "-f",
            "s16le",
            "-",
        ],
        capture_output=True,
        check=True,
    ).stdout
    samples = [int.from_bytes(pcm[i : i + 2], "little", signed=True) for i in range(0, len(pcm), 2)]

    def loudness(start: float, end: float) -> float:
        window = samples[int(start * 8000) : int(end * 8000)]
        return max(abs(v) for v in window)

    assert abs(len(samples) / 8000 - 3.0) < 0.05  # the timeline's length
    assert loudness(0.1, 0.9) < 50  # silence before the clip
    assert loudness(1.1, 1.9) > 3000  # the tone at its record position
    assert loudness(2.2, 2.9) < 50  # silence after


def test_chunk_steps_give_the_same_file_as_one_step(tmp_path, domain_url, artifact_root, instance, monkeypatch):
    # Cached segments are content-addressed: a second artifact root makes the chunked run encode
    # everything again instead of reusing the first run's files.
    chunked_root = tmp_path / "chunked" / "artifacts"
    source = build(tmp_path, Fraction(24), "01:00:00:00")
    run = {"ops": {"final_video": {"config": CONFIG}}}
    selection = [cut_timeline, cut_shots, final_video]
    one_key = publish(domain_url, artifact_root, source, name="one")
    one = ingest(instance, one_key, make_resources(domain_url, artifact_root), selection=selection, run_config=run)
    monkeypatch.setenv("MEDIA_PIPELINE_CHUNK_SEGMENTS", "2")
    key = publish(domain_url, chunked_root, source, name="chunked")
    chunked = ingest(instance, key, make_resources(domain_url, chunked_root), selection=selection, run_config=run)
    steps = {event.step_key for event in chunked.all_events if event.is_step_success}
    segments = one.asset_materializations_for_node("final_video")[0].metadata["segments_encoded"].value
    assert segments >= 6
    chunks = {step for step in steps if step.startswith("final_video.final_video_chunk[")}
    assert len(chunks) == (segments + 1) // 2  # the encodes were spread over chunk steps
    assert one.asset_materializations_for_node("final_video")[0].metadata["chunks"].value == 1
    # The job's progress adds the chunks' frames up, against the plan's total, item by item.
    fold = RunProgress({"final_video": 1.0})
    seen = []
    for entry in instance.all_logs(chunked.run_id):
        if entry.dagster_event is None or entry.dagster_event.event_type != dg.DagsterEventType.RUN_SUCCESS:
            fold.apply(entry)
            seen.append(fold.progress(dg.DagsterRunStatus.STARTED))
            if fold.started and "final_video" in fold.started:
                assert fold.stage(dg.DagsterRunStatus.STARTED) == "final_video"
    assert fold.done_of("final_video") == fold.total["final_video"] > 0
    # Outputs handed between the steps are loaded from server paths: never in the job's log.
    server_paths = (str(tmp_path), instance.root_directory)
    assert fold.logs and not any(path in line.msg for line in fold.logs for path in server_paths)
    assert any(0 < value < 0.99 for value in seen) and seen[-1] == 0.99
    assert {item.status for item in fold.items.values()} == {"succeeded"} and len(fold.items) == segments
    a = decode_frames(artifact_root / "cuts" / one_key / "final_video.mp4")
    b = decode_frames(chunked_root / "cuts" / key / "final_video.mp4")
    assert len(a) == len(b) == EXPECTED_TOTAL
    assert [read_index(x) for x in a[:17]] == [read_index(x) for x in b[:17]]
    assert all(x.tobytes() == y.tobytes() for x, y in zip(a, b, strict=True))  # the same pixels


def outside_cut(tmp_path: Path, shots: int, frames: int) -> Path:
    """Shots at 01:00:00:00 of a plate that starts at 00:00:00:00: linked, but outside their media.
    Every shot names the same frames, so every segment is the same one."""
    fr = 24.0
    plate = make_indexed_movie(tmp_path / "media" / "late.mov", frames=48, rate=Fraction(24), size=(W, H))
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    for number in range(shots):
        track.append(
            otio.schema.Clip(
                name=f"sh{number:03d}",
                media_reference=otio.schema.ExternalReference(target_url=plate.as_uri()),
                source_range=otio.opentime.TimeRange(
                    otio.opentime.from_timecode("01:00:00:00", fr), otio.opentime.RationalTime(frames, fr)
                ),
            )
        )
    timeline = otio.schema.Timeline(name="outside")
    timeline.tracks.append(track)
    path = tmp_path / "outside.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path


def audio_samples(path: Path) -> int:
    """Samples of the first audio stream as ffmpeg decodes it (the AAC priming and end padding
    trimmed by the MP4 edit list, as players do)."""
    command = [ffmpeg.ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1", "-f", "s16le", "-"]
    return len(subprocess.run(command, capture_output=True, check=True).stdout) // 2


@pytest.mark.parametrize("audio", [True, False], ids=["audio", "no-audio"])
def test_a_cut_of_identical_segments_outside_their_media_is_slates_of_its_length(
    tmp_path, domain_url, artifact_root, instance, audio
):
    # Eight shots, one segment encoded and seven reused; each decodes to no picture at all. The
    # join used to fail ("Stream map '' matches no streams" with audio, "Output file does not
    # contain any stream" without): the concat list named only empty files.
    key = publish(domain_url, artifact_root, outside_cut(tmp_path, shots=8, frames=12))
    result = ingest(
        instance,
        key,
        make_resources(domain_url, artifact_root),
        selection=[cut_timeline, cut_shots, final_video],
        run_config={"ops": {"final_video": {"config": {**CONFIG, "audio": audio}}}},
    )
    metadata = result.asset_materializations_for_node("final_video")[0].metadata
    assert (metadata["segments"].value, metadata["segments_reused"].value) == (8, 7)
    assert metadata["segments_padded"].value == 8
    output = artifact_root / "cuts" / key / "final_video.mp4"
    frames = decode_frames(output)
    assert len(frames) == 8 * 12
    assert all(25 < mean(image) < 90 for image in frames), "every frame is the slate"
    info = ffmpeg.probe(output)
    assert info.has_audio == audio
    if audio:
        # The timeline has no audio track and the plate no sound: silence, to the sample.
        assert audio_samples(output) == 8 * 12 * 48000 // 24


def test_a_segment_short_of_its_frames_is_padded_with_a_slate_and_never_cached(
    tmp_path, domain_url, artifact_root, instance
):
    fr = 24.0
    plate = make_indexed_movie(
        tmp_path / "media" / "A.mov", frames=96, rate=Fraction(24), size=(W, H), start_timecode="01:00:00:00"
    )
    other = make_indexed_movie(tmp_path / "media" / "B.mov", frames=24, rate=Fraction(24), size=(W, H))
    tc0 = otio.opentime.from_timecode("01:00:00:00", fr).value

    def clip(name: str, media: Path, start: int, duration: int) -> otio.schema.Clip:
        return otio.schema.Clip(
            name=name,
            media_reference=otio.schema.ExternalReference(target_url=media.as_uri()),
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(tc0 + start, fr), otio.opentime.RationalTime(duration, fr)
            ),
        )

    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    track.append(clip("whole", plate, 0, 12))  # record 0..11
    track.append(clip("ends_early", plate, 90, 12))  # 12..17 the plate's last 6 frames, 18..23 missing
    track.append(clip("outside", other, 4, 10))  # 24..33: B starts at 00:00:00:00, so none of it exists
    timeline = otio.schema.Timeline(name="short")
    timeline.tracks.append(track)
    path = tmp_path / "short.otio"
    otio.adapters.write_to_file(timeline, str(path))
    key = publish(domain_url, artifact_root, path)
    resources = make_resources(domain_url, artifact_root)
    run = {"ops": {"final_video": {"config": {**CONFIG, "audio": False}}}}
    result = ingest(instance, key, resources, selection=[cut_timeline, cut_shots, final_video], run_config=run)

    frames = decode_frames(artifact_root / "cuts" / key / "final_video.mp4")
    assert len(frames) == 34  # not 18: the missing frames are there, as slates
    assert [read_index(frames[n]) for n in range(18)] == [*range(12), *range(90, 96)]
    assert all(25 < mean(frames[n]) < 90 for n in range(18, 34)), "the missing frames are the slate"
    metadata = result.asset_materializations_for_node("final_video")[0].metadata
    assert metadata["segments_padded"].value == 2
    report = metadata["not_rendered"].value
    assert "'ends_early' got 6 of its 12 frames" in report and "'outside' got 0 of its 10 frames" in report
    with db.session_scope(domain_url) as session:
        notes = {shot.name: shot.notes for shot in session.scalars(sa.select(Shot))}
    assert not any("final video:" in note for note in notes["whole"])
    assert any("got 6 of its 12 frames" in note for note in notes["ends_early"])
    assert any("got 0 of its 10 frames" in note for note in notes["outside"])

    # Nothing short was cached: a second render encodes both again, and notes are not repeated.
    again = ingest(instance, key, resources, selection=[final_video], run_config=run)
    metadata = again.asset_materializations_for_node("final_video")[0].metadata
    assert (metadata["segments_encoded"].value, metadata["segments_reused"].value) == (2, 1)
    assert len(decode_frames(artifact_root / "cuts" / key / "final_video.mp4")) == 34
    with db.session_scope(domain_url) as session:
        shot = session.scalars(sa.select(Shot).where(Shot.name == "ends_early")).one()
        assert sum("final video:" in note for note in shot.notes) == 1
