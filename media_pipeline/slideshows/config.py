"""The render's run config: every option resolved (the API fills the server's defaults in), so a
run launched from the Dagster UI and one launched over HTTP are described the same way."""

from __future__ import annotations

from fractions import Fraction

import dagster as dg
from pydantic import Field, ValidationError

from media_pipeline.slideshows.render import RenderSpec
from media_pipeline.slideshows.spec import RenderRequest, parse_rate


class SlideshowRenderConfig(dg.Config):
    output_name: str = Field(default="video.mp4", description="File name under output/, ending in .mp4")
    fps: str = Field(default="30", description="25, 30 or a ratio such as 30000/1001")
    min_shot: float = Field(default=2.5, description="Shortest scene, seconds")
    max_shot: float = Field(default=8.0, description="Longest scene, seconds")
    xfade: float = Field(default=0.5, description="Overlap of consecutive scenes, seconds")
    crf: int = Field(default=18, description="H.264 constant rate factor, 0-51")
    preset: str = Field(default="medium", description="x264 preset")
    resolution: str = Field(default="1920x1080", description="WIDTHxHEIGHT, even")
    tts_engine: str = Field(default="", description="espeak-ng or piper; empty: no speech synthesis")
    tts_voice: str = Field(default="", description="The engine's voice; empty: its default")
    music: str = Field(default="", description="A file under music/; empty: no music")
    ducking: bool = Field(default=False, description="Duck the music under the voice")
    loudness: float = Field(default=-16.0, description="Integrated loudness target, LUFS")
    max_pixels: int = Field(default=50_000_000, description="Largest image accepted (width x height)")

    def spec(self) -> RenderSpec:
        """The validated render spec, or dg.Failure with every problem as a sentence."""
        options = {
            "fps": self.fps, "minShot": self.min_shot, "maxShot": self.max_shot, "xfade": self.xfade,
            "crf": self.crf, "preset": self.preset, "resolution": self.resolution, "music": self.music or None,
            "ducking": self.ducking, "loudness": self.loudness,
            "tts": {"engine": self.tts_engine, "voice": self.tts_voice or None} if self.tts_engine else None,
        }  # fmt: skip
        try:
            request = RenderRequest.model_validate({"outputName": self.output_name, "renderOptions": options})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise dg.Failure(description=f"the render options are not valid: {problems}", allow_retries=False) from exc
        width, height = (int(v) for v in self.resolution.split("x"))
        rate: Fraction = parse_rate(self.fps)
        tts = request.render_options.tts
        return RenderSpec(
            output_name=request.output_name, rate=rate, min_shot=self.min_shot, max_shot=self.max_shot,
            xfade=self.xfade, crf=self.crf, preset=self.preset, width=width, height=height,
            tts_engine=tts.engine if tts else None, tts_voice=tts.voice if tts else None,
            music=self.music or None, ducking=self.ducking, loudness=self.loudness, max_pixels=self.max_pixels,
        )  # fmt: skip
