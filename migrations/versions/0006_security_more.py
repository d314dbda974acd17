"""More security: one-time account links (invitations, password resets), disabled devices, a
per-user sign-in generation (bumped by "log out everywhere": API sign-in tokens of older generations die),
a per-tenant audit log retention, the OpenID Connect subject a user signs in with.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from alembic import op

from migrations.helpers import run_script, tenant_rls

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

TABLES = ('account_links',)


def upgrade() -> None:
    run_script(SCHEMA)
    for table in TABLES:
        tenant_rls(table)


SCHEMA = """
    CREATE TABLE account_links (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        kind text NOT NULL CHECK (kind IN ('invite', 'reset')),
        email text NOT NULL,
        role text CHECK (role IN ('admin', 'operator', 'technician', 'viewer')),
        user_id uuid REFERENCES users(id) ON DELETE CASCADE,
        token_sha256 text NOT NULL UNIQUE,
        created_by uuid,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        used_at timestamptz,
        revoked_at timestamptz
    );
    CREATE INDEX account_links_tenant_idx ON account_links (tenant_id, kind, created_at DESC);
    ALTER TABLE devices ADD COLUMN disabled boolean NOT NULL DEFAULT false;
    ALTER TABLE users ADD COLUMN token_generation integer NOT NULL DEFAULT 0;
    ALTER TABLE tenants ADD COLUMN audit_retention_days integer CHECK (audit_retention_days BETWEEN 7 AND 3650);
    ALTER TABLE users ADD COLUMN oidc_subject text UNIQUE
"""


def downgrade() -> None:
    op.execute('ALTER TABLE devices DROP COLUMN IF EXISTS disabled')
    op.execute('ALTER TABLE users DROP COLUMN IF EXISTS token_generation')
    op.execute('ALTER TABLE tenants DROP COLUMN IF EXISTS audit_retention_days')
    op.execute('ALTER TABLE users DROP COLUMN IF EXISTS oidc_subject')
    for table in reversed(TABLES):
        op.execute(f'DROP TABLE IF EXISTS {table} CASCADE')
