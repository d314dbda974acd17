"""Telemetry keyed by an integer series id: `telemetry_series`, and on plain PostgreSQL `telemetry_points`.

Every (tenant, device, key) gets a series id once. On plain PostgreSQL the rows move to `telemetry_points`
(primary key `(series_id, ts)`, daily partitions as before) and `telemetry` becomes a view with the columns it
had, so every reader is unchanged; rows inserted or deleted through the view reach the table (a trigger). With
TimescaleDB the hypertable keeps its layout (its compression segments by device and key); only the series table
is added, which the batch writer needs on both. Every row is kept, with its `ingest_xid`: rollups go on where
they were. See `app/services/storage/native_sql.py`.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from alembic import op
from sqlalchemy import text

from app.services.storage.native_sql import (
    DELETE_DEVICE_NATIVE,
    DELETE_DEVICE_TIMESCALE,
    FILL_SERIES,
    POINTS,
    POINTS_PARTITION_FUNCTION,
    POINTS_TABLE,
    SERIES_TABLE,
    TELEMETRY_VIEW,
    VIEW_WRITE_FUNCTION,
    VIEW_WRITE_TRIGGER,
)
from app.services.storage.timescale import IN_USE
from migrations.helpers import run_script, telemetry_view, tenant_rls

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    connection = op.get_bind()
    op.execute(SERIES_TABLE)
    tenant_rls('telemetry_series')
    op.execute(FILL_SERIES)
    if connection.scalar(text(IN_USE)):
        op.execute(DELETE_DEVICE_TIMESCALE)
        return
    op.execute(POINTS_PARTITION_FUNCTION)
    run_script(POINTS)
    tenant_rls(POINTS_TABLE)
    telemetry_view(TELEMETRY_VIEW)
    op.execute(VIEW_WRITE_FUNCTION)
    op.execute(VIEW_WRITE_TRIGGER)
    op.execute(DELETE_DEVICE_NATIVE)


def downgrade() -> None:
    raise NotImplementedError('0014 moves telemetry rows into a new table; restore a backup to go back.')
