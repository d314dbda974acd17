"""Plain PostgreSQL: the 1-minute rollups partitioned by UTC day, the 1-hour rollups by UTC month.

At 10,000 devices of four keys the 1-minute table grows by 57.6 million rows a day; deleting a day of that every
night, as retention did, writes it all to the WAL again and leaves it to vacuum. Partitioned, retention drops
whole days (months) past the longest tenant setting and deletes only below it. Every existing row is kept.
With TimescaleDB the rollups are continuous aggregates with their own retention: nothing changes there.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from alembic import op
from sqlalchemy import text

from app.services.storage.native_sql import (
    DAY_PARTITION_FUNCTION,
    MONTH_PARTITION_FUNCTION,
    PARTITION_RLS_FUNCTION,
    PARTITIONED_ROLLUPS,
    RANGE_PARTITION_FUNCTION,
)
from migrations.helpers import run_script, tenant_rls

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

PLAIN_ROLLUPS = "SELECT relkind::text FROM pg_class WHERE oid = to_regclass('public.telemetry_1m')"


def upgrade() -> None:
    op.execute(PARTITION_RLS_FUNCTION)
    op.execute(RANGE_PARTITION_FUNCTION)
    op.execute(DAY_PARTITION_FUNCTION)  # now a call of gito_range_partition: the same behaviour
    op.execute(MONTH_PARTITION_FUNCTION)
    if op.get_bind().scalar(text(PLAIN_ROLLUPS)) != 'r':
        return  # TimescaleDB: continuous aggregates (behind views); or already partitioned
    run_script(PARTITIONED_ROLLUPS)
    tenant_rls('telemetry_1m')
    tenant_rls('telemetry_1h')


def downgrade() -> None:
    raise NotImplementedError('0012 converts the rollup tables in place; restore a backup to go back.')
