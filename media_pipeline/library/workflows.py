"""Saved workflows: named steps, each an op list reading the input or another step's output.

Checked on save: step ids unique, every `use` names the input or a step, no cycles, and types
fit (a step's ops are all image ops or all video ops, matching what it reads; the input is
what the steps reading it need). Steps run in an order where each runs after the step it reads.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from media_pipeline.library.recipes import IMAGE_FORMATS, IMAGE_OPS, VIDEO_OPS, EditOp, OpRefused, check_applies

INPUT = "input"
MAX_STEPS = 50


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
    use: str = Field(default=INPUT, min_length=1, max_length=64, description="`input` or another step's id")
    ops: list[EditOp] = Field(min_length=1, max_length=32)


class WorkflowDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
    description: str = Field(default="", max_length=2000)
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)

    @model_validator(mode="after")
    def _graph(self) -> WorkflowDefinition:
        check_graph(self.steps)
        return self


def step_type(step: Step, number: int) -> str:
    """image or video, from the step's ops (a lone format op says which by its format)."""
    kinds = set()
    for op in step.ops:
        if op.op == "format":
            kinds.add("image" if op.format in IMAGE_FORMATS else "video")
        elif op.op in IMAGE_OPS and op.op not in VIDEO_OPS:
            kinds.add("image")
        else:
            kinds.add("video")
    if len(kinds) > 1:
        raise OpRefused(f"steps.{number}.ops", f"step {step.id!r} mixes image and video ops; split it into two steps")
    return kinds.pop()


def check_graph(steps: list[Step]) -> dict[str, str]:
    """Each step's output type (raises ValueError / OpRefused with the step named)."""
    by_id: dict[str, int] = {}
    for number, step in enumerate(steps):
        if step.id == INPUT:
            raise ValueError(f"steps.{number}.id: {INPUT!r} names the workflow's input; pick another id")
        if step.id in by_id:
            raise ValueError(f"steps.{number}.id: step id {step.id!r} is used twice")
        by_id[step.id] = number
    for number, step in enumerate(steps):
        if step.use != INPUT and step.use not in by_id:
            raise ValueError(f"steps.{number}.use: there is no step {step.use!r} (steps: {', '.join(by_id)})")
    for step in steps:  # every `use` chain must reach the input
        seen = [step.id]
        current = step
        while current.use != INPUT:
            if current.use in seen:
                raise ValueError(f"the steps {' -> '.join([*seen, current.use])} form a cycle")
            seen.append(current.use)
            current = steps[by_id[current.use]]
    types = {step.id: step_type(step, number) for number, step in enumerate(steps)}
    types[INPUT] = ""
    for number, step in enumerate(steps):
        wanted = types[step.id]
        if step.use == INPUT:
            if types[INPUT] and types[INPUT] != wanted:
                raise OpRefused(
                    f"steps.{number}.ops",
                    f"step {step.id!r} needs a {wanted} input, but another step reads the input as a {types[INPUT]}",
                )
            types[INPUT] = wanted
        elif types[step.use] != wanted:
            raise OpRefused(
                f"steps.{number}.ops",
                f"step {step.id!r} has {wanted} ops but reads step {step.use!r}, whose output is a {types[step.use]}",
            )
        check_applies(step.ops, wanted, prefix=f"steps.{number}.ops")
    return types


def input_type(definition: dict[str, Any]) -> str:
    return check_graph(WorkflowDefinition.model_validate(definition).steps)[INPUT]


def order(steps: list[Step]) -> list[Step]:
    """Steps so that each comes after the step it reads."""
    done: set[str] = {INPUT}
    ordered: list[Step] = []
    pending = list(steps)
    while pending:
        ready = [step for step in pending if step.use in done]
        for step in ready:
            ordered.append(step)
            done.add(step.id)
            pending.remove(step)
    return ordered
