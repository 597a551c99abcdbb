"""Segments made from media library items: the `still` and `clip` generators, inputs checked on
save and planned, their content in the cache key; below Dagster and through the API with real
Dagster runs (in process), real ffmpeg and real library uploads."""

from __future__ import annotations

import hashlib
import json
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import dagster as dg
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from media_pipeline import db
from media_pipeline.compositions import render
from media_pipeline.compositions.assets import ASSETS
from media_pipeline.compositions.config import CompositionRenderConfig, SegmentConfig
from media_pipeline.compositions.generators.base import GenerationRequest, Generator
from media_pipeline.compositions.generators.local import LocalGenerator
from media_pipeline.compositions.generators.media import ClipGenerator, StillGenerator
from media_pipeline.compositions.partitions import composition_renders
from media_pipeline.compositions.render import CompositionSpec, RenderError, SegmentSpec
from media_pipeline.core import ffmpeg
from media_pipeline.core.audio import rms_db, wav_samples
from media_pipeline.core.probe import probe
from media_pipeline.core.segments import count_frames
from media_pipeline.library.media import Limits, add_file
from media_pipeline.library.store import LibraryStore
from media_pipeline.resources import ArtifactStore, DatabaseResource, FFmpegResource
from media_pipeline.samples import make_indexed_movie, read_index
from media_pipeline.settings import Settings
from media_pipeline_tests.composition_media import QUADRANTS, quadrants, stored
from media_pipeline_tests.test_api_support import assert_problem
from media_pipeline_tests.test_compositions_api import AUTH, app, client, settings, upload  # noqa: F401  (fixtures)
from media_pipeline_tests.test_compositions_render import run

RED, GREEN, BLUE, WHITE = (QUADRANTS[(0, 0)], QUADRANTS[(1, 0)], QUADRANTS[(0, 1)], QUADRANTS[(1, 1)])
GENERATORS: dict[str, Generator] = {"still": StillGenerator(), "clip": ClipGenerator(), "local": LocalGenerator()}


def pictures(path: Path) -> list[Image.Image]:
    with av.open(str(path)) as container:
        return [frame.to_image() for frame in container.decode(video=0)]


def colour_at(image: Image.Image, x: int, y: int) -> tuple[int, int, int]:
    """The colour of a quadrant, read at a point well inside it (compression blurs only edges)."""
    r, g, b = image.convert("RGB").getpixel((x, y))  # type: ignore[misc]
    nearest = min(QUADRANTS.values(), key=lambda c: sum((p - q) ** 2 for p, q in zip(c, (r, g, b), strict=True)))
    assert sum((p - q) ** 2 for p, q in zip(nearest, (r, g, b), strict=True)) < 3 * 40**2, (r, g, b)
    return nearest


def corners(image: Image.Image) -> list[tuple[int, int, int]]:
    """Top left, top right, bottom left, bottom right."""
    w, h = image.size
    return [colour_at(image, x, y) for x, y in ((8, 8), (w - 8, 8), (8, h - 8), (w - 8, h - 8))]


def segment(id: int, generator: str, frames: int, inputs: tuple[int, ...], **params: Any) -> SegmentSpec:
    return SegmentSpec(id, generator, "", "", params, 1, frames, inputs=inputs)


def spec(*segments: SegmentSpec, rate: Fraction = Fraction(24)) -> CompositionSpec:
    return CompositionSpec(1, rate, 160, 90, tuple(segments), preset="ultrafast")


# -- below Dagster ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("move", "first", "last"),
    [
        # Zoom from the whole picture into its top left quarter.
        ({"zoom_start": 1, "zoom_end": 2, "start": {"x": 0.5, "y": 0.5}, "end": {"x": 0.25, "y": 0.25}},
         [RED, GREEN, BLUE, WHITE], [RED] * 4),
        # At twice the size, a pan from the top left quarter to the bottom right one.
        ({"zoom_start": 2, "zoom_end": 2, "start": {"x": 0.25, "y": 0.25}, "end": {"x": 0.75, "y": 0.75},
          "easing": "linear"}, [RED] * 4, [WHITE] * 4),
        # Zoom out of the top right quarter to the whole picture.
        ({"zoom_start": 2, "zoom_end": 1, "start": {"x": 0.75, "y": 0.25}, "end": {"x": 0.5, "y": 0.5}},
         [GREEN] * 4, [RED, GREEN, BLUE, WHITE]),
    ],
)  # fmt: skip
def test_the_still_moves_as_its_params_say_in_exactly_the_segments_frames(
    tmp_path: Path, move: dict[str, Any], first: list[Any], last: list[Any]
) -> None:
    image = stored(tmp_path, quadrants(tmp_path / "q.png"), 1)
    rate = Fraction(30000, 1001)
    plan, video = run(spec(segment(1, "still", 17, (1,), **move), rate=rate), GENERATORS, tmp_path, "r1", {1: image})
    assert count_frames(video) == plan.total_frames == 17
    frames = pictures(video)
    assert frames[0].size == (160, 90)
    assert corners(frames[0]) == first and corners(frames[-1]) == last


def test_the_still_draws_the_same_move_for_a_seed_and_another_for_another(tmp_path: Path) -> None:
    image = quadrants(tmp_path / "q.png")
    generator = StillGenerator()

    def draw(seed: int, name: str) -> list[str]:
        request = GenerationRequest(
            prompt="", negative_prompt="", params={"zoom_end": 1.6}, seed=seed, frames=9, rate=Fraction(25),
            width=96, height=54, seconds=Fraction(9, 25), inputs=(image,), workdir=tmp_path,
        )  # fmt: skip
        task = generator.submit(request)
        generator.fetch(task, tmp_path / name)
        return [hashlib.md5(p.tobytes()).hexdigest() for p in pictures(tmp_path / name)]

    first, again, other = draw(3, "a.mp4"), draw(3, "b.mp4"), draw(4, "c.mp4")
    assert len(first) == 9 and first == again and first != other
    assert first[0] != first[-1]


@pytest.mark.parametrize("rate", [Fraction(24), Fraction(48), Fraction(30000, 1001), Fraction(12)])
def test_the_clip_shows_exactly_the_source_frames_named(tmp_path: Path, rate: Fraction) -> None:
    movie = stored(tmp_path, make_indexed_movie(tmp_path / "idx.mp4", frames=60, rate=Fraction(24)), 7)
    segments = [segment(1, "clip", 12, (7,), start_frame=20), segment(2, "clip", 5, (7,))]
    plan, video = run(spec(*segments, rate=rate), GENERATORS, tmp_path, "r1", {7: movie})
    assert count_frames(video) == plan.total_frames == 17
    shown = [read_index(p) for p in pictures(video)]
    # Output frame i shows the source frame on screen at its instant: start + floor(i * 24 / rate).
    expected = [20 + math.floor(i * 24 / rate) for i in range(12)] + [math.floor(i * 24 / rate) for i in range(5)]
    assert shown == expected
    if rate == 24:
        assert shown == [*range(20, 32), *range(5)]


def test_the_cache_key_holds_the_inputs_content(tmp_path: Path) -> None:
    first = stored(tmp_path, quadrants(tmp_path / "a.png"), 1)
    Image.new("RGB", (320, 180), (10, 120, 60)).save(tmp_path / "b.png")
    second = stored(tmp_path, tmp_path / "b.png", 2)
    media = {1: first, 2: second}

    def decisions(*inputs: int) -> list[str]:
        plan, video = run(spec(*[segment(n + 1, "still", 6, (i,)) for n, i in enumerate(inputs)]), GENERATORS,
                          tmp_path, f"r{len(list(tmp_path.glob('renders/*')))}", media)  # fmt: skip
        assert count_frames(video) == 6 * len(inputs)
        assert [s.payload["inputs"] for s in plan.segments] == [[media[i].sha256] for i in inputs]
        return [s.decision for s in plan.segments]

    assert decisions(1) == ["generate"]
    assert decisions(1) == ["cached"]
    assert decisions(2) == ["generate"]  # other content: another clip
    assert decisions(1, 2) == ["cached", "cached"]  # keyed by content, not by segment or place


def test_plans_refuse_inputs_that_are_gone_or_of_the_wrong_type(tmp_path: Path) -> None:
    image = stored(tmp_path, quadrants(tmp_path / "q.png"), 1)
    movie = stored(tmp_path, make_indexed_movie(tmp_path / "idx.mp4", frames=10), 2)
    media = {1: image, 2: movie}
    cache = render.cache_for(ArtifactStore(root=str(tmp_path)))
    cases = [
        (segment(1, "still", 5, (9,)), "inputs.0: there is no media with id 9 in the library"),
        (segment(1, "still", 5, (2,)), "inputs.0: generator still takes an image; media 2 is a video"),
        (segment(1, "clip", 5, (1,)), "inputs.0: generator clip takes a video; media 1 is an image"),
        (segment(1, "clip", 5, (2,), start_frame=6), "media 2 has 10 frames (0 to 9); 5 frames at 24 fps from "
         "frame 6 need source frames 6 to 10"),
        (segment(1, "still", 5, ()), "inputs: generator still needs an input"),
    ]  # fmt: skip
    for bad, sentence in cases:
        with pytest.raises(RenderError) as caught:
            render.plan(spec(bad), GENERATORS, cache, media)
        assert sentence in str(caught.value), str(caught.value)


# -- through the API and Dagster -------------------------------------------------------------


@pytest.fixture
def library_media(client: TestClient, tmp_path: Path) -> dict[str, dict[str, Any]]:  # noqa: F811
    Image.new("RGB", (320, 180), (10, 120, 60)).save(tmp_path / "green.png")
    return {
        "image": upload(client, quadrants(tmp_path / "q.png")),
        "other_image": upload(client, tmp_path / "green.png"),
        "video": upload(client, make_indexed_movie(tmp_path / "idx.mp4", frames=48, rate=Fraction(24))),
    }


def composition(client: TestClient, segments: list[dict[str, Any]]) -> Any:  # noqa: F811
    return client.post("/v1/compositions", json={"name": "m", "rate": "24", "resolution": "160x90",
                                                 "segments": segments}, headers=AUTH)  # fmt: skip


def test_inputs_are_checked_when_a_segment_is_saved(
    client: TestClient,  # noqa: F811
    library_media: dict[str, dict[str, Any]],
) -> None:
    image, video = library_media["image"]["id"], library_media["video"]["id"]
    fine = {"generator": "still", "frames": 6, "inputs": [image]}
    cases = [
        ({"generator": "still", "frames": 6, "inputs": [999999]}, "segments.1.inputs.0", "no media with id 999999"),
        ({"generator": "still", "frames": 6, "inputs": [video]}, "segments.1.inputs.0", f"media {video} is a video"),
        ({"generator": "clip", "frames": 6, "inputs": [image]}, "segments.1.inputs.0", f"media {image} is an image"),
        ({"generator": "clip", "frames": 6, "inputs": [video], "params": {"start_frame": 43}},
         "segments.1.params.start_frame", "start at frame 42 at the latest"),
        ({"generator": "clip", "frames": 6, "inputs": [video, video]}, "segments.1.inputs", "at most 1"),
        ({"generator": "still", "frames": 6}, "segments.1.inputs", "needs an input"),
        ({"generator": "local", "frames": 6, "inputs": [image]}, "segments.1.inputs", "takes no inputs"),
        ({"generator": "still", "frames": 6, "inputs": ["stills/q.png"]}, "segments.1.inputs.0", "integer"),
        ({"generator": "still", "frames": 6, "inputs": [image], "params": {"zoom_end": 9}},
         "segments.1.params.zoom_end", "less than or equal to 8"),
    ]  # fmt: skip
    for bad, field, words in cases:
        problem = assert_problem(composition(client, [fine, bad]), 422, "validation_error")
        assert problem["errors"][0]["field"] == field, (bad, problem)
        assert words in problem["detail"], (bad, problem)
    saved = composition(client, [fine])
    assert saved.status_code == 201 and saved.json()["segments"][0]["inputs"] == [image]
    cid = saved.json()["id"]
    added = client.post(f"/v1/compositions/{cid}/segments", json={**fine, "inputs": [video]}, headers=AUTH)
    assert assert_problem(added, 422, "validation_error")["errors"][0]["field"] == "body.inputs.0"


def test_generators_list_still_and_clip_with_their_schemas(client: TestClient) -> None:  # noqa: F811
    listed = {g["id"]: g for g in client.get("/v1/generators", headers=AUTH).json()}
    still, clip = listed["still"], listed["clip"]
    assert still["input_types"] == ["image"] and clip["input_types"] == ["video"]
    assert still["inputs"] == clip["inputs"] == 1 and still["requires_input"] and clip["requires_input"]
    assert {"zoom_start", "zoom_end", "start", "end", "easing"} <= set(still["params_schema"]["properties"])
    assert "start_frame" in clip["params_schema"]["properties"]
    assert still["pool"] == clip["pool"] == "ffmpeg" and still["available"] and not still["needs_key"]
    assert listed["local"]["input_types"] == ["image"] and listed["local"]["inputs"] == 0


def items_of(client: TestClient, job: dict[str, Any]) -> list[dict[str, Any]]:  # noqa: F811
    job = client.get(f"/v1/jobs/{job['id']}", headers=AUTH).json()
    assert job["status"] == "succeeded", job
    return sorted(job["items"], key=lambda i: int(i["id"].split("_")[1]))


def test_still_and_clip_render_through_the_api_and_miss_the_cache_when_an_input_changes(
    client: TestClient,  # noqa: F811
    settings: Settings,  # noqa: F811
    library_media: dict[str, dict[str, Any]],
) -> None:
    image, other, video = (library_media[k]["id"] for k in ("image", "other_image", "video"))
    still = {
        "generator": "still",
        "frames": 12,
        "seed": 5,
        "inputs": [image],
        "params": {"zoom_start": 1, "zoom_end": 2, "start": {"x": 0.5, "y": 0.5}, "end": {"x": 0.25, "y": 0.25}},
    }
    clip = {"generator": "clip", "frames": 10, "inputs": [video], "params": {"start_frame": 30}}  # fmt: skip
    made = composition(client, [still, clip])
    assert made.status_code == 201, made.text
    cid, (still_id, _) = made.json()["id"], [s["id"] for s in made.json()["segments"]]

    def render() -> tuple[list[str], Path]:
        answer = client.post(f"/v1/compositions/{cid}/renders", headers=AUTH).json()
        items = items_of(client, answer["job"])
        rid = answer["render"]["id"]
        return [i["cache"] for i in items], settings.artifact_root / "compositions" / str(cid) / "output" / f"{rid}.mp4"

    caches, video_path = render()
    assert caches == ["miss", "miss"]
    frames = pictures(video_path)
    assert len(frames) == 22
    assert corners(frames[0]) == [RED, GREEN, BLUE, WHITE] and corners(frames[11]) == [RED] * 4
    assert [read_index(p) for p in frames[12:]] == list(range(30, 40))

    assert render()[0] == ["hit", "hit"]
    assert client.put(f"/v1/segments/{still_id}", json={**still, "inputs": [other]}, headers=AUTH).status_code == 200
    caches, video_path = render()
    assert caches == ["miss", "hit"]
    centre = pictures(video_path)[0].convert("RGB").getpixel((80, 45))
    assert sum((p - q) ** 2 for p, q in zip(centre, (10, 120, 60), strict=True)) < 3 * 20**2, centre  # type: ignore[arg-type]
    assert client.put(f"/v1/segments/{still_id}", json=still, headers=AUTH).status_code == 200
    assert render()[0] == ["hit", "hit"]  # the first picture's clip is still cached, by its content

    # The library keeps what a composition uses, unless told; a render then fails VALIDATE saying why.
    refused = assert_problem(client.delete(f"/v1/media/{image}", headers=AUTH), 409, "media_in_use")
    assert f"compositions {cid} use it" in refused["detail"], refused
    assert client.delete(f"/v1/media/{image}?force=true", headers=AUTH).status_code == 204
    job = client.post(f"/v1/compositions/{cid}/renders", headers=AUTH).json()["job"]
    job = client.get(f"/v1/jobs/{job['id']}", headers=AUTH).json()
    assert job["status"] == "failed" and f"there is no media with id {image} in the library" in job["error"], job


def test_library_inputs_materialize_in_dagster(tmp_path: Path, domain_url: str, instance: dg.DagsterInstance) -> None:
    """The render's assets with dg.materialize: the plan step looks the inputs up in the domain
    database, the clips step reads them from the library's store."""
    root = tmp_path / "artifacts"
    root.mkdir()
    store = LibraryStore(ArtifactStore(root=str(root)))
    limits = Limits(max_pixels=50_000_000, max_duration=3600)
    db.migrate(domain_url)
    with db.session_scope(domain_url) as session:
        image, _ = add_file(session, store, quadrants(tmp_path / "q.png"), "q.png", limits)
        video, _ = add_file(session, store, make_indexed_movie(tmp_path / "idx.mp4", frames=24), "idx.mp4", limits)
        image_id, video_id = image.id, video.id
    move = {"zoom_start": 2, "zoom_end": 2, "start": {"x": 0.75, "y": 0.75}, "end": {"x": 0.25, "y": 0.25}}
    config = CompositionRenderConfig(
        composition_id=1, rate="24", width=160, height=90, preset="ultrafast", segments=[
            SegmentConfig(id=1, generator="still", frames=8, inputs=[image_id], params_json=json.dumps(move)),
            SegmentConfig(id=2, generator="clip", frames=6, inputs=[video_id], params_json='{"start_frame": 3}'),
        ],
    )  # fmt: skip
    resources = {"artifacts": ArtifactStore(root=str(root)), "ffmpeg": FFmpegResource(concurrency=2),
                 "database": DatabaseResource(url=domain_url)}  # fmt: skip

    def materialize(render_id: str) -> dict[str, Any]:
        key = f"1.{render_id}"
        instance.add_dynamic_partitions(composition_renders.name, [key])
        result = dg.materialize(ASSETS, instance=instance, partition_key=key, resources=resources,
                                run_config={"ops": {"composition_plan": {"config": config.model_dump()}}})  # fmt: skip
        assert result.success
        plan = result.asset_materializations_for_node("composition_plan")[0].metadata
        return {"to_generate": plan["to_generate"].value, "video": root / "compositions/1/output" / f"{render_id}.mp4"}

    first = materialize("aaaaaaaaaaaa")
    assert first["to_generate"] == [1, 2]
    frames = pictures(first["video"])
    assert len(frames) == 14
    assert corners(frames[0]) == [WHITE] * 4 and corners(frames[7]) == [RED] * 4
    assert [read_index(p) for p in frames[8:]] == [3, 4, 5, 6, 7, 8]
    assert materialize("bbbbbbbbbbbb")["to_generate"] == []


# -- the soundtrack ----------------------------------------------------------------------------


def audio_seconds(path: Path) -> float:
    last: list[ffmpeg.Progress] = []
    ffmpeg.run(["-i", str(path), "-map", "0:a:0", "-f", "null", "-"], on_progress=last.append)
    return last[-1].out_seconds


@pytest.mark.parametrize("soundtrack_frames", [24, 96])  # 1 s (padded with silence), 4 s (cut)
def test_a_soundtrack_is_padded_or_cut_to_the_videos_exact_samples(tmp_path: Path, soundtrack_frames: int) -> None:
    track = make_indexed_movie(tmp_path / "track.mp4", frames=soundtrack_frames, audio=True)
    media = {9: stored(tmp_path, track, 9)}
    rate = Fraction(30000, 1001)
    local = [SegmentSpec(n, "local", "", "", {"source": "color"}, n, 47 if n == 1 else 20) for n in (1, 2)]
    composition = CompositionSpec(1, rate, 160, 90, tuple(local), preset="ultrafast", soundtrack=9)
    plan, video = run(composition, GENERATORS, tmp_path, "r1", media)
    assert plan.total_frames == 67 and count_frames(video) == 67
    samples = math.floor(Fraction(67) * 48000 / rate + Fraction(1, 2))
    assert samples == 107307  # 67 * 1601.6 = 107307.2
    assert wav_samples(tmp_path / "renders" / "r1" / "soundtrack.wav") == samples
    video_seconds = float(Fraction(67) / rate)
    assert abs(audio_seconds(video) - video_seconds) <= 1024 / 48000  # AAC: within one frame of audio
    assert rms_db(video, start=Fraction(1, 10), end=Fraction(9, 10)) > -30  # the 440 Hz tone
    tail = rms_db(video, start=Fraction(12, 10), end=Fraction(22, 10))
    assert (tail < -60) if soundtrack_frames == 24 else (tail > -30)


def test_the_soundtrack_is_checked_on_save_and_rendered_through_the_api(
    client: TestClient,  # noqa: F811
    settings: Settings,  # noqa: F811
    library_media: dict[str, dict[str, Any]],
    tmp_path: Path,
) -> None:
    track = upload(client, make_indexed_movie(tmp_path / "track.mp4", frames=72, audio=True))
    silent, image = library_media["video"]["id"], library_media["image"]["id"]
    segments = [{"generator": "local", "frames": 30, "params": {"source": "color"}}]
    body = {"name": "m", "rate": "24", "resolution": "160x90", "segments": segments}
    for soundtrack, words in [(999999, "no media with id 999999"), (silent, f"media {silent} has no audio"),
                              (image, f"media {image} has no audio"), ("track.mp4", "integer")]:  # fmt: skip
        answer = client.post("/v1/compositions", json={**body, "soundtrack": soundtrack}, headers=AUTH)
        problem = assert_problem(answer, 422, "validation_error")
        assert problem["errors"][0]["field"] == "soundtrack" and words in problem["detail"], problem
    made = client.post("/v1/compositions", json={**body, "soundtrack": track["id"]}, headers=AUTH)
    assert made.status_code == 201 and made.json()["soundtrack"] == track["id"], made.text
    cid = made.json()["id"]
    changed = client.put(f"/v1/compositions/{cid}", json={"name": "m", "soundtrack": silent}, headers=AUTH)
    assert assert_problem(changed, 422, "validation_error")["errors"][0]["field"] == "soundtrack"

    answer = client.post(f"/v1/compositions/{cid}/renders", headers=AUTH).json()
    items_of(client, answer["job"])
    result = client.get(f"/v1/compositions/{cid}/renders/{answer['render']['id']}", headers=AUTH).json()
    assert result["soundtrack"] == track["id"] and result["audio_samples"] == 60000  # 30 frames at 24 fps
    video = settings.artifact_root / "compositions" / str(cid) / "output" / f"{answer['render']['id']}.mp4"
    assert probe(video).has_audio and abs(audio_seconds(video) - 1.25) <= 1024 / 48000
