"""Alembic environment: run programmatically by `media_pipeline.db.migrate` with a connection."""

from alembic import context

from media_pipeline.db import VERSION_TABLE
from media_pipeline.db.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=True,  # SQLite can only ALTER tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
