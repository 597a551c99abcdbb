"""Shared fixtures: real databases (SQLite and Postgres), real ffmpeg media, a real Dagster instance."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from PIL import Image

from media_pipeline import db
from media_pipeline.core import ffmpeg
from media_pipeline.editorial.assets.cuts import editorial_assets
from media_pipeline.editorial.partitions import cut_versions
from media_pipeline.editorial.publish import publish_cut
from media_pipeline.editorial.timeline import ReadOptions
from media_pipeline.resources import ArtifactStore, DatabaseResource, FFmpegResource, MediaSearchResource
from media_pipeline.samples import make_indexed_movie

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus" / "timelines"
POSTGRES_ADMIN = os.environ.get("MEDIA_PIPELINE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextlib.contextmanager
def throwaway_postgres(prefix: str) -> Iterator[str]:
    """A new Postgres database (SQLAlchemy URL), dropped with its connections afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"Postgres at {POSTGRES_ADMIN} is not reachable ({exc}); start it (see README, Tests)")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN.rsplit("/", 1)[0]
    try:
        yield f"postgresql+psycopg://{base.split('://', 1)[1]}/{name}"
    finally:
        for engine_url, engine in list(db._engines.items()):
            if name in engine_url:
                engine.dispose()
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def _sigterm_not_ignored() -> None:
    """Undo an inherited or library-set SIGTERM "ignore" before each test.

    Children inherit an ignored signal across exec: with SIGTERM ignored in the test process,
    Dagster's compute-log watcher processes (and any ffmpeg a test cancels) outlive their
    terminate, and each in-process step then waits out a 30 s cleanup timeout.
    """
    if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A Postgres database this test owns, dropped afterwards.

    One per test, never one per session: a test that points Dagster's storage at it (its tables
    `runs`, `instigators`, ...) must not leave them for the next test of the same xdist worker.
    """
    with throwaway_postgres("mp_test") as url:
        yield url


# Pipeline tests use `domain_url`: SQLite by default, Postgres with MEDIA_PIPELINE_TEST_DATABASE=postgres
# (scripts/test runs them both ways). Storage and API tests use `db_url`, which is always both.
TEST_DATABASE = os.environ.get("MEDIA_PIPELINE_TEST_DATABASE", "sqlite")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Only a test that reaches `domain_url` changes with MEDIA_PIPELINE_TEST_DATABASE; scripts/test's
    # Postgres pass selects these (`-m domain_database`) instead of repeating the rest unchanged.
    # A test marked `media_cases` varies only media and rates over its cases: its first case is
    # enough there, the rest are the same rows in the same tables.
    seen_media_cases: set[tuple[Path, str]] = set()
    for item in items:
        if "domain_url" not in getattr(item, "fixturenames", ()):
            continue
        if item.get_closest_marker("media_cases") is not None:
            function = (item.path, getattr(item, "originalname", item.name))
            if function in seen_media_cases:
                continue
            seen_media_cases.add(function)
        item.add_marker(pytest.mark.domain_database)


def _migrated_postgres(url: str) -> Iterator[str]:
    """The test's own Postgres database, migrated."""
    db.migrate(url)
    yield url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """For storage tests: run on both databases, whatever MEDIA_PIPELINE_TEST_DATABASE says."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/domain.db"
    else:
        yield from _migrated_postgres(request.getfixturevalue("postgres_url"))


@pytest.fixture
def domain_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The domain database of the suite's run: SQLite, or Postgres with MEDIA_PIPELINE_TEST_DATABASE=postgres."""
    if TEST_DATABASE == "postgres":
        yield from _migrated_postgres(request.getfixturevalue("postgres_url"))
    else:
        yield f"sqlite:///{tmp_path}/domain.db"


@pytest.fixture
def artifact_root(tmp_path: Path) -> Path:
    root = tmp_path / "artifacts"
    root.mkdir()
    return root


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "media"
    folder.mkdir()
    return folder


def make_resources(url: str, artifact_root: Path, media_roots: list[Path] | None = None) -> dict[str, object]:
    """`media_roots`: the folders media may be read from; by default pytest's base temp folder
    of this worker, which holds every test's tmp_path and the session's generated movies."""
    if media_roots is None:
        media_roots = [artifact_root.parent.parent]
    return {
        "database": DatabaseResource(url=url),
        "artifacts": ArtifactStore(root=str(artifact_root)),
        "ffmpeg": FFmpegResource(concurrency=2),
        "media_search": MediaSearchResource(media_roots=os.pathsep.join(str(p) for p in media_roots)),
    }


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def publish(
    url: str,
    artifact_root: Path,
    source: Path,
    *,
    project: str = "show",
    name: str | None = None,
    rate: float | None = None,
    dedupe: bool = False,
    **options: object,
) -> str:
    with DatabaseResource(url=url).session() as session:
        published = publish_cut(
            session,
            artifact_root,
            project=project,
            name=name or source.stem,
            source=source,
            read_options=ReadOptions(rate=rate, ignore_timecode_mismatch=bool(options.get("ignore_timecode_mismatch"))),
            media_roots=[str(p) for p in options.get("media_roots", [])],  # type: ignore[union-attr]
            origin_dir=str(source.parent),
            dedupe=dedupe,
        )
        return published.cut.partition_key


def ingest(
    instance: dg.DagsterInstance,
    key: str,
    resources: dict[str, object],
    run_config: dict | None = None,
    raise_on_error: bool = True,
    selection: list | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialize the editorial assets for one cut version on a real (test) Dagster instance."""
    instance.add_dynamic_partitions(cut_versions.name, [key])
    return dg.materialize(
        selection or editorial_assets,
        instance=instance,
        partition_key=key,
        resources=resources,
        run_config=run_config or {},
        raise_on_error=raise_on_error,
    )


@pytest.fixture(scope="session")
def indexed_movie_24(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("movies")
    return make_indexed_movie(folder / "plate_24.mov", frames=120, rate=Fraction(24), start_timecode="01:00:00:00")


def decode_frames(path: Path) -> list[Image.Image]:
    """Every video frame of `path`, as 160x90 greyscale images (enough to read frame indices)."""
    command = [ffmpeg.ffmpeg_exe(), "-v", "error", "-i", str(path), "-vf", "scale=160:90", "-f", "rawvideo",
               "-pix_fmt", "gray", "-"]  # fmt: skip
    raw = subprocess.run(command, capture_output=True, check=True).stdout
    size = 160 * 90
    return [Image.frombytes("L", (160, 90), raw[i : i + size]) for i in range(0, len(raw), size)]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    # Fixtures read `item.rep_call` to keep evidence of a failed test (e.g. a browser screenshot).
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
