"""The lock files match pyproject.toml: every declared dependency is pinned, at a version the
declaration allows, with hashes (scripts/lock regenerates them; scripts/bootstrap installs them)."""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from media_pipeline_tests.conftest import REPO

PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(?P<version>\S+)")


def pins(lock: str) -> dict[str, str]:
    found = {}
    for line in (REPO / lock).read_text().splitlines():
        if match := PIN.match(line):
            found[canonicalize_name(match["name"])] = match["version"]
    return found


def declared(*extras: str) -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = list(project["dependencies"])
    for extra in extras:
        names += project["optional-dependencies"][extra]
    return [Requirement(text) for text in names]


@pytest.mark.parametrize(("lock", "extras"), [("requirements.lock", ()), ("requirements-test.lock", ("test",))])
def test_every_dependency_is_pinned_at_an_allowed_version(lock: str, extras: tuple[str, ...]) -> None:
    pinned = pins(lock)
    for requirement in declared(*extras):
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement} is not in {lock}: run scripts/lock"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{lock} pins {name}=={pinned[name]}, outside {requirement}: run scripts/lock"
        )


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-test.lock"])
def test_every_pin_has_hashes(lock: str) -> None:
    text = (REPO / lock).read_text()
    entries = re.split(r"\n(?=\S)", text)
    for entry in entries:
        if PIN.match(entry):
            assert "--hash=sha256:" in entry, entry.splitlines()[0]
