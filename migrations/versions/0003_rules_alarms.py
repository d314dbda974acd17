"""Alarm rules, alarms (one open per rule and device), their history, maintenance windows; row-level security.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-22
"""

from alembic import op

from migrations.helpers import run_script, tenant_rls

revision = '0003'
down_revision = '0001'
branch_labels = None
depends_on = None

TABLES = ('rules', 'alarms', 'alarm_events', 'maintenance_windows')


def upgrade() -> None:
    run_script(SCHEMA)
    for table in TABLES:
        tenant_rls(table)


SCHEMA = """
    CREATE TABLE rules (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name text NOT NULL CHECK (length(btrim(name)) > 0),
        enabled boolean NOT NULL DEFAULT true,
        severity text NOT NULL CHECK (severity IN ('critical', 'major', 'minor', 'warning', 'info')),
        scope jsonb NOT NULL,
        condition jsonb NOT NULL,
        options jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX rules_tenant_idx ON rules (tenant_id, name);
    CREATE TABLE alarms (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        rule_id uuid NOT NULL REFERENCES rules(id) ON DELETE CASCADE,
        device_id uuid NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        rule_name text NOT NULL,
        device_name text NOT NULL,
        severity text NOT NULL CHECK (severity IN ('critical', 'major', 'minor', 'warning', 'info')),
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'acknowledged', 'cleared')),
        count integer NOT NULL DEFAULT 1,
        first_seen timestamptz NOT NULL,
        last_seen timestamptz NOT NULL,
        key text,
        value text,
        threshold text,
        acknowledged_by text,
        acknowledged_at timestamptz,
        ack_note text,
        cleared_by text,
        cleared_at timestamptz,
        clear_reason text,
        assignee_id uuid REFERENCES users(id) ON DELETE SET NULL
    );
    CREATE UNIQUE INDEX alarms_one_open_idx ON alarms (rule_id, device_id) WHERE status <> 'cleared';
    CREATE INDEX alarms_tenant_idx ON alarms (tenant_id, first_seen DESC);
    CREATE INDEX alarms_device_idx ON alarms (device_id, first_seen DESC);
    CREATE INDEX alarms_cleared_idx ON alarms (rule_id, device_id, cleared_at DESC) WHERE status = 'cleared';
    CREATE TABLE alarm_events (
        id bigserial PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        alarm_id uuid NOT NULL REFERENCES alarms(id) ON DELETE CASCADE,
        at timestamptz NOT NULL DEFAULT now(),
        kind text NOT NULL,
        actor text,
        note text,
        data jsonb NOT NULL DEFAULT '{}'::jsonb
    );
    CREATE INDEX alarm_events_alarm_idx ON alarm_events (alarm_id, id);
    CREATE TABLE maintenance_windows (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name text NOT NULL CHECK (length(btrim(name)) > 0),
        starts_at timestamptz NOT NULL,
        ends_at timestamptz NOT NULL CHECK (ends_at > starts_at),
        device_ids uuid[]
    );
    CREATE INDEX maintenance_windows_tenant_idx ON maintenance_windows (tenant_id, ends_at)
"""


def downgrade() -> None:
    for table in reversed(TABLES):
        op.execute(f'DROP TABLE IF EXISTS {table} CASCADE')
