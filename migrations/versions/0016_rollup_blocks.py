"""Where the last rollup run left each partition of `telemetry_points`: its size in blocks.

The next run reads the blocks added since then in slices (`app/services/storage/rollups.py`, `scan_new_rows`);
kept with the watermark, so a run after a restart, or on another instance, slices them too. Plain PostgreSQL
only (TimescaleDB's continuous aggregates have no watermark).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE IF EXISTS storage_watermarks ADD COLUMN IF NOT EXISTS blocks jsonb NOT NULL DEFAULT '{}'")


def downgrade() -> None:
    op.execute('ALTER TABLE IF EXISTS storage_watermarks DROP COLUMN IF EXISTS blocks')
