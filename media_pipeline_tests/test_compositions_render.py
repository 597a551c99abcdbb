"""Compositions, below Dagster: the local generator, the generation cache, conform exactness."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest

from media_pipeline.compositions import render
from media_pipeline.compositions.generators.base import GenerationRequest, Generator, InputMedia
from media_pipeline.compositions.generators.local import LocalGenerator
from media_pipeline.compositions.render import CompositionSpec, RenderError, SegmentSpec
from media_pipeline.core.segments import count_frames
from media_pipeline.resources import ArtifactStore
from media_pipeline_tests.composition_media import library
from media_pipeline_tests.s3_server import *  # noqa: F403  (fixtures)
from media_pipeline_tests.s3_server import s3_store

RATE = Fraction(30000, 1001)


class Hooks:
    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.logs: list[str] = []

    def stage(self, name: str) -> None:
        pass

    def item(self, item: str, status: str, **details: Any) -> None:
        self.items.setdefault(item, {}).update(status=status, **details)

    def log(self, level: str, message: str) -> None:
        self.logs.append(message)


class Counting(LocalGenerator):
    """The local generator, counting what it is asked to make."""

    id = "counting"
    version = "1"

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def submit(self, request: GenerationRequest) -> str:
        self.calls.append(request.seed)
        return super().submit(request)


def run(
    spec: CompositionSpec,
    gens: dict[str, Generator],
    root: Path,
    render_id: str,
    media: dict[int, InputMedia] | None = None,
    store: ArtifactStore | None = None,
) -> tuple[render.Plan, Path]:
    cache = render.cache_for(store or ArtifactStore(root=str(root)))
    previous = root / "plan.json"
    plan = render.plan(
        spec, gens, cache, media or {}, render.Plan.from_json(previous.read_text()) if previous.exists() else None
    )
    hooks = Hooks()
    for pool in {s.pool for s in plan.segments}:
        render.generate(plan, pool, gens, cache, root / "work", hooks, library(root).local_path)
    staging = root / "renders" / render_id
    composed = render.compose(
        plan, cache, staging, root / "output" / f"{render_id}.mp4", hooks, localize=library(root).local_path
    )
    previous.write_text(plan.to_json())
    return plan, composed.video


def segment(id: int, frames: int, **kw: Any) -> SegmentSpec:
    values: dict[str, Any] = {"generator": "counting", "prompt": f"shot {id}", "negative_prompt": "",
                              "params": {"source": "gradients"}, "seed": id, "frames": frames}  # fmt: skip
    values.update(kw)
    return SegmentSpec(id=id, **values)


def spec(*segments: SegmentSpec, force: frozenset[int] = frozenset()) -> CompositionSpec:
    return CompositionSpec(1, RATE, 160, 90, tuple(segments), force, preset="ultrafast")


def frame_md5(path: Path) -> list[str]:
    with av.open(str(path)) as container:
        return [hashlib.md5(f.to_ndarray(format="rgb24").tobytes()).hexdigest() for f in container.decode(video=0)]


@pytest.mark.parametrize("source", ["testsrc2", "color", "gradients", "mandelbrot", "title"])
def test_local_generator_draws_the_same_frames_for_a_seed_and_others_for_another(tmp_path: Path, source: str) -> None:
    generator = LocalGenerator()

    def draw(seed: int, name: str) -> list[str]:
        request = GenerationRequest(
            prompt="Hello, 'world': [50%] \\ ; done", negative_prompt="", params={"source": source}, seed=seed,
            frames=6, rate=RATE, width=96, height=64, seconds=Fraction(6) / RATE, workdir=tmp_path,
        )  # fmt: skip
        task = generator.submit(request)
        assert generator.poll(task).status == "SUCCEEDED"
        generator.fetch(task, tmp_path / name)
        return frame_md5(tmp_path / name)

    first, again, other = draw(7, "a.mp4"), draw(7, "b.mp4"), draw(8, "c.mp4")
    assert len(first) == 6
    assert first == again
    if source != "testsrc2":  # a test pattern has nothing for a seed to choose
        assert first != other


def test_cache_counts_generator_calls(tmp_path: Path) -> None:
    counting = Counting()
    gens: dict[str, Generator] = {"counting": counting}
    segments = [segment(1, 12), segment(2, 10), segment(3, 8)]
    run(spec(*segments), gens, tmp_path, "r1")
    assert len(counting.calls) == 3

    run(spec(*segments), gens, tmp_path, "r2")  # nothing changed
    assert len(counting.calls) == 3

    edited = [segments[0], segment(2, 10, prompt="edited"), segments[2]]
    run(spec(*edited), gens, tmp_path, "r3")  # one prompt edited
    assert len(counting.calls) == 4

    reseeded = [segments[0], edited[1], segment(3, 8, seed=99)]
    plan, _ = run(spec(*reseeded), gens, tmp_path, "r4")  # a new seed
    assert counting.calls[-1] == 99 and len(counting.calls) == 5
    assert [s.decision for s in plan.segments] == ["cached", "cached", "generate"]

    plan, _ = run(spec(*reseeded[:2]), gens, tmp_path, "r5")  # one removed
    assert plan.removed == [3] and len(counting.calls) == 5

    plan, _ = run(spec(*reseeded[:2], force=frozenset({1})), gens, tmp_path, "r6")  # forced
    assert len(counting.calls) == 6

    # A restart: new generator objects, the cache on disk is all that is left.
    bumped = Counting()
    bumped.version = "2"  # type: ignore[misc]
    other = LocalGenerator()
    mixed = [*reseeded[:2], segment(4, 6, generator="local")]
    run(spec(*mixed), {"counting": Counting(), "local": other}, tmp_path, "r7")
    run(spec(*mixed), {"counting": bumped, "local": other}, tmp_path, "r8")
    assert len(bumped.calls) == 2  # every segment of the bumped generator, none of the other


def test_segments_asking_for_the_same_clip_share_one_generation(tmp_path: Path) -> None:
    counting = Counting()
    twins = [segment(1, 8, seed=5, prompt="same"), segment(2, 8, seed=5, prompt="same"), segment(3, 8)]
    plan, video = run(spec(*twins), {"counting": counting}, tmp_path, "r1")
    assert len(counting.calls) == 2 and plan.segments[0].key == plan.segments[1].key
    assert count_frames(video) == 24


def test_conform_gives_exact_frames_and_continuous_pts_across_joins(tmp_path: Path) -> None:
    counting = Counting()
    segments = [
        segment(1, 10, transition={"type": "crossfade", "frames": 4}),
        segment(2, 15, params={"source": "testsrc2"}),
        segment(3, 7, params={"source": "title"}, transition={"type": "crossfade", "frames": 3}),
        segment(4, 9, params={"source": "color"}),
    ]
    plan, video = run(spec(*segments), {"counting": counting}, tmp_path, "r1")
    assert plan.total_frames == 10 + 15 + 7 + 9 - 4 - 3
    assert count_frames(video) == plan.total_frames
    for piece in render.pieces(plan):
        assert (
            count_frames(render.cache_for(ArtifactStore(root=str(tmp_path))).piece(piece.key(plan.look)))
            == piece.frames
        )
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (160, 90)
        assert stream.average_rate == RATE
        pts = [frame.pts for frame in container.decode(stream)]
        step = int(1 / (RATE * stream.time_base))
    assert len(pts) == plan.total_frames
    assert pts[0] == 0 and all(b - a == step for a, b in itertools.pairwise(pts))


class Short(Counting):
    """Makes clips a third as long as asked, at another rate and size, as providers do."""

    id = "short"

    def submit(self, request: GenerationRequest) -> str:
        return super().submit(dataclasses.replace(request, frames=max(1, request.frames // 3), rate=Fraction(12),
                                                  width=64, height=64))  # fmt: skip


def test_a_short_clip_at_its_own_rate_and_size_is_conformed_to_the_exact_frame(tmp_path: Path) -> None:
    segments = [segment(1, 20, generator="short"), segment(2, 13, generator="short")]
    plan, video = run(spec(*segments), {"short": Short()}, tmp_path, "r1")
    assert count_frames(video) == plan.total_frames == 33
    with av.open(str(video)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert frames[0].shape == (90, 160, 3)
    assert (frames[18] == frames[19]).all()  # the short clip's last frame held to the segment's end


def test_impossible_plans_are_refused_with_sentences(tmp_path: Path) -> None:
    gens: dict[str, Generator] = {"counting": Counting()}
    with pytest.raises(RenderError, match="fewer than its crossfades take"):
        run(spec(segment(1, 4, transition={"type": "crossfade", "frames": 5}), segment(2, 9)), gens, tmp_path, "r")
    with pytest.raises(RenderError, match="no generator 'nope'"):
        run(spec(segment(1, 4, generator="nope")), gens, tmp_path, "r")


def test_with_s3_storage_a_second_machine_finds_every_clip_and_piece_cached(tmp_path, s3_endpoint, s3_bucket):
    """The generation cache lives in the artifact store: a clip one machine paid a provider for is
    a hit on every other machine of the deployment, fetched from the bucket."""
    the_spec = spec(segment(1, 12), segment(2, 9, transition={"type": "crossfade", "frames": 3}), segment(3, 10))
    first, second = Counting(), Counting()
    machine_a, machine_b = tmp_path / "a", tmp_path / "b"
    _, video_a = run(the_spec, {"counting": first}, machine_a, "r1", store=s3_store(machine_a, s3_endpoint, s3_bucket))
    assert len(first.calls) == 3
    plan, video_b = run(
        the_spec, {"counting": second}, machine_b, "r1", store=s3_store(machine_b, s3_endpoint, s3_bucket)
    )
    assert second.calls == [] and [s.decision for s in plan.segments] == ["cached"] * 3
    assert frame_md5(video_b) == frame_md5(video_a)
