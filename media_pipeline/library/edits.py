"""Edits as library items: canonical recipe, cache lookup, render, lineage.

Shared by the API (image edits under the pixel budget, inline) and the library's Dagster asset
(video edits, large images, concat, workflows), so both cache and record edits the same way.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from PIL import Image
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from media_pipeline.core.probe import probe
from media_pipeline.db.models import MediaDerivative, MediaItem
from media_pipeline.library import images, videos
from media_pipeline.library.media import Limits, Probed, add_file, by_sha256, record
from media_pipeline.library.recipes import (
    Format,
    OpRefused,
    Recipe,
    Trim,
    canonical,
    check_applies,
    recipe_sha256,
)
from media_pipeline.library.store import LibraryStore

WORK = "library/work"


class SourceDeleted(LookupError):
    """The item to edit was deleted while the edit was starting; nothing was made of it."""

    def __init__(self, media_id: int) -> None:
        super().__init__(f"media {media_id} was deleted before its edit started; nothing was made of it")
        self.media_id = media_id


@dataclass(frozen=True)
class Edited:
    item: MediaItem
    derivative: MediaDerivative
    cached: bool
    # The item's earliest derivative (what its lineage shows) when the lookup learnt it; else None.
    lineage: MediaDerivative | None = None


def canonical_recipe(source: MediaItem, store: LibraryStore, ops: Sequence[Any]) -> dict[str, Any]:
    """Every default filled in: the output format named, a trim in frames. Raises OpRefused."""
    check_applies(list(ops), source.type)
    ops = list(ops)
    if source.type == "image":
        if not any(isinstance(op, Format) for op in ops):
            ops.append(images.output_format(ops, source.content_type))
        return {"ops": canonical(ops)}
    resolved: list[Any] = []
    for number, op in enumerate(ops):
        if isinstance(op, Trim):
            info = probe(store.local_path(source.storage_key))
            plan = videos.plan_trim(op, info, f"ops.{number}")
            op = Trim(op="trim", start_frame=plan.first, end_frame=plan.end)
        resolved.append(op)
    if not any(isinstance(op, Format) for op in resolved):
        resolved.append(videos.default_format(source.content_type))
    return {"ops": canonical(resolved)}


def cached(session: Session, source_sha256: str, recipe_hash: str) -> MediaDerivative | None:
    return session.scalar(
        sa.select(MediaDerivative).where(
            MediaDerivative.source_sha256 == source_sha256, MediaDerivative.recipe_sha256 == recipe_hash
        )
    )


def _derive(
    session: Session,
    *,
    source: MediaItem | None,
    output: MediaItem,
    source_sha256: str,
    recipe: dict[str, Any],
    recipe_hash: str,
    inputs: list[int],
    run_id: str | None,
) -> Edited:
    derivative = MediaDerivative(
        source_id=source.id if source else None,
        media_id=output.id,
        source_sha256=source_sha256,
        recipe=recipe,
        recipe_sha256=recipe_hash,
        inputs=inputs,
        run_id=run_id,
    )
    session.add(derivative)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()  # the same edit finished first elsewhere: that one is the answer
        earlier = cached(session, source_sha256, recipe_hash)
        if earlier is None:
            raise
        return Edited(session.get(MediaItem, earlier.media_id), earlier, True)  # type: ignore[arg-type]
    return Edited(output, derivative, False)


def _hit_statement() -> sa.Select[Any]:
    other = aliased(MediaDerivative)
    earliest = sa.select(sa.func.min(other.id)).where(other.media_id == MediaDerivative.media_id).scalar_subquery()
    return (
        sa.select(MediaDerivative, MediaItem, earliest)
        .join(MediaItem, MediaItem.id == MediaDerivative.media_id)
        .where(
            MediaDerivative.source_sha256 == sa.bindparam("source_sha256"),
            MediaDerivative.recipe_sha256 == sa.bindparam("recipe_sha256"),
        )
    )


# Built once: constructing the statement costs as much as running it on a cache hit.
_HIT = _hit_statement()


def _hit(session: Session, source_sha256: str, recipe_hash: str) -> Edited | None:
    # One query for a repeat edit: the derivative, its item, and whether it is the item's earliest
    # derivative (then it is the item's lineage too, and the answer needs no further query).
    row = session.execute(_HIT, {"source_sha256": source_sha256, "recipe_sha256": recipe_hash}).first()
    if row is None:
        return None
    hit, item, first_id = row
    return Edited(item, hit, True, lineage=hit if first_id == hit.id else None)


def _stem(filename: str) -> str:
    return Path(filename).stem[:180] or "media"


def parse_ops(recipe: dict[str, Any]) -> list[Any]:
    return list(Recipe.model_validate(recipe).ops)


def edit(
    session: Session,
    store: LibraryStore,
    source: MediaItem,
    ops: Sequence[Any],
    limits: Limits,
    *,
    run_id: str | None = None,
    work_root: Path | None = None,
) -> Edited:
    """The item `ops` make of `source`: the cached one when this edit of this content was made before."""
    recipe = canonical_recipe(source, store, ops)
    recipe_hash = recipe_sha256(recipe)
    hit = _hit(session, source.sha256, recipe_hash)
    if hit is not None:
        return hit  # a cached edit takes no lock: it makes nothing a delete could orphan
    _hold(session, source)
    resolved = parse_ops(recipe)
    if source.type == "image":
        output = _render_image(session, store, source, resolved, limits)
    else:
        output = _render_video(session, store, source, resolved, limits, work_root)
    return _derive(
        session,
        source=source,
        output=output,
        source_sha256=source.sha256,
        recipe=recipe,
        recipe_hash=recipe_hash,
        inputs=[source.id],
        run_id=run_id,
    )


def _hold(session: Session, source: MediaItem) -> None:
    """Share-lock the source's row (Postgres) until the derivative is committed: a delete under
    way is waited for, and then the edit stops with SourceDeleted instead of recording a
    derivative of a deleted item."""
    query = sa.select(MediaItem.id).where(MediaItem.id == source.id).with_for_update(read=True)
    if session.scalar(query) is None:
        raise SourceDeleted(source.id)


def _render_image(
    session: Session, store: LibraryStore, source: MediaItem, ops: list[Any], limits: Limits
) -> MediaItem:
    with Image.open(store.local_path(source.storage_key)) as picture:
        rendered = images.render(picture, ops, source.content_type, limits.max_pixels)
    sha256, size, key = store.put_bytes(rendered.data)
    existing = by_sha256(session, sha256)
    if existing is not None:
        return existing
    suffix = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}[rendered.format]
    # What the bytes are is known: Pillow just wrote them; no probe is needed.
    probed = Probed(
        "image",
        images.CONTENT_TYPES[rendered.format],
        f"{rendered.format}_pipe",
        rendered.width,
        rendered.height,
        {"jpeg": "mjpeg"}.get(rendered.format, rendered.format),
        None,
        None,
        None,
        False,
    )
    item, _ = record(session, sha256, size, key, _stem(source.filename) + "-edit" + suffix, probed)
    return item


def _workdir(store: LibraryStore, work_root: Path | None) -> Path:
    folder = (work_root or store.artifacts.path(WORK)) / uuid.uuid4().hex
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _render_video(
    session: Session,
    store: LibraryStore,
    source: MediaItem,
    ops: list[Any],
    limits: Limits,
    work_root: Path | None,
) -> MediaItem:
    folder = _workdir(store, work_root)
    try:
        output = videos.render(store.local_path(source.storage_key), ops, source.content_type, folder)
        item, _ = add_file(session, store, output, _stem(source.filename) + "-edit" + output.suffix, limits)
        return item
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def concat(
    session: Session,
    store: LibraryStore,
    items: Sequence[MediaItem],
    limits: Limits,
    *,
    run_id: str | None = None,
) -> tuple[Edited, bool | None]:
    """The items one after another as a new item; whether the streams were copied (None: cached)."""
    for number, item in enumerate(items):
        if item.type != "video":
            raise OpRefused(f"items.{number}", f"media {item.id} is an image; only videos can be concatenated")
    source_sha256 = hashlib.sha256("".join(item.sha256 for item in items).encode()).hexdigest()
    recipe = {"concat": [item.sha256 for item in items]}
    recipe_hash = recipe_sha256(recipe)
    hit = _hit(session, source_sha256, recipe_hash)
    if hit is not None:
        return hit, None
    folder = _workdir(store, None)
    try:
        output, copied = videos.concat([store.local_path(item.storage_key) for item in items], folder)
        out_item, _ = add_file(session, store, output, _stem(items[0].filename) + "-concat" + output.suffix, limits)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    edited = _derive(
        session,
        source=items[0],
        output=out_item,
        source_sha256=source_sha256,
        recipe={**recipe, "stream_copy": copied},
        recipe_hash=recipe_hash,
        inputs=[item.id for item in items],
        run_id=run_id,
    )
    return edited, copied


def pixels(item: MediaItem) -> int:
    return (item.width or 0) * (item.height or 0)


def seconds(item: MediaItem) -> Fraction | None:
    return Fraction(item.duration) if item.duration else None
