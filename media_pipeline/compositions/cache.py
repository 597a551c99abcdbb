"""The generation cache: content-addressed clips, stored with the artifacts, shared by every
composition, kept across restarts (it is files, not memory).

A clip's key is the sha-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of
everything that decides what the generator makes:

    {"generator": id, "version": its version, "model": the params' model, "prompt": ...,
     "negative_prompt": ..., "params": the validated params, "seed": ..., "duration": what the
     generator is asked for (frames at a rate, or its own seconds), "size": [w, h] asked for,
     "inputs": [sha-256 of every input's content, in order, as the library recorded it]}

So: nothing changed, nothing is generated; an edited prompt, params, seed, length or input
generates that segment alone; a generator's version bump regenerates every segment it made.
Entries are `compositions/cache/clips/<k[:2]>/<k>.mp4` in the artifact store (S3 too) with
`<k>.json` beside it (the key's payload, the provider's task id, when). A clip appears under its
name only once complete (atomic rename, stored before its record), so a crash never leaves a half
clip that looks cached.

The conformed pieces the final video is joined from are cached the same way
(`cache/pieces/`), keyed by the clip's key and the composition's look and frame range.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from media_pipeline.core.files import atomic_path
from media_pipeline.resources import ArtifactStore


def canonical(payload: Any) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_of(payload: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(payload)).hexdigest()


@dataclass(frozen=True)
class GenerationCache:
    """The cache in the artifact store: with the S3 backend every machine sees every clip (a
    provider's clip is paid for once), with the local folder the machines that share it."""

    store: ArtifactStore
    prefix: str = "compositions/cache"

    def _key(self, kind: str, key: str, suffix: str) -> str:
        return f"{self.prefix}/{kind}/{key[:2]}/{key}{suffix}"

    def has(self, key: str) -> bool:
        # The record is stored last: a clip without it is not an entry yet.
        return self.store.exists(self._key("clips", key, ".json")) and self.store.exists(
            self._key("clips", key, ".mp4")
        )

    def clip(self, key: str) -> Path:
        """The cached clip as a local file (fetched from the store if this machine lacks it)."""
        return self.store.localize(self._key("clips", key, ".mp4"))

    def info(self, key: str) -> dict[str, Any]:
        record = self._key("clips", key, ".json")
        return dict(json.loads(self.store.localize(record).read_text())) if self.store.exists(record) else {}

    def put(self, key: str, payload: dict[str, Any], clip: Path, task_id: str) -> Path:
        """Move the finished `clip` into the cache under `key` and store it, the record last: an
        entry is only a hit once both exist."""
        clip_key, record_key = self._key("clips", key, ".mp4"), self._key("clips", key, ".json")
        target = self.store.path(clip_key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(clip, target)
        record = {"key": key, "payload": payload, "task_id": task_id, "created": dt.datetime.now(dt.UTC).isoformat()}
        with atomic_path(self.store.path(record_key)) as tmp:
            tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
        self.store.publish(clip_key, record_key)
        return target

    def has_piece(self, key: str) -> bool:
        return self.store.exists(self._key("pieces", key, ".mp4"))

    def piece_target(self, key: str) -> Path:
        """Where a conformed piece is written in the working copy, before `stored_piece`."""
        target = self.store.path(self._key("pieces", key, ".mp4"))
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def stored_piece(self, key: str) -> None:
        self.store.publish(self._key("pieces", key, ".mp4"))

    def piece(self, key: str) -> Path:
        """The conformed piece as a local file (fetched from the store if need be)."""
        return self.store.localize(self._key("pieces", key, ".mp4"))
