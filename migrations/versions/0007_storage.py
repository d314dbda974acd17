"""Time-series storage: daily partitions (or a TimescaleDB hypertable), rollups, per-tenant retention.

With the TimescaleDB extension available (it can be created: the library is preloaded), `telemetry` becomes a
hypertable with compression and retention policies and 1-minute / 1-hour continuous aggregates (see
app/services/storage/timescale.py). Otherwise `telemetry` becomes natively range-partitioned by UTC day with a
default partition, and the rollup tables `telemetry_1m` / `telemetry_1h` are maintained by the storage job
(see app/services/storage/native_sql.py). Existing rows are kept either way.

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-01
"""

from alembic import op
from sqlalchemy import text

from app.services.storage.native_sql import (
    DAY_PARTITION_FUNCTION,
    PARTITION_FUNCTION,
    PARTITION_RLS_FUNCTION,
    PARTITIONED_TELEMETRY,
    RANGE_PARTITION_FUNCTION,
    ROLLUP_TABLES,
)
from app.services.storage.timescale import setup_statements
from migrations.helpers import run_script, tenant_rls

revision = '0007'
down_revision = '0005'
branch_labels = None
depends_on = None

# Installed but not preloaded (a package installed, `shared_preload_libraries` not set) is common, and there
# CREATE EXTENSION ends the connection (FATAL, which no exception handler catches): check the preload first.
TRY_TIMESCALE = """
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
       AND current_setting('shared_preload_libraries') ~ '(^|[ ,])timescaledb([ ,]|$)' THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS timescaledb;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'timescaledb not usable (%), using native partitions', SQLERRM;
        END;
    END IF;
END $$"""

SETTINGS = """
    CREATE TABLE storage_settings (
        tenant_id uuid PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
        raw_days integer NOT NULL CHECK (raw_days BETWEEN 2 AND 3650),
        minute_days integer NOT NULL CHECK (minute_days BETWEEN 2 AND 3650),
        hour_days integer NOT NULL CHECK (hour_days BETWEEN 2 AND 3650),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CHECK (raw_days <= minute_days AND minute_days <= hour_days)
    )"""


def upgrade() -> None:
    op.execute(TRY_TIMESCALE)
    connection = op.get_bind()
    timescale = bool(connection.scalar(text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")))
    if timescale:
        owner = str(connection.scalar(text('SELECT current_user')))
        for statement in setup_statements(owner=owner):
            op.execute(statement)
    else:
        op.execute(PARTITION_RLS_FUNCTION)
        op.execute(RANGE_PARTITION_FUNCTION)  # what gito_day_partition calls (since 0012's change to it)
        op.execute(DAY_PARTITION_FUNCTION)
        op.execute(PARTITION_FUNCTION)
        run_script(PARTITIONED_TELEMETRY)
        tenant_rls('telemetry')
        run_script(ROLLUP_TABLES)
        tenant_rls('telemetry_1m')
        tenant_rls('telemetry_1h')
    op.execute(SETTINGS)
    tenant_rls('storage_settings')


def downgrade() -> None:
    raise NotImplementedError('0007 converts telemetry in place; restore a backup to go back.')
