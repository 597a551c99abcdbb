"""The package layout holds: the media core knows no area, ORM, Dagster or web framework."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "media_pipeline"
FORBIDDEN_IN_CORE = ("dagster", "sqlalchemy", "fastapi", "starlette", "api", "alembic", "media_pipeline.")
ALLOWED_FROM_PACKAGE = ("media_pipeline.core",)


def imported_modules(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("module", sorted(PACKAGE.joinpath("core").glob("*.py")), ids=lambda p: p.name)
def test_media_core_imports_no_area_orm_dagster_or_web(module: Path) -> None:
    for name in imported_modules(module):
        if name.startswith(ALLOWED_FROM_PACKAGE):
            continue
        assert not any(name == f or name.startswith(f if f.endswith(".") else f + ".") for f in FORBIDDEN_IN_CORE), (
            f"{module.name} imports {name}: the media core must stay free of areas, the ORM, Dagster and FastAPI"
        )


def test_every_area_package_is_listed_and_contributes_definitions() -> None:
    from media_pipeline.areas import AREAS
    from media_pipeline.definitions import defs

    packages = {f.name for f in PACKAGE.iterdir() if (f / "definitions.py").exists()} - {"platform"}
    assert packages == set(AREAS), "every area package with a definitions.py is listed in media_pipeline/areas.py"
    assert defs.resolve_job_def("health_check") is not None
