"""Ingest instances and how far the database's device state stands behind each (`app/ingest/state_mark.py`).

Not tenant data: one row per running Gito process, the time up to which everything it received is written to
`devices` and `latest_values`, and the backend of the connection that reports it (gone: the process is gone).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from alembic import op

from migrations.helpers import run_script

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("""
        CREATE TABLE ingest_instances (
            id text PRIMARY KEY,
            backend_pid integer NOT NULL,
            flushed_through timestamptz NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
    """)


def downgrade() -> None:
    op.execute('DROP TABLE IF EXISTS ingest_instances')
