"""Alembic environment: always run through `app.db.migrate`, which hands over an open connection."""

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import app.models.tables  # noqa: F401 - registers the tables on SQLModel.metadata

connection: Connection = context.config.attributes['connection']
context.configure(connection=connection, target_metadata=SQLModel.metadata, transaction_per_migration=False)
with context.begin_transaction():
    context.run_migrations()
