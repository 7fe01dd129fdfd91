"""Alembic environment: run by ``totpadmin.store.schema`` with a connection it passes in."""

from alembic import context

from totpadmin.store.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
