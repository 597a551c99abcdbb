"""Dropped files that did not become cut versions, and why: the record users look at.

A link, a FIFO, a file over the size limit, a bad `watch.json`: each is kept as one small JSON
file under `<artifacts>/watch_events/`, listed by the API (`GET /v1/watch-events`). A table
would need a migration for what is an append-only log; files named by time sort themselves,
and only the newest MAX_EVENTS are kept.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from media_pipeline.core.files import atomic_path

FOLDER = "watch_events"
MAX_EVENTS = 1000


@dataclass(frozen=True)
class WatchEvent:
    id: str  # sorts by time: "<ns since epoch, 20 digits>-<random>"
    at: str  # ISO 8601, UTC
    sensor: str
    file: str  # relative to its watch folder: a user's own name for it, no server path
    outcome: str  # skipped | failed
    reason: str


def record(artifact_root: Path, *, sensor: str, file: str, outcome: str, reason: str) -> WatchEvent:
    now = time.time_ns()
    event = WatchEvent(
        id=f"{now:020d}-{uuid.uuid4().hex[:8]}",
        at=dt.datetime.fromtimestamp(now / 1e9, dt.UTC).isoformat(timespec="seconds"),
        sensor=sensor,
        file=file,
        outcome=outcome,
        reason=reason,
    )
    folder = artifact_root / FOLDER
    with atomic_path(folder / f"{event.id}.json") as tmp:
        tmp.write_text(json.dumps(asdict(event)))
    _prune(folder)
    return event


def _prune(folder: Path) -> None:
    names = sorted(name for name in os.listdir(folder) if name.endswith(".json") and not name.startswith("."))
    for name in names[: max(0, len(names) - MAX_EVENTS)]:
        (folder / name).unlink(missing_ok=True)


def newest(artifact_root: Path, *, limit: int, before: str | None = None) -> list[WatchEvent]:
    """Events newest first, at most `limit`, only those older than the event id `before`."""
    folder = artifact_root / FOLDER
    if not folder.is_dir():
        return []
    ids = sorted((name[:-5] for name in os.listdir(folder) if name.endswith(".json") and name[0] != "."), reverse=True)
    if before is not None:
        ids = [event_id for event_id in ids if event_id < before]
    events = []
    for event_id in ids[:limit]:
        try:
            events.append(WatchEvent(**json.loads((folder / f"{event_id}.json").read_text())))
        except (FileNotFoundError, ValueError, TypeError):  # pruned meanwhile, or not ours
            continue
    return events
