"""Idempotency keys of HTTP ingest: a request repeated with the same key is stored once.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from alembic import op

from migrations.helpers import run_script, tenant_rls

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("""
        CREATE TABLE ingest_keys (
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            device_id uuid NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
            key text NOT NULL,
            body_sha256 text NOT NULL,
            accepted integer NOT NULL,
            points integer NOT NULL,
            state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'stored')),
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (device_id, key)
        )
    """)
    tenant_rls('ingest_keys')


def downgrade() -> None:
    op.execute('DROP TABLE IF EXISTS ingest_keys')
