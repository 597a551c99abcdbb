"""Compositions and segments in the domain database: saving (validated by each generator's own
params schema and input checks against the media library, the seed drawn once) and the snapshot
a render works from."""

from __future__ import annotations

import secrets
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import Session

from media_pipeline.compositions import inputs
from media_pipeline.compositions.generators.base import Generator
from media_pipeline.compositions.spec import SEED_MAX, CompositionIn, CompositionUpdate, SegmentIn
from media_pipeline.core.timecode import parse_rate
from media_pipeline.db.models import Composition, CompositionSegment, MediaItem


class Invalid(ValueError):
    """A request that cannot be saved; `field` names the offending field (a dotted path)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def segment_values(
    session: Session, body: SegmentIn, rate: Fraction, generators: dict[str, Generator], field: str
) -> dict[str, Any]:
    generator = generators.get(body.generator)
    if generator is None:
        raise Invalid(
            f"{field}.generator",
            f"there is no generator {body.generator!r}; the generators are: {', '.join(sorted(generators))}",
        )
    try:
        params = generator.params(body.params)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise Invalid(f"{field}.params{'.' + where if where else ''}", f"{generator.id}: {error['msg']}") from None
    caps = generator.capabilities
    frames = body.frames_at(rate)
    if Fraction(frames) / rate > caps.max_seconds and caps.durations is None:
        raise Invalid(f"{field}.frames", f"generator {generator.id} makes at most {caps.max_seconds} s")
    media = inputs.resolve(session, body.inputs)
    found = inputs.problems(generator, params, frames, rate, body.inputs, media)
    if found:
        where, message = found[0]
        raise Invalid(f"{field}.{where}", message)
    return {
        "generator": generator.id,
        "prompt": body.prompt,
        "negative_prompt": body.negative_prompt,
        "params": params,
        # "random" is drawn here, once: a re-render uses the stored seed, a new one is asked for.
        "seed": secrets.randbelow(SEED_MAX + 1) if body.seed == "random" else body.seed,
        "frames": frames,
        "seconds": None if body.seconds is None else str(body.seconds),
        "inputs": list(body.inputs),
        "transition": body.transition.stored(rate),
    }


def soundtrack_value(session: Session, media_id: int | None) -> str | None:
    """The stored form of a soundtrack (the media id as text), or Invalid naming `soundtrack`."""
    if media_id is None:
        return None
    item = session.get(MediaItem, media_id)
    if item is None:
        raise Invalid("soundtrack", f"there is no media with id {media_id} in the library; upload it with "
                      "POST /v1/media and give the id it answers")  # fmt: skip
    if not item.has_audio:
        raise Invalid("soundtrack", f"media {media_id} has no audio track; a soundtrack is a library video with "
                      "audio (the library keeps audio inside videos)")  # fmt: skip
    return str(media_id)


def create(session: Session, body: CompositionIn, generators: dict[str, Generator]) -> Composition:
    width, height = body.size
    composition = Composition(
        name=body.name, rate=body.rate, width=width, height=height,
        soundtrack=soundtrack_value(session, body.soundtrack),
    )  # fmt: skip
    rate = parse_rate(body.rate)
    for position, segment in enumerate(body.segments):
        values = segment_values(session, segment, rate, generators, f"segments.{position}")
        composition.segments.append(CompositionSegment(position=position, **values))
    session.add(composition)
    session.flush()
    return composition


def update(session: Session, composition: Composition, body: CompositionUpdate) -> None:
    soundtrack = soundtrack_value(session, body.soundtrack)
    composition.name, composition.rate, composition.soundtrack = body.name, body.rate, soundtrack
    composition.width, composition.height = body.size


def add_segment(
    session: Session, composition: Composition, body: SegmentIn, generators: dict[str, Generator]
) -> CompositionSegment:
    values = segment_values(session, body, parse_rate(composition.rate), generators, "body")
    segment = CompositionSegment(position=len(composition.segments), **values)
    composition.segments.append(segment)
    session.flush()
    return segment


def replace_segment(
    session: Session, segment: CompositionSegment, body: SegmentIn, generators: dict[str, Generator]
) -> None:
    values = segment_values(session, body, parse_rate(segment.composition.rate), generators, "body")
    for key, value in values.items():
        setattr(segment, key, value)


def delete_segment(session: Session, segment: CompositionSegment) -> None:
    composition = segment.composition
    composition.segments.remove(segment)
    session.delete(segment)
    for position, rest in enumerate(composition.segments):
        rest.position = position


def reorder(composition: Composition, order: list[int]) -> None:
    ids = [s.id for s in composition.segments]
    if sorted(order) != sorted(ids) or len(set(order)) != len(order):
        raise Invalid("order", f"give every segment id of the composition once, in the new order: {sorted(ids)}")
    by_id = {s.id: s for s in composition.segments}
    for position, segment_id in enumerate(order):
        by_id[segment_id].position = position
    composition.segments.sort(key=lambda s: s.position)


def get(session: Session, composition_id: int) -> Composition | None:
    return session.get(Composition, composition_id)


def listing(session: Session, after: int | None, limit: int) -> list[Composition]:
    query = sa.select(Composition).order_by(Composition.id.desc()).limit(limit)
    if after is not None:
        query = query.where(Composition.id < after)
    return list(session.scalars(query))


def compositions_using(session: Session, media_id: int) -> list[int]:
    """The compositions that name `media_id` as a segment's input or as their soundtrack."""
    found = set(session.scalars(sa.select(Composition.id).where(Composition.soundtrack == str(media_id))))
    # Inputs are a JSON list, which SQLite and Postgres query differently: read the non-empty ones.
    rows = session.execute(
        sa.select(CompositionSegment.composition_id, CompositionSegment.inputs).where(
            sa.cast(CompositionSegment.inputs, sa.String) != "[]"
        )
    )
    found |= {composition_id for composition_id, inputs in rows if media_id in (inputs or [])}
    return sorted(found)


def soundtrack_id(composition: Composition) -> int | None:
    return int(composition.soundtrack) if composition.soundtrack and composition.soundtrack.isdigit() else None


def snapshot(composition: Composition) -> dict[str, Any]:
    """What a render works from, fixed when it is asked for (edits afterwards do not change it)."""
    return {
        "composition_id": composition.id,
        "rate": composition.rate,
        "width": composition.width,
        "height": composition.height,
        "soundtrack": soundtrack_id(composition),
        "segments": [
            {
                "id": s.id, "generator": s.generator, "prompt": s.prompt, "negative_prompt": s.negative_prompt,
                "params": s.params, "seed": s.seed, "frames": s.frames, "inputs": list(s.inputs),
                "transition": s.transition,
            }
            for s in composition.segments
        ],
    }  # fmt: skip
