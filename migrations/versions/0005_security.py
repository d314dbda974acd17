"""Security: server-side sessions, API tokens and the audit log, tenant-owned under row-level security.

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-22
"""

from alembic import op

from migrations.helpers import run_script, tenant_rls

revision = '0005'
down_revision = '0001'
branch_labels = None
depends_on = None

TABLES = ('sessions', 'api_tokens', 'audit_log')


def upgrade() -> None:
    run_script(SCHEMA)
    for table in TABLES:
        tenant_rls(table)


SCHEMA = """
    CREATE TABLE sessions (
        id text PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_seen timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        revoked_at timestamptz,
        ip text NOT NULL DEFAULT '',
        user_agent text NOT NULL DEFAULT ''
    );
    CREATE INDEX sessions_user_idx ON sessions (tenant_id, user_id) WHERE revoked_at IS NULL;
    CREATE TABLE api_tokens (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name text NOT NULL CHECK (length(btrim(name)) > 0),
        token_sha256 text NOT NULL UNIQUE,
        role text NOT NULL CHECK (role IN ('admin', 'operator', 'technician', 'viewer')),
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz,
        last_used_at timestamptz,
        revoked_at timestamptz
    );
    CREATE INDEX api_tokens_user_idx ON api_tokens (tenant_id, user_id);
    CREATE TABLE audit_log (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        actor_user_id uuid,
        actor_email text NOT NULL DEFAULT '',
        action text NOT NULL,
        target_type text NOT NULL,
        target_id text NOT NULL DEFAULT '',
        before jsonb,
        after jsonb,
        ip text NOT NULL DEFAULT '',
        at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX audit_log_tenant_at_idx ON audit_log (tenant_id, at DESC)
"""


def downgrade() -> None:
    for table in reversed(TABLES):
        op.execute(f'DROP TABLE IF EXISTS {table} CASCADE')
