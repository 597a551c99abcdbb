"""Publishing a timeline file as a new cut version."""

from __future__ import annotations

import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from media_pipeline.core.files import atomic_path, sha256_file
from media_pipeline.core.timecode import rate_text
from media_pipeline.db.models import CutVersion, Project, utcnow
from media_pipeline.editorial.partitions import partition_key_for
from media_pipeline.editorial.timeline import DEFAULT_EDL_RATE, EDL_ADAPTER, ReadOptions, adapter_for
from media_pipeline.resources import ArtifactStore


@dataclass
class Published:
    cut: CutVersion
    created: bool  # False: the same content was already published in this project


# pg_advisory_xact_lock(namespace, key): the namespace keeps these keys apart from other locks.
PUBLISH_LOCK_NAMESPACE = 4243


def lock_project(session: Session, name: str) -> Project:
    """Create the project if needed and hold it for this transaction: until the session commits
    or rolls back, no other transaction (of any process) can publish into it.

    Version numbers are allocated by reading the highest one, so two publishes of one cut at the
    same moment would otherwise pick the same number.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(
            sa.text("SELECT pg_advisory_xact_lock(:namespace, :key)"),
            {"namespace": PUBLISH_LOCK_NAMESPACE, "key": zlib.crc32(name.encode()) & 0x7FFFFFFF},
        )
    # An upsert is a write. SQLite's driver begins the transaction at its first write, so this
    # takes the database's single write lock before anything below is read (BEGIN IMMEDIATE
    # semantics), waiting for the holder to commit: the reads then see the newest versions. On
    # Postgres it also locks the project row. And two publishers cannot both create the project.
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    statement = insert(Project).values(name=name, created_at=now, updated_at=now)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[Project.name], set_={"updated_at": statement.excluded.updated_at}
        )
    )
    project = session.scalar(sa.select(Project).where(Project.name == name).execution_options(populate_existing=True))
    assert project is not None
    return project


def publish_cut(
    session: Session,
    artifacts: ArtifactStore | Path,
    *,
    project: str,
    name: str,
    source: Path,
    filename: str | None = None,
    read_options: ReadOptions = ReadOptions(),
    media_roots: list[str] | None = None,
    origin_dir: str | None = None,
    dedupe: bool = False,
) -> Published:
    """Store `source` in the artifact store and record a new version of cut `name`.

    `artifacts` may be a bare artifact root (the local store).

    With `dedupe`, a file whose content (sha-256) was already published in the project returns
    that earlier cut version instead of a new one.

    Publishes into one project are serialized (see `lock_project`) until the caller's session
    commits, across threads and processes (API, watch-folder sensor): commit promptly.
    """
    filename = filename or source.name
    adapter = adapter_for(Path(filename))  # an unreadable format fails here, before anything is stored
    digest = sha256_file(source)
    owner = lock_project(session, project)
    if dedupe:
        earlier = session.scalar(
            sa.select(CutVersion)
            .where(CutVersion.project_id == owner.id, CutVersion.source_sha256 == digest)
            .order_by(CutVersion.id)
            .limit(1)
        )
        if earlier is not None:
            return Published(cut=earlier, created=False)
    latest = session.scalar(
        sa.select(sa.func.max(CutVersion.version)).where(CutVersion.project_id == owner.id, CutVersion.name == name)
    )
    version = (latest or 0) + 1
    key = partition_key_for(project, name, version)
    while session.scalar(sa.select(CutVersion.id).where(CutVersion.partition_key == key)) is not None:
        key = f"{key}-{digest[:6]}"
    store = artifacts if isinstance(artifacts, ArtifactStore) else ArtifactStore(root=str(artifacts))
    stored = store.cut_dir(key) / "source" / Path(filename).name
    with atomic_path(stored) as tmp:
        shutil.copyfile(source, tmp)
    try:
        store.publish(stored)  # the ingest may run on another machine
    except Exception:
        stored.unlink(missing_ok=True)  # the caller's session rolls back: no cut names it
        raise
    options: dict[str, Any] = {**read_options.as_dict(), "media_roots": list(media_roots or [])}
    if origin_dir:
        options["origin_dir"] = origin_dir
    cut = CutVersion(
        project_id=owner.id,
        name=name,
        version=version,
        partition_key=key,
        source_path=str(stored),
        source_filename=filename,
        source_sha256=digest,
        rate=rate_text(read_options.rate or DEFAULT_EDL_RATE) if adapter == EDL_ADAPTER else None,
        options=options,
    )
    session.add(cut)
    session.flush()
    return Published(cut=cut, created=True)
