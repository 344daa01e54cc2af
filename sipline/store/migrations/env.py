"""Alembic environment: runs on the connection sipline.store.migrate hands over."""

from alembic import context

from sipline.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("run migrations with `sipline migrate`, which supplies the database connection")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
