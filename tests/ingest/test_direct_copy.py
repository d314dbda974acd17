"""The ingest role: one COPY per batch straight into the telemetry table (either layout), and no way through it to
read anything."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import text

from app.ingest.copy_rows import (
    FLOAT8_OID,
    HEADER,
    TRAILER,
    micros,
    number_tail,
    other_tail,
    reading_prefix,
    row_prefix,
    row_tail,
    series_prefix,
)
from app.ingest.direct_copy import COPY_TARGETS, POINTS_TARGET, ingest_role
from app.ingest.payload import Message
from app.ingest.writer import Inbound
from app.platform import Platform
from tests.conftest import NewTenant
from tests.ingest.conftest import copy_target
from tests.ingest.test_mqtt_ingest import make_device
from tests.storage.conftest import app_connection

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 30, 12, 1, tzinfo=UTC)


@pytest.fixture
async def layout(database_url: str) -> tuple[bool, str]:
    return await copy_target(database_url)


async def test_the_ingest_role_adds_telemetry_and_can_read_or_change_nothing(
    platform: Platform, new_tenant: NewTenant, layout: tuple[bool, str],
) -> None:
    points, relation = layout
    schema, table, columns = COPY_TARGETS[points]
    admin = (await new_tenant()).principal
    device = await make_device(platform, admin)
    role = ingest_role(platform.settings.app_db_role)
    connection = await app_connection(platform)
    try:
        async with connection.transaction():
            await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(admin.tenant_id))
            series, device_series = [record['id'] for record in await connection.fetch(
                'INSERT INTO telemetry_series (tenant_id, device_id, key_id) VALUES ($1, $2, 1), ($1, $2, 0) '
                'RETURNING id', admin.tenant_id, device.id)]
        if points:  # a message's numbers: one row in the device's series; a text reading: a row in its key's
            rows = (bytearray(HEADER) + row_prefix(admin.tenant_id, device_series, [1])
                    + row_tail(1).pack(8, micros(T0), 32, 1, 0, FLOAT8_OID, 1, 1, 8, 1.0) + TRAILER)
            texts = bytearray(HEADER) + series_prefix(admin.tenant_id, series) + other_tail(micros(T1), 'on') + TRAILER
        else:
            rows = bytearray(HEADER) + reading_prefix(admin.tenant_id, device.id, 1) + number_tail(micros(T0), 1.0)
            rows += TRAILER
        refused = (asyncpg.FeatureNotSupportedError if points  # row-level security
                   else asyncpg.InsufficientPrivilegeError)  # the app role may not even name the hypertable's schema
        with pytest.raises(refused):
            await connection.copy_to_table(table, schema_name=schema, source=rows, columns=columns, format='binary')
        await connection.execute(f'SET ROLE "{role}"')
        await connection.copy_to_table(table, schema_name=schema, source=rows, columns=columns, format='binary')
        if points:
            point_schema, point_table, point_columns = POINTS_TARGET
            await connection.copy_to_table(point_table, schema_name=point_schema, source=texts,
                                           columns=point_columns, format='binary')
        for statement in ('SELECT count(*) FROM telemetry', f'SELECT count(*) FROM {relation}',
                          'SELECT count(*) FROM telemetry_series', 'SELECT count(*) FROM devices',
                          'UPDATE devices SET name = $$x$$', f'DELETE FROM {relation}',
                          'SELECT count(*) FROM latest_values', 'INSERT INTO telemetry_keys (tenant_id, name) '
                          "VALUES ('00000000-0000-0000-0000-000000000000', 'x')"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute(statement)
    finally:
        await connection.close()
    url = platform.db.app.url.set(drivername='postgresql', username=role, password=None)
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match='not permitted to log in'):
        await asyncpg.connect(url.render_as_string(hide_password=False))
    async with platform.db.tenant(admin.tenant_id) as session:
        assert await session.scalar(text('SELECT value FROM telemetry WHERE ts = :ts'), {'ts': T0}) == 1.0
        if layout[0]:
            assert await session.scalar(text('SELECT text_value FROM telemetry WHERE ts = :ts'), {'ts': T1}) == 'on'


async def test_two_tenants_in_one_batch_are_copied_at_once_and_each_sees_only_its_own(
    platform: Platform, new_tenant: NewTenant,
) -> None:
    first, second = (await new_tenant()).principal, (await new_tenant()).principal
    devices = {principal.tenant_id: await make_device(platform, principal) for principal in (first, second)}
    await platform.writer.start()
    try:
        loop = asyncio.get_running_loop()
        done = [loop.create_future(), loop.create_future()]
        platform.writer.offer([
            Inbound(first.tenant_id, devices[first.tenant_id].id,
                    [Message(T0, None, {'temperature': 20.0})], datetime.now(UTC), done=done[0]),
            Inbound(second.tenant_id, devices[second.tenant_id].id,
                    [Message(T0, None, {'temperature': 30.0})], datetime.now(UTC), done=done[1]),
        ])
        await asyncio.wait_for(asyncio.gather(*done), timeout=30)
        assert platform.writer.copies_directly
        assert platform.writer.stats.batches == 1
    finally:
        await platform.writer.stop()
    for principal, value in ((first, 20.0), (second, 30.0)):
        latest = await platform.telemetry.latest(principal, devices[principal.tenant_id].id)
        assert [(item.key, item.value) for item in latest] == [('temperature', value)]
        other = devices[(second if principal is first else first).tenant_id].id
        async with platform.db.tenant(principal.tenant_id) as session:
            mine = await session.scalar(text('SELECT count(*) FROM telemetry'))
            theirs = await session.scalar(text('SELECT count(*) FROM telemetry WHERE device_id = :id'), {'id': other})
        assert (mine, theirs) == (1, 0)


async def test_a_revoked_ingest_role_falls_back_to_the_staging_table_and_loses_nothing(
    platform: Platform, new_tenant: NewTenant, caplog: pytest.LogCaptureFixture, layout: tuple[bool, str],
) -> None:
    relation = layout[1]
    admin = (await new_tenant()).principal
    device = await make_device(platform, admin)
    role = ingest_role(platform.settings.app_db_role)

    async def send(value: float, ts: datetime) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await platform.writer.submit(Inbound(admin.tenant_id, device.id, [Message(ts, None, {'v': value})],
                                             datetime.now(UTC), done=done))
        await asyncio.wait_for(done, timeout=30)

    await platform.writer.start()
    try:
        await send(1.0, T0)
        assert platform.writer.copies_directly
        async with platform.db.system() as session:  # per database: other test databases keep their grant
            await session.execute(text(f'REVOKE INSERT ON {relation} FROM "{role}"'))
        try:
            await send(2.0, T0.replace(minute=1))
            assert not platform.writer.copies_directly
            assert 'ingest role no longer usable' in caplog.text
        finally:
            async with platform.db.system() as session:
                await session.execute(text(f'GRANT INSERT ON {relation} TO "{role}"'))
    finally:
        await platform.writer.stop()
    async with platform.db.tenant(admin.tenant_id) as session:
        stored = await session.execute(text('SELECT value FROM telemetry WHERE device_id = :id ORDER BY ts'),
                                       {'id': device.id})
        assert [value for (value,) in stored] == [1.0, 2.0]
