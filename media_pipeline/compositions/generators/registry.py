"""Every generator this installation offers: the built-in ones and those of installed packages.

A package adds generators without touching this code by declaring entry points in the group
`media_pipeline.generators`, each naming a `Generator` subclass (or a callable returning one
instance), e.g. in its pyproject.toml:

    [project.entry-points."media_pipeline.generators"]
    studio_depth = "studio_generators:DepthGenerator"

Entry points are read on every call (importlib.metadata scans the installed distributions), so
a package installed while the server runs is found by the next request or run.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from media_pipeline.compositions.generators.base import Generator
from media_pipeline.compositions.generators.local import LocalGenerator
from media_pipeline.compositions.generators.media import ClipGenerator, StillGenerator
from media_pipeline.compositions.generators.providers import RunwayGenerator, StabilityGenerator
from media_pipeline.settings import Settings, load_settings

GROUP = "media_pipeline.generators"
logger = logging.getLogger(__name__)


class UnknownGenerator(KeyError):
    pass


def builtin(settings: Settings) -> list[Generator]:
    return [
        LocalGenerator(),
        StillGenerator(),
        ClipGenerator(),
        RunwayGenerator(settings),
        StabilityGenerator(settings),
    ]


def plugins() -> list[Generator]:
    found: list[Generator] = []
    for entry in entry_points(group=GROUP):
        try:
            made = entry.load()()
        except Exception:  # a broken plug-in must not take the built-in generators down with it
            logger.exception("generator entry point %s (%s) could not be loaded", entry.name, entry.value)
            continue
        if not isinstance(made, Generator):
            logger.error("generator entry point %s (%s) did not make a Generator", entry.name, entry.value)
            continue
        found.append(made)
    return found


def generators(settings: Settings | None = None) -> dict[str, Generator]:
    """Built-in generators first: a plug-in cannot replace one under the same id."""
    settings = settings or load_settings()
    out: dict[str, Generator] = {}
    for generator in [*builtin(settings), *plugins()]:
        if generator.id in out:
            logger.warning("generator id %s is offered twice; the first one is used", generator.id)
            continue
        out[generator.id] = generator
    return out


def get(generator_id: str, settings: Settings | None = None) -> Generator:
    found = generators(settings)
    if generator_id not in found:
        raise UnknownGenerator(
            f"there is no generator {generator_id!r}; the generators are: {', '.join(sorted(found))}"
        )
    return found[generator_id]
