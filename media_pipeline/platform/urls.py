"""URLs the API hands out for files under the artifact root (jobs record them as their outputs)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

ARTIFACTS_PREFIX = "/v1/artifacts/"


def artifact_url(relative: str) -> str:
    return ARTIFACTS_PREFIX + quote(relative.lstrip("/"))


def artifact_url_for(path: str | Path, root: Path) -> str | None:
    """The download URL of an absolute path, or None if it is not under the artifact root."""
    try:
        relative = Path(path).resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return None
    return artifact_url(relative.as_posix())
