"""Tenants, users, devices, telemetry, latest values; row-level security on every tenant table.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

TENANT_TABLES = ('tenants', 'users', 'devices', 'telemetry_keys', 'telemetry', 'latest_values')


def upgrade() -> None:
    for statement in SCHEMA.split(';\n'):
        if statement.strip():
            op.execute(statement)
    for table in TENANT_TABLES:
        column = 'id' if table == 'tenants' else 'tenant_id'
        op.execute(f'ALTER TABLE {table} ENABLE ROW LEVEL SECURITY')
        op.execute(f'ALTER TABLE {table} FORCE ROW LEVEL SECURITY')
        # Everyone but the owner sees only the tenant named by `SET LOCAL app.tenant_id`; unset means nothing.
        op.execute(f"""
            CREATE POLICY tenant_isolation ON {table}
            USING ({column} = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
            WITH CHECK ({column} = NULLIF(current_setting('app.tenant_id', true), '')::uuid)""")
        # The owner (migrations and the explicit system paths) keeps access even where it is no superuser.
        op.execute(f"""
            DO $$ BEGIN
                EXECUTE format('CREATE POLICY system_access ON {table} TO %I USING (true) WITH CHECK (true)',
                               current_user);
            END $$""")


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
