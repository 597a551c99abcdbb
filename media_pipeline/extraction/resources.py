"""The extraction area's settings as a Dagster resource: where sources may come from, limits."""

import os
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from media_pipeline.extraction.sources import LibraryFile, SourcePolicy


class ExtractionSources(dg.ConfigurableResource):
    """Which files and URLs items may name, download limits, and each item's time limit."""

    media_roots: str = ""
    allow_private: bool = False
    max_bytes: int = 2 * 1024**3
    fetch_timeout: int = 300
    item_timeout: int = 600

    def policy(self, library: Callable[[int], LibraryFile | None] | None = None) -> SourcePolicy:
        roots = tuple(Path(os.path.realpath(p)) for p in self.media_roots.split(os.pathsep) if p.strip())
        return SourcePolicy(
            media_roots=roots,
            allow_private=self.allow_private,
            max_bytes=self.max_bytes,
            timeout=self.fetch_timeout,
            library=library,
        )
