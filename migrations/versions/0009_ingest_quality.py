"""Data quality per device: stored readings, duplicates, out-of-order, sequence gaps, clock skew.

Revision ID: 0009
Revises: 0005
Create Date: 2026-12-01
"""

from migrations.helpers import run_script

revision = '0009'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("""
        ALTER TABLE devices
            ADD COLUMN readings_stored bigint NOT NULL DEFAULT 0,
            ADD COLUMN readings_duplicate bigint NOT NULL DEFAULT 0,
            ADD COLUMN messages_out_of_order bigint NOT NULL DEFAULT 0,
            ADD COLUMN seq_missing bigint NOT NULL DEFAULT 0,
            ADD COLUMN seq_gaps jsonb NOT NULL DEFAULT '[]'::jsonb,
            ADD COLUMN last_seq bigint,
            ADD COLUMN clock_skew_ms bigint,
            ADD COLUMN max_clock_skew_ms bigint;
        -- Ingest updates last_seen and the counters of every active device about once a second: with no index on
        -- a changing column and room on each page those updates are HOT (no index churn, little bloat).
        DROP INDEX devices_online_idx;
        CREATE INDEX devices_online_idx ON devices (id) WHERE status = 'online';
        ALTER TABLE devices SET (fillfactor = 70);
        ALTER TABLE latest_values SET (fillfactor = 70)
    """)


def downgrade() -> None:
    run_script("""
        DROP INDEX devices_online_idx;
        CREATE INDEX devices_online_idx ON devices (last_seen) WHERE status = 'online';
        ALTER TABLE devices RESET (fillfactor);
        ALTER TABLE latest_values RESET (fillfactor);
        ALTER TABLE devices
            DROP COLUMN readings_stored, DROP COLUMN readings_duplicate, DROP COLUMN messages_out_of_order,
            DROP COLUMN seq_missing, DROP COLUMN seq_gaps, DROP COLUMN last_seq, DROP COLUMN clock_skew_ms,
            DROP COLUMN max_clock_skew_ms
    """)
