"""The render's run config: the composition as it was when the render was asked for (so edits
made while it runs change nothing), and which segments to generate again. The API fills the
snapshot in; a run launched from the Dagster launchpad gives it the same way."""

import json
from fractions import Fraction

import dagster as dg
from pydantic import Field

from media_pipeline.compositions.render import CompositionSpec, SegmentSpec
from media_pipeline.core.ffmpeg import X264_CRF_MAX, X264_CRF_MIN
from media_pipeline.core.timecode import parse_rate


class SegmentConfig(dg.Config):
    id: int
    generator: str
    prompt: str = ""
    negative_prompt: str = ""
    params_json: str = Field(default="{}", description="The generator's params, as JSON")
    seed: int = 0
    frames: int = 1
    inputs: list[int] = Field(default_factory=list, description="Media library ids")
    transition: str = Field(default="cut", description="cut or crossfade")
    transition_frames: int = 0


class CompositionRenderConfig(dg.Config):
    force_segments: list[int] = Field(default_factory=list, description="Segment ids to generate again")
    # The render partition the API made for this request (shown in the job's params); the run
    # itself works on its own partition key.
    partition_key: str = ""
    composition_id: int = 0
    rate: str = "24"
    width: int = 1920
    height: int = 1080
    segments: list[SegmentConfig] = Field(default_factory=list)
    soundtrack: int | None = Field(default=None, description="Media library id of the soundtrack; unset: silent")
    crf: int = Field(default=18, ge=X264_CRF_MIN, le=X264_CRF_MAX)
    preset: str = "veryfast"

    def spec(self) -> CompositionSpec:
        rate: Fraction = parse_rate(self.rate)
        return CompositionSpec(
            composition_id=self.composition_id, rate=rate, width=self.width, height=self.height,
            segments=tuple(
                SegmentSpec(
                    id=s.id, generator=s.generator, prompt=s.prompt, negative_prompt=s.negative_prompt,
                    params=json.loads(s.params_json), seed=s.seed, frames=s.frames, inputs=tuple(s.inputs),
                    transition={"type": s.transition, "frames": s.transition_frames},
                )
                for s in self.segments
            ),
            force_segments=frozenset(self.force_segments), crf=self.crf, preset=self.preset,
            soundtrack=self.soundtrack,
        )  # fmt: skip


def from_snapshot(
    snapshot: dict[str, object], force_segments: list[int], partition_key: str
) -> CompositionRenderConfig:
    segments = [
        SegmentConfig(
            id=s["id"], generator=s["generator"], prompt=s["prompt"], negative_prompt=s["negative_prompt"],
            params_json=json.dumps(s["params"], sort_keys=True), seed=s["seed"], frames=s["frames"],
            inputs=list(s["inputs"]), transition=s["transition"].get("type", "cut"),
            transition_frames=int(s["transition"].get("frames", 0)),
        )
        for s in snapshot["segments"]  # type: ignore[attr-defined]
    ]  # fmt: skip
    return CompositionRenderConfig(
        force_segments=force_segments, partition_key=partition_key, composition_id=snapshot["composition_id"],
        rate=snapshot["rate"], width=snapshot["width"], height=snapshot["height"], segments=segments,
        soundtrack=snapshot.get("soundtrack"),
    )  # fmt: skip
