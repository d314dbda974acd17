"""Tenants, users, devices, telemetry, latest values; row-level security on every tenant table.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from alembic import op

from migrations.helpers import run_script, tenant_rls

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

TENANT_TABLES = ('tenants', 'users', 'devices', 'telemetry_keys', 'telemetry', 'latest_values')


def upgrade() -> None:
    run_script(SCHEMA)
    for table in TENANT_TABLES:
        tenant_rls(table, column='id' if table == 'tenants' else 'tenant_id')


SCHEMA = """
    CREATE TABLE tenants (
        id uuid PRIMARY KEY,
        name text NOT NULL CHECK (length(btrim(name)) > 0),
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE users (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        email text NOT NULL,
        display_name text NOT NULL DEFAULT '',
        password_hash text NOT NULL,
        role text NOT NULL CHECK (role IN ('admin', 'operator', 'technician', 'viewer')),
        disabled boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_login_at timestamptz
    );
    CREATE UNIQUE INDEX users_email_key ON users (lower(email));
    CREATE INDEX users_tenant_idx ON users (tenant_id);
    CREATE TABLE devices (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name text NOT NULL CHECK (length(btrim(name)) > 0),
        type text NOT NULL DEFAULT 'generic',
        token_sha256 text NOT NULL,
        mqtt_password_hash text NOT NULL,
        status text NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'online', 'offline')),
        last_seen timestamptz,
        offline_after_s integer CHECK (offline_after_s IS NULL OR offline_after_s >= 5),
        metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
        messages_received bigint NOT NULL DEFAULT 0,
        messages_malformed bigint NOT NULL DEFAULT 0,
        last_malformed_reason text,
        last_malformed_excerpt text,
        last_malformed_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX devices_tenant_idx ON devices (tenant_id, name);
    CREATE INDEX devices_online_idx ON devices (last_seen) WHERE status = 'online';
    CREATE TABLE telemetry_keys (
        id serial PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name text NOT NULL,
        UNIQUE (tenant_id, name)
    );
    CREATE TABLE telemetry (
        tenant_id uuid NOT NULL,
        device_id uuid NOT NULL,
        key_id integer NOT NULL,
        ts timestamptz NOT NULL,
        value double precision,
        text_value text,
        bool_value boolean,
        json_value jsonb,
        PRIMARY KEY (tenant_id, device_id, key_id, ts)
    );
    CREATE TABLE latest_values (
        tenant_id uuid NOT NULL,
        device_id uuid NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        key_id integer NOT NULL REFERENCES telemetry_keys(id) ON DELETE CASCADE,
        ts timestamptz NOT NULL,
        value double precision,
        text_value text,
        bool_value boolean,
        json_value jsonb,
        PRIMARY KEY (device_id, key_id)
    );
"""


def downgrade() -> None:
    for table in reversed(TENANT_TABLES):
        op.execute(f'DROP TABLE IF EXISTS {table} CASCADE')
