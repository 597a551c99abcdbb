"""A slideshow's folder in the artifact store: scenes.json and uploaded assets, deduplicated.

`assets.json` records each stored file's sha-256 and size. The same bytes uploaded again under
another name are hard-linked, never stored twice. A batch of uploads is checked as a whole
before anything is stored, so a refused file leaves the folder as it was.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from media_pipeline.core.audio import check_audio
from media_pipeline.core.ffmpeg import MediaError
from media_pipeline.core.files import atomic_path, locked, sha256_file
from media_pipeline.slideshows.render import check_image
from media_pipeline.slideshows.spec import SceneList

MANIFEST = "assets.json"
LOCK = ".assets.lock"


class AssetRefused(ValueError):
    """An upload that cannot be used; `str()` says why and what to do."""


@dataclass(frozen=True)
class StoredAsset:
    subdir: str
    name: str
    sha256: str
    size: int
    stored: str  # "new" | "unchanged" | "linked" (same bytes as another file, not stored twice)


def write_scenes(folder: Path, scenes: SceneList) -> Path:
    target = folder / "scenes.json"
    with atomic_path(target) as tmp:
        tmp.write_text(scenes.model_dump_json(indent=2, exclude_none=True))
    return target


def _manifest(folder: Path) -> dict[str, dict[str, object]]:
    path = folder / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


def check_upload(path: Path, name: str, subdir: str, max_pixels: int) -> None:
    """AssetRefused unless `path` (named `name` by the client) is usable in `subdir`."""
    if subdir == "images":
        problem = check_image(path, max_pixels)
        if problem:
            raise AssetRefused(problem.replace(path.name, name))
    else:
        try:
            check_audio(path)
        except MediaError as exc:
            raise AssetRefused(str(exc.summary).replace(path.name, name)) from exc


def store(folder: Path, subdir: str, uploads: list[tuple[str, Path]]) -> list[StoredAsset]:
    """Move checked temporary files into `folder/subdir/<name>`; record them in the manifest.

    One batch at a time per slideshow: two uploads at once would each rewrite the manifest from
    what they read, and the later would drop the earlier's entries."""
    folder.mkdir(parents=True, exist_ok=True)
    with locked(folder / LOCK):
        return _store(folder, subdir, uploads)


def _store(folder: Path, subdir: str, uploads: list[tuple[str, Path]]) -> list[StoredAsset]:
    manifest = _manifest(folder)
    target_dir = folder / subdir
    target_dir.mkdir(parents=True, exist_ok=True)
    stored = []
    for name, path in uploads:
        digest, size = sha256_file(path), path.stat().st_size
        key = f"{subdir}/{name}"
        target = target_dir / name
        same = next(
            (k for k, v in manifest.items() if v["sha256"] == digest and (folder / k).is_file()),
            None,
        )
        if manifest.get(key, {}).get("sha256") == digest and target.is_file():
            outcome = "unchanged"
        elif same is not None:
            with atomic_path(target) as tmp:
                os.link(folder / same, tmp)
            outcome = "linked"
        else:
            with atomic_path(target) as tmp:
                shutil.copyfile(path, tmp)
            outcome = "new"
        manifest[key] = {"sha256": digest, "size": size}
        stored.append(StoredAsset(subdir, name, digest, size, outcome))
    with atomic_path(folder / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return stored
