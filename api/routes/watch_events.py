"""Watch events: files dropped into watch folders that were not published, and why."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import SettingsDep
from api.pagination import CursorQuery, LimitQuery, decode_cursor, encode_cursor
from api.schemas import Page, WatchEvent
from media_pipeline.editorial import watch_events

router = APIRouter(prefix="/watch-events", tags=["cuts"])


@router.get(
    "",
    response_model=Page[WatchEvent],
    summary="Dropped files that were not published (links, FIFOs, too large, bad watch.json), newest first",
    description="A file dropped into a watch folder is published as a cut version only if it is a regular file "
    "within the upload size limit whose folder's `watch.json` is valid; every other drop is listed here with the "
    "reason, once per version of the file. The newest 1,000 are kept. Cuts whose ingest failed are "
    "`GET /v1/cuts?status=failed`.",
)
def list_watch_events(settings: SettingsDep, limit: LimitQuery = 50, cursor: CursorQuery = None) -> Page[WatchEvent]:
    position = decode_cursor(cursor, before=str)
    events = watch_events.newest(
        settings.artifact_root, limit=limit + 1, before=position["before"] if position else None
    )
    next_cursor = encode_cursor({"before": events[limit - 1].id}) if len(events) > limit else None
    return Page[WatchEvent](items=[WatchEvent.model_validate(vars(e)) for e in events[:limit]], next_cursor=next_cursor)
