"""Media confinement: media is read only from inside the media roots, and a shot's note never
tells whether a file outside them exists."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from PIL import Image

from media_pipeline.db.models import CutVersion, Shot
from media_pipeline.editorial.media import MAX_REQUESTED_ROOTS, MediaRootError, confine_roots
from media_pipeline.resources import DatabaseResource
from media_pipeline.samples import make_indexed_movie, read_index
from media_pipeline_tests.conftest import ingest, make_resources, publish
from media_pipeline_tests.test_api_support import *  # noqa: F403  (fixtures)
from media_pipeline_tests.test_api_support import AUTH, assert_problem, upload
from media_pipeline_tests.test_editorial import THUMBS, clip, write_cut


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """A media root with one movie, and a private folder outside it with a secret picture."""
    root, private = tmp_path / "media", tmp_path / "private"
    make_indexed_movie(root / "plate.mov", frames=48, rate=Fraction(24), size=(160, 90))
    make_indexed_movie(private / "secret.mov", frames=48, rate=Fraction(24), size=(160, 90))
    return {"root": root, "private": private, "cuts": tmp_path / "cuts"}


def shots(url: str) -> dict[str, Shot]:
    with DatabaseResource(url=url).session() as session:
        return {shot.name: shot for shot in session.scalars(sa.select(Shot))}


def ingest_confined(url, artifact_root, instance, layout, clips, **publish_options) -> dict[str, Shot]:
    cut = write_cut(layout["cuts"] / "cut.otio", clips)
    key = publish(url, artifact_root, cut, **publish_options)
    result = ingest(instance, key, make_resources(url, artifact_root, [layout["root"]]), run_config=THUMBS)
    assert result.success
    return shots(url)


def test_a_file_outside_the_roots_is_missing_with_the_same_note_whether_or_not_it_exists(
    domain_url, artifact_root, instance, layout
):
    private = layout["private"]
    found = ingest_confined(
        domain_url,
        artifact_root,
        instance,
        layout,
        [
            clip("inside", str(layout["root"] / "plate.mov"), 0, 10),
            clip("exists", str(private / "secret.mov"), 0, 10),
            clip("absent", str(private / "nothing.mov"), 0, 10),
            clip("dotdot", str(layout["root"] / ".." / "private" / "secret.mov"), 0, 10),
        ],
    )
    assert found["inside"].media_status == "linked"
    for name in ("exists", "absent", "dotdot"):
        assert found[name].media_status == "missing" and found[name].media_path is None
    exists, absent = found["exists"].notes[-1], found["absent"].notes[-1]
    assert exists.replace("secret.mov", "X") == absent.replace("nothing.mov", "X")
    assert "MEDIA_PIPELINE_MEDIA_ROOTS" in exists and str(private) in exists  # which folder to add


def test_relative_paths_cannot_climb_out_of_the_timeline_folder(domain_url, artifact_root, instance, layout):
    # The cut sits inside the media root (a watch folder would): ../.. leaves it.
    layout["cuts"] = layout["root"] / "cuts"
    found = ingest_confined(
        domain_url,
        artifact_root,
        instance,
        layout,
        [
            clip("near", "../plate.mov", 0, 10),
            clip("climb", "../../private/secret.mov", 0, 10),
        ],
    )
    assert found["near"].media_status == "linked"
    assert found["climb"].media_status == "missing"


def test_a_link_inside_a_root_pointing_out_is_not_followed(domain_url, artifact_root, instance, layout):
    (layout["root"] / "innocent.mov").symlink_to(layout["private"] / "secret.mov")
    (layout["root"] / "dir_link").symlink_to(layout["private"], target_is_directory=True)
    found = ingest_confined(
        domain_url,
        artifact_root,
        instance,
        layout,
        [
            clip("link", str(layout["root"] / "innocent.mov"), 0, 10),
            clip("through_dir", str(layout["root"] / "dir_link" / "secret.mov"), 0, 10),
            # Relinking by name: the only "secret.mov" in reach is behind the folder link.
            clip("by_name", "/elsewhere/secret.mov", 0, 10),
        ],
    )
    for name in ("link", "through_dir", "by_name"):
        assert found[name].media_status == "missing", (name, found[name].notes)


def test_relinking_by_name_finds_media_inside_the_roots(domain_url, artifact_root, instance, layout):
    found = ingest_confined(domain_url, artifact_root, instance, layout, [clip("moved", "D:\\old\\plate.mov", 5, 10)])
    moved = found["moved"]
    assert moved.media_status == "linked" and moved.media_frame == 5
    assert any("relinked by file name" in note and "plate.mov in media root media" in note for note in moved.notes)
    assert str(layout["root"]) not in " ".join(moved.notes)  # no server path in what clients see


def test_requested_media_roots_must_lie_inside_the_allowed_roots(tmp_path):
    allowed = [tmp_path / "media"]
    (tmp_path / "media" / "show").mkdir(parents=True)
    spellings = [f"{tmp_path}/media/show", f"{tmp_path}/media/show/", f"{tmp_path}/media/x/../show"]
    assert confine_roots(spellings, allowed) == [tmp_path / "media" / "show"]
    with pytest.raises(MediaRootError, match="would search the whole filesystem"):
        confine_roots(["/"], allowed)
    with pytest.raises(MediaRootError, match="outside the folders media may be read from"):
        confine_roots(["/etc"], allowed)
    with pytest.raises(MediaRootError, match="outside the folders"):
        confine_roots([f"{tmp_path}/media/../private"], allowed)
    with pytest.raises(MediaRootError, match="not an absolute folder path"):
        confine_roots(["media"], allowed)
    many = [f"{tmp_path}/media/r{i}" for i in range(MAX_REQUESTED_ROOTS + 1)]
    with pytest.raises(MediaRootError, match=f"at most {MAX_REQUESTED_ROOTS}"):
        confine_roots(many, allowed)
    assert len(confine_roots(many[:1] * 990, allowed)) == 1  # duplicates dropped, not counted


def test_api_refuses_media_roots_outside_the_allowed_roots(client: TestClient, tmp_path: Path, plate: Path) -> None:
    cut = write_cut(tmp_path / "reel.otio", [clip("a", str(plate), 0, 10)])
    for roots, words in ((["/"], "whole filesystem"), (["/etc"], "outside the folders media may be read from")):
        response = upload(client, cut, media_roots=roots)
        assert_problem(response, 422, "validation_error")
        assert words in response.json()["detail"] and response.json()["errors"][0]["field"] == "media_roots"
    assert client.get("/v1/cuts", headers=AUTH).json()["items"] == []


def test_api_thumbnail_of_media_outside_the_roots_is_a_slate(client: TestClient, tmp_path: Path) -> None:
    private = tmp_path.parent / f"{tmp_path.name}_private"
    secret = make_indexed_movie(private / "secret.mov", frames=48, rate=Fraction(24), size=(160, 90))
    response = upload(client, write_cut(tmp_path / "reel.otio", [clip("a", str(secret), 30, 10)]))
    assert response.status_code == 202, response.text
    cut = response.json()["cut"]
    (shot,) = client.get(f"/v1/cuts/{cut['id']}/shots", headers=AUTH).json()["items"]
    assert shot["media_status"] == "missing"
    assert "MEDIA_PIPELINE_MEDIA_ROOTS" in shot["notes"][-1]
    image = Image.open(io.BytesIO(client.get(shot["thumbnail_url"], headers=AUTH).content)).convert("RGB")
    red, green, _ = image.getpixel((1, 1))
    assert red > 150 and green < 110  # the slate's red border, not frame 30 of the private movie
    assert read_index(image) != 30


# -- errors are sentences: bad numbers refused with what is accepted, no internals ---------------


def timeline_with(rate: float, duration: float) -> otio.schema.Timeline:
    timeline = otio.schema.Timeline(name="bad")
    track = otio.schema.Track()
    timeline.tracks.append(track)
    track.append(
        otio.schema.Clip(
            name="sh010",
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(duration, rate)
            ),
        )
    )
    return timeline


@pytest.mark.parametrize(
    ("rate", "duration", "words"),
    [
        (0, 10, "frame rate 0; rates above 0 and up to 1000 fps are accepted"),
        (1e9, 10, "rates above 0 and up to 1000 fps are accepted"),
        (24, 1e15, "durations up to 100,000,000 frames are accepted"),
        (24, -5, "negative duration"),
    ],
)
def test_bad_rates_and_durations_fail_the_ingest_with_what_is_accepted(
    rate, duration, words, tmp_path, domain_url, artifact_root, instance
):
    source = tmp_path / "bad.otio"
    otio.adapters.write_to_file(timeline_with(rate, duration), str(source))
    key = publish(domain_url, artifact_root, source)
    result = ingest(instance, key, make_resources(domain_url, artifact_root), raise_on_error=False)
    assert not result.success
    with DatabaseResource(url=domain_url).session() as session:
        cut = session.scalar(sa.select(CutVersion))
        assert cut.status == "failed"
        assert words in cut.error and "sh010" in cut.error
        for internal in ("Error:", "Traceback", "Fraction(", str(tmp_path)):
            assert internal not in cut.error


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("rate0.otio", None, "frame rate 0"),
        ("typed.otio", '{"OTIO_SCHEMA": "Timeline.1", "tracks": 5}', "could not be read as otio_json"),
        ("garbage.otio", "not json at all", "could not be read as otio_json"),
        ("bad.edl", "TITLE: x\n001  AX V C 01:00:00:00 01:00:00:0 garbage\n", "is not a valid CMX 3600 EDL"),
    ],
)
def test_unreadable_uploads_are_422_sentences_without_server_paths(
    client: TestClient, tmp_path: Path, name: str, content: str | None, words: str
) -> None:
    path = tmp_path / name
    if content is None:
        otio.adapters.write_to_file(timeline_with(0, 10), str(path))
    else:
        path.write_text(content)
    response = upload(client, path)
    assert_problem(response, 422, "unreadable_timeline")
    detail = response.json()["detail"]
    assert words in detail
    for internal in ("mp-upload-", "/tmp/", "Traceback", "ZeroDivisionError", str(tmp_path)):
        assert internal not in detail, detail


# -- contact sheets at any size -------------------------------------------------------------------


def test_two_thousand_shots_make_ten_sheets_each_inside_jpeg_limits(tmp_path):
    from media_pipeline.editorial.thumbnails import SheetCell, render_contact_sheets, render_slate

    thumbnail = tmp_path / "t.jpg"
    render_slate(["SHOT"], thumbnail, 480)
    cells = [SheetCell(image=thumbnail, caption=f"{i + 1:04d} sh{i}", detail="01:00:00:00") for i in range(2000)]
    pages = render_contact_sheets(cells, tmp_path / "contact_sheet.jpg", "show / reel v001")
    names = [path.name for path, _ in pages[:3]]
    assert names == ["contact_sheet.jpg", "contact_sheet_p002.jpg", "contact_sheet_p003.jpg"]
    assert len(pages) == 10  # 200 a sheet; one sheet of 2,000 would pass JPEG's 65,535-pixel limit
    for path, (width, height) in pages:
        with Image.open(path) as sheet:
            assert sheet.size == (width, height) and height < 65_535


# -- every refused drop and failed ingest is listed by the API -------------------------------------


def test_watch_events_and_failed_cuts_are_listed(client: TestClient, api_settings, tmp_path: Path) -> None:
    from media_pipeline.editorial import watch_events

    for number in range(3):
        watch_events.record(
            api_settings.artifact_root, sensor="watch_x", file=f"show/{number}.otio", outcome="skipped", reason="r"
        )
    first = client.get("/v1/watch-events", params={"limit": 2}, headers=AUTH).json()
    assert [event["file"] for event in first["items"]] == ["show/2.otio", "show/1.otio"] and first["next_cursor"]
    rest = client.get("/v1/watch-events", params={"limit": 2, "cursor": first["next_cursor"]}, headers=AUTH).json()
    assert [event["file"] for event in rest["items"]] == ["show/0.otio"] and rest["next_cursor"] is None
    assert client.get("/v1/watch-events").status_code == 401

    # Readable, so published; no video track, so its ingest fails: listed with the sentence.
    sound_only = otio.schema.Timeline(name="sound")
    sound_only.tracks.append(otio.schema.Track(kind=otio.schema.TrackKind.Audio))
    path = tmp_path / "sound.otio"
    otio.adapters.write_to_file(sound_only, str(path))
    published = upload(client, path)
    assert published.status_code == 202, published.text
    (failed,) = client.get("/v1/cuts", params={"status": "failed"}, headers=AUTH).json()["items"]
    assert failed["id"] == published.json()["cut"]["id"] and "no video track" in failed["error"]
    assert client.get("/v1/cuts", params={"status": "ingested"}, headers=AUTH).json()["items"] == []
