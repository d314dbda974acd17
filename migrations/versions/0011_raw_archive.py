"""Raw archive: every inbound payload as received, for tenants that switch it on, kept for their chosen days.

`raw_messages` is range-partitioned by UTC day of `received_at` (with a default partition) on either storage
backend, so retention drops whole days; the storage job creates partitions ahead (see native_sql.py).

Revision ID: 0011
Revises: 0007
Create Date: 2026-12-02
"""

from alembic import op

from app.services.storage.native_sql import (
    DAY_PARTITION_FUNCTION,
    PARTITION_FUNCTION,
    PARTITION_RLS_FUNCTION,
    RANGE_PARTITION_FUNCTION,
)
from migrations.helpers import run_script, tenant_rls

revision = '0011'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(PARTITION_RLS_FUNCTION)
    op.execute(RANGE_PARTITION_FUNCTION)  # what gito_day_partition calls (since 0012's change to it)
    op.execute(DAY_PARTITION_FUNCTION)
    op.execute(PARTITION_FUNCTION)  # now a call of gito_day_partition: the same behaviour
    run_script("""
        CREATE TABLE raw_archive_settings (
            tenant_id uuid PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
            enabled boolean NOT NULL,
            days integer NOT NULL CHECK (days BETWEEN 1 AND 365),
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE raw_messages (
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            device_id uuid NOT NULL,
            received_at timestamptz NOT NULL,
            transport text NOT NULL,
            kind text NOT NULL,
            accepted boolean NOT NULL,
            reason text,
            payload bytea NOT NULL
        ) PARTITION BY RANGE (received_at);
        CREATE INDEX raw_messages_device_idx ON raw_messages (tenant_id, device_id, received_at DESC);
        CREATE TABLE raw_messages_default PARTITION OF raw_messages DEFAULT;
        SELECT gito_partition_rls('raw_messages_default'::regclass);
        SELECT gito_day_partition('raw_messages', 'received_at', day::date)
        FROM generate_series((now() AT TIME ZONE 'UTC')::date - 1, (now() AT TIME ZONE 'UTC')::date + 7,
                             interval '1 day') AS day
    """)
    tenant_rls('raw_messages')
    tenant_rls('raw_archive_settings')


def downgrade() -> None:
    op.execute('DROP TABLE IF EXISTS raw_messages')
    op.execute('DROP TABLE IF EXISTS raw_archive_settings')
