"""The domain database on SQLite and Postgres: migrations, constraints, table names."""

from __future__ import annotations

import shutil
import threading
import time

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from media_pipeline import db
from media_pipeline.db.models import Base, CutVersion, Job, Project, Shot
from media_pipeline.editorial import publish as publish_module
from media_pipeline.editorial.publish import publish_cut
from media_pipeline_tests.conftest import CORPUS


def test_migrations_produce_exactly_the_models(db_url):
    db.migrate(db_url)
    with db.engine_for(db_url).connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": db.VERSION_TABLE})
        assert compare_metadata(context, Base.metadata) == []


def test_every_table_is_prefixed_so_dagster_can_share_the_database(db_url):
    db.migrate(db_url)
    names = sa.inspect(db.engine_for(db_url)).get_table_names()
    ours = [n for n in names if n.startswith("mp_")]
    assert set(ours) >= {"mp_projects", "mp_cut_versions", "mp_shots", "mp_renders", "mp_jobs", "mp_alembic_version"}
    assert "alembic_version" not in names  # Dagster's own version table name stays free


def test_migrate_is_idempotent(db_url):
    db.migrate(db_url)
    db._migrated.clear()
    db.migrate(db_url)


def test_head_revision_is_alembics_head():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == db.HEAD_REVISION, "bump db.HEAD_REVISION"


def test_a_database_at_the_head_revision_is_not_migrated_again(db_url, monkeypatch):
    from alembic import command

    db.migrate(db_url)
    db._migrated.clear()

    def upgrade(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("alembic ran on a database already at the head revision")

    monkeypatch.setattr(command, "upgrade", upgrade)
    db.migrate(db_url)
    assert db.is_migrated(db_url)


def test_publish_numbers_versions_and_dedupes_by_content(db_url, artifact_root, tmp_path):
    db.migrate(db_url)
    source = tmp_path / "edit.otio"
    source.write_bytes((CORPUS / "simple_cut.otio").read_bytes())
    with db.session_scope(db_url) as session:
        first = publish_cut(session, artifact_root, project="show", name="edit", source=source)
        second = publish_cut(session, artifact_root, project="show", name="edit", source=source)
        again = publish_cut(session, artifact_root, project="show", name="other", source=source, dedupe=True)
        assert (first.cut.version, second.cut.version) == (1, 2)
        assert again.created is False and again.cut.id == first.cut.id
        assert first.cut.partition_key == "show.edit.v001"
        assert first.cut.source_sha256 == second.cut.source_sha256
    with db.session_scope(db_url) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(CutVersion)) == 2


def test_shot_index_is_unique_within_a_cut(db_url, artifact_root):
    db.migrate(db_url)
    with db.session_scope(db_url) as session:
        project = Project(name="p")
        session.add(project)
        session.flush()
        cut = CutVersion(
            project_id=project.id,
            name="c",
            version=1,
            partition_key="p.c.v001",
            source_path="x",
            source_filename="x.otio",
            source_sha256="0" * 64,
        )
        session.add(cut)
        session.flush()
        cut_id = cut.id
    with pytest.raises(sa.exc.IntegrityError), db.session_scope(db_url) as session:
        for _ in range(2):
            session.add(
                Shot(
                    cut_version_id=cut_id,
                    index=0,
                    name="a",
                    record_start=0,
                    record_duration=1,
                    source_start=0,
                    source_duration=1,
                    source_rate="24",
                    media_status="missing",
                )
            )
        session.flush()


def test_deleting_a_shot_keeps_its_jobs(db_url):
    db.migrate(db_url)
    with db.session_scope(db_url) as session:
        project = Project(name="p")
        session.add(project)
        session.flush()
        cut = CutVersion(
            project_id=project.id,
            name="c",
            version=1,
            partition_key="p.c.v001",
            source_path="x",
            source_filename="x.otio",
            source_sha256="0" * 64,
        )
        session.add(cut)
        session.flush()
        shot = Shot(
            cut_version_id=cut.id,
            index=0,
            name="a",
            record_start=0,
            record_duration=1,
            source_start=0,
            source_duration=1,
            source_rate="24",
            media_status="missing",
        )
        session.add(shot)
        session.flush()
        session.add(
            Job(
                id="00000000-0000-0000-0000-000000000001",
                kind="shot_thumbnail",
                subject_type="shot",
                subject_id=str(shot.id),
            )
        )
        shot_id = shot.id
    # A re-ingest deletes shots that left the cut; the jobs about them must not block that.
    with db.session_scope(db_url) as session:
        session.execute(sa.delete(Shot).where(Shot.id == shot_id))
    with db.session_scope(db_url) as session:
        job = session.get(Job, "00000000-0000-0000-0000-000000000001")
        # The job's history still names the shot it was about.
        assert job is not None and (job.subject_type, job.subject_id) == ("shot", str(shot_id))


def _alembic(url: str, action: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    with db.engine_for(url).begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(db.MIGRATIONS))
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def test_0003_moves_cut_and_shot_columns_into_the_subject_and_back(db_url):
    # From head (the Postgres fixture is migrated already) down to 0002, then up again with rows.
    _alembic(db_url, "upgrade", "head")
    _alembic(db_url, "downgrade", "0002")
    engine = db.engine_for(db_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO mp_projects (id, name, created_at, updated_at) VALUES (1, 'p', :t, :t)"),
            {"t": "2026-01-01 00:00:00"},
        )
        connection.execute(
            sa.text(
                "INSERT INTO mp_cut_versions (id, project_id, name, version, partition_key, source_path, "
                "source_filename, source_sha256, options, status, created_at, updated_at) VALUES "
                "(5, 1, 'c', 1, 'p.c.v001', 'x', 'x.otio', :sha, '{}', 'ingested', :t, :t)"
            ),
            {"sha": "0" * 64, "t": "2026-01-01 00:00:00"},
        )
        connection.execute(
            sa.text(
                "INSERT INTO mp_shots (id, cut_version_id, index, name, track, record_start, record_duration, "
                "source_start, source_duration, source_rate, media_status, notes, details) VALUES "
                "(9, 5, 0, 'a', '', 0, 1, 0, 1, '24', 'missing', '[]', '{}')".replace("index", '"index"')
            )
        )
        for job_id, kind, cut_id, shot_id in [("j-cut", "thumbnails", 5, None), ("j-shot", "shot_thumbnail", 5, 9),
                                              ("j-none", "ingest_cut", None, None)]:  # fmt: skip
            connection.execute(
                sa.text(
                    "INSERT INTO mp_jobs (id, kind, status, cut_version_id, shot_id, params, outputs, created_at, "
                    "updated_at) VALUES (:id, :kind, 'succeeded', :cut, :shot, '{}', '[]', :t, :t)"
                ),
                {"id": job_id, "kind": kind, "cut": cut_id, "shot": shot_id, "t": "2026-01-01 00:00:00"},
            )
    _alembic(db_url, "upgrade", "head")
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT id, subject_type, subject_id, source FROM mp_jobs ORDER BY id"))
        assert [tuple(row) for row in rows] == [
            ("j-cut", "cut", "5", "api"),
            ("j-none", None, None, "api"),
            ("j-shot", "shot", "9", "api"),
        ]
    _alembic(db_url, "downgrade", "0002")
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT id, cut_version_id, shot_id FROM mp_jobs ORDER BY id"))
        assert [tuple(row) for row in rows] == [("j-cut", 5, None), ("j-none", None, None), ("j-shot", 5, 9)]


@pytest.mark.parametrize("project_exists", [False, True], ids=["new_project", "existing_project"])
def test_concurrent_publishes_of_one_cut_get_consecutive_versions(
    db_url, artifact_root, tmp_path, monkeypatch, project_exists
):
    """Two publishers (API requests, API processes, the watch-folder sensor) at the same moment."""
    db.migrate(db_url)
    source = tmp_path / "edit.otio"
    source.write_bytes((CORPUS / "simple_cut.otio").read_bytes())
    if project_exists:
        with db.session_scope(db_url) as session:
            publish_cut(session, artifact_root, project="show", name="other", source=source)
    copy = shutil.copyfile

    def slow_copy(src, dst):  # type: ignore[no-untyped-def]
        # Between reading the highest version and inserting the next one: without the lock the
        # other thread reads the same highest version in this window.
        time.sleep(0.3)
        return copy(src, dst)

    monkeypatch.setattr(publish_module.shutil, "copyfile", slow_copy)
    start = threading.Barrier(2)
    results: list[tuple[int, str]] = []
    errors: list[BaseException] = []

    def publish_one() -> None:
        try:
            start.wait(timeout=10)
            with db.session_scope(db_url) as session:
                cut = publish_cut(session, artifact_root, project="show", name="edit", source=source).cut
                results.append((cut.version, cut.partition_key))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=publish_one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert sorted(results) == [(1, "show.edit.v001"), (2, "show.edit.v002")]
    with db.session_scope(db_url) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Project)) == 1
