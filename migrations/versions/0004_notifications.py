"""Notification channels, the delivery outbox, delivery attempts and the per-tenant outbound allow-list.

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-22
"""

from alembic import op

from migrations.helpers import run_script, tenant_rls

revision = '0004'
down_revision = '0001'
branch_labels = None
depends_on = None

TABLES = ('notification_channels', 'notification_deliveries', 'notification_attempts', 'notification_settings')


def upgrade() -> None:
    run_script(SCHEMA)
    for table in TABLES:
        tenant_rls(table)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.execute(f'DROP TABLE IF EXISTS {table}')


SCHEMA = """
    CREATE TABLE notification_channels (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name text NOT NULL CHECK (length(btrim(name)) > 0),
        kind text NOT NULL CHECK (kind IN ('email', 'slack', 'webhook')),
        enabled boolean NOT NULL DEFAULT true,
        recipients text[] NOT NULL DEFAULT '{}',
        url text,
        secret_encrypted text,
        severities text[] NOT NULL DEFAULT '{critical,major,minor,warning,info}',
        rule_ids uuid[],
        on_raise boolean NOT NULL DEFAULT true,
        on_acknowledge boolean NOT NULL DEFAULT false,
        on_clear boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX notification_channels_tenant_idx ON notification_channels (tenant_id, name);
    CREATE TABLE notification_deliveries (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        channel_id uuid NOT NULL REFERENCES notification_channels(id) ON DELETE CASCADE,
        alarm_id uuid,
        rule_id uuid,
        transition text NOT NULL,
        notice jsonb NOT NULL,
        status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'failed', 'sent', 'dead')),
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        first_attempt_at timestamptz,
        last_error text,
        last_status_code integer,
        sent_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX notification_deliveries_due_idx ON notification_deliveries (next_attempt_at)
        WHERE status IN ('pending', 'failed');
    CREATE INDEX notification_deliveries_tenant_idx ON notification_deliveries (tenant_id, created_at DESC);
    CREATE TABLE notification_attempts (
        id bigserial PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        delivery_id uuid NOT NULL REFERENCES notification_deliveries(id) ON DELETE CASCADE,
        attempted_at timestamptz NOT NULL DEFAULT now(),
        ok boolean NOT NULL,
        response_code integer,
        error text,
        duration_ms integer NOT NULL
    );
    CREATE INDEX notification_attempts_delivery_idx ON notification_attempts (delivery_id, attempted_at);
    CREATE TABLE notification_settings (
        tenant_id uuid PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
        allowed_cidrs text[] NOT NULL DEFAULT '{}'
    )
"""
