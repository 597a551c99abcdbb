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
Entries are `cache/clips/<k[:2]>/<k>.mp4` with `<k>.json` beside it (the key's payload, the
provider's task id, when). A clip appears under its name only once complete (atomic rename),
so a crash never leaves a half clip that looks cached.

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


def canonical(payload: Any) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_of(payload: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(payload)).hexdigest()


@dataclass(frozen=True)
class GenerationCache:
    root: Path  # <artifact root>/compositions/cache

    def clip(self, key: str) -> Path:
        return self.root / "clips" / key[:2] / f"{key}.mp4"

    def record(self, key: str) -> Path:
        return self.clip(key).with_suffix(".json")

    def has(self, key: str) -> bool:
        return self.clip(key).is_file() and self.record(key).is_file()

    def info(self, key: str) -> dict[str, Any]:
        return dict(json.loads(self.record(key).read_text())) if self.record(key).is_file() else {}

    def put(self, key: str, payload: dict[str, Any], clip: Path, task_id: str) -> Path:
        """Move the finished `clip` into the cache under `key` (the record written last: an
        entry is only a hit once both exist)."""
        target = self.clip(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(clip, target)
        record = {"key": key, "payload": payload, "task_id": task_id, "created": dt.datetime.now(dt.UTC).isoformat()}
        with atomic_path(self.record(key)) as tmp:
            tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
        return target

    def piece(self, key: str) -> Path:
        return self.root / "pieces" / key[:2] / f"{key}.mp4"
