"""Alembic environment: migrations run on the connection handed over by ``storage.db``."""

from alembic import context

from storage.models import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only via the alembic CLI
    raise RuntimeError("run migrations through storage.db.open_database")
context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
