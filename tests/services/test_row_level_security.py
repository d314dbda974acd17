"""The second wall: as the app's own database role, one tenant's transaction sees no row of another."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import asyncpg
import pytest

from app.db import APP_GRANTS, LAYOUT_GRANTS
from app.ingest.payload import Message
from app.ingest.writer import Inbound
from app.models.maintenance import MaintenanceCreate
from app.models.notifications import ChannelCreate, OutboundSettings
from app.models.raw_archive import RawArchiveSettings
from app.models.rules import RuleCreate
from app.models.schemas import DeviceCreate
from app.models.storage import RetentionSettings
from app.platform import Platform
from tests.conftest import NewTenant
from tests.ingest.test_mqtt_ingest import eventually
from tests.support import roll_up


def app_role_dsn(platform: Platform) -> str:
    return platform.db.app.url.set(drivername='postgresql').render_as_string(hide_password=False)


async def test_app_role_sees_no_row_of_another_tenant(running_platform: Platform, new_tenant: NewTenant) -> None:
    platform = running_platform
    tenant_a, tenant_b = (await new_tenant()).principal, (await new_tenant()).principal
    device, _ = await platform.devices.create(tenant_a, DeviceCreate(name='A-only'))
    await platform.sessions.create(tenant_a)  # a row in `sessions` (device creation wrote `audit_log`)
    await platform.api_tokens.create(tenant_a, name='RLS')  # a row in `api_tokens`
    await platform.account_links.invite(tenant_a, email=f'rls-{uuid4().hex[:8]}@example.com', role='viewer')
    await platform.ingest_keys.claim(tenant_a.tenant_id, device.id, 'rls', body=b'{}', accepted=0, points=0)
    await platform.rules.create(tenant_a, RuleCreate.model_validate({  # the reading below raises an alarm
        'name': 'Any', 'condition': {'type': 'threshold', 'key': 't', 'op': '>', 'value': 0}}))
    await platform.maintenance.create(tenant_a, MaintenanceCreate(
        name='Later', starts_at=datetime(2100, 1, 1, tzinfo=UTC), ends_at=datetime(2100, 1, 2, tzinfo=UTC)))
    platform.notifications.outbox.hold_s = 0
    await platform.notifications.channels.create(tenant_a, ChannelCreate(  # deliveries and attempts follow
        name='Ops mail', kind='email', recipients=['ops@example.com']))
    await platform.notifications.channels.set_outbound_settings(
        tenant_a, OutboundSettings(allowed_cidrs=['10.20.0.0/16']))
    await platform.raw_archive.update_settings(tenant_a, RawArchiveSettings(enabled=True, days=7))
    await platform.writer.submit(Inbound(tenant_a.tenant_id, device.id, [  # and its payload in `raw_messages`
        Message(ts=datetime.now(UTC), seq=None, readings={'t': 1.0, 'state': 'ok'})], datetime.now(UTC),
        payload=b'{"t": 1.0, "state": "ok"}'))  # a number (`telemetry_rows`) and a text (`telemetry_points`)
    await eventually(lambda: platform.telemetry.latest(tenant_a, device.id), lambda values: bool(values))
    await eventually(lambda: platform.alarms.find(tenant_a), lambda alarms: bool(alarms))
    await eventually(lambda: platform.notifications.deliveries.list(tenant_a),
                     lambda deliveries: any(d.attempts for d in deliveries))
    await roll_up(platform)  # rows in `telemetry_1m` and `telemetry_1h`
    await platform.storage.update_retention(tenant_a, RetentionSettings(raw_days=7, minute_days=90, hour_days=400))

    connection = await asyncpg.connect(app_role_dsn(platform))
    try:
        assert await connection.fetchval('SELECT rolbypassrls FROM pg_roles WHERE rolname = current_user') is False
        tables = [*APP_GRANTS, *[table for table in LAYOUT_GRANTS  # the tables under the `telemetry` view
                                 if await connection.fetchval('SELECT to_regclass($1) IS NOT NULL', table)]]
        async with connection.transaction():
            await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_b.tenant_id))
            for table in tables:
                column = 'id' if table == 'tenants' else 'tenant_id'
                leaked = await connection.fetchval(f'SELECT count(*) FROM {table} WHERE {column} = $1',
                                                   tenant_a.tenant_id)
                assert leaked == 0, table
        async with connection.transaction():
            await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_a.tenant_id))
            for table in tables:
                column = 'id' if table == 'tenants' else 'tenant_id'
                own = await connection.fetchval(f'SELECT count(*) FROM {table} WHERE {column} = $1',
                                                tenant_a.tenant_id)
                assert own >= 1, table
        for table in tables:  # no tenant set: nothing at all
            assert await connection.fetchval(f'SELECT count(*) FROM {table}') == 0, table
    finally:
        await connection.close()


async def test_app_role_cannot_write_into_another_tenant(platform: Platform, new_tenant: NewTenant) -> None:
    tenant_a, tenant_b = (await new_tenant()).principal, (await new_tenant()).principal
    connection = await asyncpg.connect(app_role_dsn(platform))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match='row-level security'):
            async with connection.transaction():
                await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_b.tenant_id))
                await connection.execute(
                    "INSERT INTO devices (id, tenant_id, name, token_sha256, mqtt_password_hash) "
                    "VALUES ($1, $2, 'planted', 'x', 'x')", uuid4(), tenant_a.tenant_id)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute('ALTER TABLE devices NO FORCE ROW LEVEL SECURITY')
    finally:
        await connection.close()
