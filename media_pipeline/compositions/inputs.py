"""Segment inputs: media library items, named by id. Checked against the library when a segment is
saved and again when a render is planned (an item may have been deleted since); generators get
the files from the artifact store, never from a path a client gave."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

import sqlalchemy as sa
from sqlalchemy.orm import Session

from media_pipeline.compositions.generators.base import Generator, InputMedia
from media_pipeline.db.models import MediaItem


def from_item(item: MediaItem) -> InputMedia:
    return InputMedia(
        id=item.id, type="video" if item.type == "video" else "image", sha256=item.sha256,
        storage_key=item.storage_key, width=item.width, height=item.height,
        rate=Fraction(item.rate) if item.rate else None, frame_count=item.frame_count, has_audio=item.has_audio,
    )  # fmt: skip


def resolve(session: Session, ids: Iterable[int]) -> dict[int, InputMedia]:
    """The library items among `ids` (missing ones are simply absent)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {item.id: from_item(item) for item in session.scalars(sa.select(MediaItem).where(MediaItem.id.in_(wanted)))}


def a_or_an(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def problems(
    generator: Generator,
    params: dict[str, object],
    frames: int,
    rate: Fraction,
    ids: Iterable[int],
    media: dict[int, InputMedia],
) -> list[tuple[str, str]]:
    """Everything wrong with a segment's inputs for its generator: (field relative to the segment,
    sentence) pairs; the generator's own checks only once every input exists and has a type it takes."""
    caps = generator.capabilities
    ids = list(ids)
    kinds = " or ".join(a_or_an(t) for t in caps.input_types)
    if caps.inputs == 0 and ids:
        return [("inputs", f"generator {generator.id} takes no inputs; remove them")]
    if len(ids) > caps.inputs:
        return [("inputs", f"generator {generator.id} takes at most {caps.inputs} input(s), {kinds} of the library")]
    if caps.requires_input and not ids:
        return [("inputs", f"generator {generator.id} needs an input: the id of {kinds} in the media library")]
    found: list[tuple[str, str]] = []
    for position, media_id in enumerate(ids):
        item = media.get(media_id)
        if item is None:
            found.append((f"inputs.{position}", f"there is no media with id {media_id} in the library; upload it with "
                          "POST /v1/media and give the id it answers"))  # fmt: skip
        elif item.type not in caps.input_types:
            found.append((f"inputs.{position}", f"generator {generator.id} takes {kinds}; media {media_id} is "
                          f"{a_or_an(item.type)}"))  # fmt: skip
    if found:
        return found
    return generator.input_problems(dict(params), frames, rate, tuple(media[i] for i in ids))
