"""Numeric readings one row per message on plain PostgreSQL: `telemetry_rows`, and the `telemetry` view over both.

A message's numbers become one row of the device's series (key ids and values as arrays) where they were one row
per reading; text, boolean and JSON readings stay in `telemetry_points`, and so do all rows written before this
migration (nothing is moved). The `telemetry` view reads both, so every reader through it is unchanged; the
readers that go to the tables by series (pages, export, latest values, rollups, retention) read both too. With
TimescaleDB nothing changes (its hypertable compresses by device and key). See `app/services/storage/native_sql.py`.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from alembic import op
from sqlalchemy import text

from app.ingest.payload import MAX_FUTURE
from app.services.storage.native_sql import (
    DELETE_DEVICE_ROWS,
    POINTS_TABLE,
    ROWS,
    ROWS_PARTITION_FUNCTION,
    ROWS_TABLE,
    ROWS_VIEW_WRITE_FUNCTION,
    TELEMETRY_ROWS_VIEW,
    VIEW_WRITE_TRIGGER,
)
from app.services.storage.timescale import IN_USE
from migrations.helpers import run_script, telemetry_view, tenant_rls

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    connection = op.get_bind()
    if connection.scalar(text(IN_USE)):
        return
    run_script(ROWS)
    tenant_rls(ROWS_TABLE)
    op.execute(ROWS_PARTITION_FUNCTION)
    op.execute('DROP VIEW telemetry')
    telemetry_view(TELEMETRY_ROWS_VIEW)
    op.execute(ROWS_VIEW_WRITE_FUNCTION)
    op.execute(VIEW_WRITE_TRIGGER)
    op.execute(DELETE_DEVICE_ROWS)
    # Until when numbers may be stored the old way (received before now, dated at most MAX_FUTURE ahead): the writer
    # checks messages older than that against `telemetry_points` too (a redelivery after the upgrade is a duplicate).
    op.execute('CREATE TABLE telemetry_rows_since (since timestamptz NOT NULL)')
    op.execute(f"""INSERT INTO telemetry_rows_since
                   SELECT now() + interval '{int(MAX_FUTURE.total_seconds())} seconds'
                   WHERE EXISTS (SELECT 1 FROM {POINTS_TABLE})""")


def downgrade() -> None:
    raise NotImplementedError('0017 stores new readings in a new table; restore a backup to go back.')
