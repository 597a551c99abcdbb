"""The clip generator interface: what a plug-in implements, and what the render asks of it.

A generator turns one segment's request (prompt, params, seed, length, size, input media from
the library, handed over as local files) into one video clip, through an asynchronous task, as hosted providers work:

    task_id = generator.submit(request)          # start; returns the provider's task id
    state = generator.poll(task_id)              # PENDING, THROTTLED, RUNNING, SUCCEEDED, FAILED
    generator.fetch(task_id, target)             # write the finished clip to `target`
    generator.cancel(task_id)                    # the render was cancelled

The clip may come back at its own rate, size and length: the render conforms it. A generator
declares what it can do (`Capabilities`), its parameters as a pydantic model (validated when a
segment is saved, shown by `GET /v1/generators` as JSON Schema) and a `version`: bumping it
invalidates every cached clip it made. Inputs are media library items: a segment names their
ids, the generator says which types it takes (`Capabilities.input_types`) and may refuse an
input it cannot use (`input_problems`, asked when a segment is saved and again when it is
planned), and receives the files themselves (never a path from a request). Third-party
generators are found through the entry point group `media_pipeline.generators` (see `registry.py`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

MediaType = Literal["image", "video"]
TaskStatus = Literal["PENDING", "THROTTLED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]
FINISHED: tuple[TaskStatus, ...] = ("SUCCEEDED", "FAILED", "CANCELLED")


class GeneratorError(RuntimeError):
    """A generation failed; `str()` is a sentence naming the generator's own error."""


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Capabilities:
    """What a generator can make. The render conforms whatever comes back, so these say what to
    ask for, not what the video will be."""

    # Clip lengths it makes, in seconds: None means any length up to `max_seconds`; else the
    # request asks for the shortest listed length that covers the segment (the rest is trimmed).
    durations: tuple[Fraction, ...] | None = None
    max_seconds: Fraction = Fraction(600)
    # Sizes it makes (width, height): None means any size; else the one nearest in aspect ratio.
    sizes: tuple[tuple[int, int], ...] | None = None
    inputs: int = 0  # how many input media it takes at most
    requires_input: bool = False
    input_types: tuple[MediaType, ...] = ("image",)  # the library media types it takes as inputs
    needs_key: bool = False
    can_cancel: bool = True
    # The Dagster pool its generation steps run in: one pool per external provider.
    pool: str = "generators"


@dataclass(frozen=True)
class InputMedia:
    """A library item named as a segment's input: what the library probed from its content."""

    id: int
    type: MediaType
    sha256: str  # of the content: what the generation cache key holds
    storage_key: str  # where the artifact store keeps it
    width: int | None = None
    height: int | None = None
    rate: Fraction | None = None  # videos: exact
    frame_count: int | None = None  # videos: counted
    has_audio: bool = False


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    negative_prompt: str
    params: dict[str, Any]  # validated by the generator's params model
    seed: int
    frames: int  # the segment's length at `rate`
    rate: Fraction
    width: int  # what to ask the generator for (one of its sizes, if it lists them)
    height: int
    seconds: Fraction  # what to ask the generator for (one of its durations, if it lists them)
    inputs: tuple[Path, ...] = ()  # the input media, as local files, in the segment's order
    workdir: Path = field(default=Path("."))  # a folder the generator may write into


@dataclass(frozen=True)
class TaskState:
    status: TaskStatus
    progress: float | None = None  # 0..1 when the provider says
    error: str | None = None  # the provider's reason, when FAILED


class Generator(ABC):
    id: ClassVar[str]
    version: ClassVar[str]
    description: ClassVar[str] = ""
    params_model: ClassVar[type[BaseModel]] = NoParams
    capabilities: ClassVar[Capabilities] = Capabilities()
    poll_seconds: ClassVar[float] = 1.0  # how long to wait between polls

    def key_set(self) -> bool:
        """Whether the credentials it needs are configured (always, when it needs none)."""
        return True

    def unavailable(self) -> str | None:
        """None when it can generate now, else a sentence saying what to configure."""
        if self.capabilities.needs_key and not self.key_set():
            return f"generator {self.id} needs an API key, and none is set"
        return None

    def model(self, params: dict[str, Any]) -> str:
        """The provider's model the params select (part of the cache key)."""
        return ""

    def params(self, raw: dict[str, Any]) -> dict[str, Any]:
        """`raw` validated and completed with defaults (pydantic's ValidationError if wrong)."""
        return self.params_model.model_validate(raw).model_dump(mode="json")

    def input_problems(
        self, params: dict[str, Any], frames: int, rate: Fraction, inputs: tuple[InputMedia, ...]
    ) -> list[tuple[str, str]]:
        """What makes these inputs unusable with these (validated) params: (field, sentence) pairs,
        the field relative to the segment (`inputs.0`, `params.start_frame`); none by default."""
        return []

    @abstractmethod
    def submit(self, request: GenerationRequest) -> str: ...

    @abstractmethod
    def poll(self, task_id: str) -> TaskState: ...

    @abstractmethod
    def fetch(self, task_id: str, target: Path) -> None: ...

    def cancel(self, task_id: str) -> None:  # noqa: B027 - optional: not every provider can cancel
        """Ask the provider to stop the task; a generator that cannot says so in its capabilities."""

    # -- what a request asks for ---------------------------------------------------------------

    def ask_seconds(self, frames: int, rate: Fraction) -> Fraction:
        exact = Fraction(frames) / rate
        durations = self.capabilities.durations
        if durations is None:
            return exact
        longer = [d for d in sorted(durations) if d >= exact]
        return longer[0] if longer else max(durations)

    def ask_size(self, width: int, height: int) -> tuple[int, int]:
        sizes = self.capabilities.sizes
        if sizes is None:
            return width, height
        aspect = Fraction(width, height)
        return min(sizes, key=lambda s: (abs(Fraction(s[0], s[1]) - aspect), -s[0] * s[1]))
