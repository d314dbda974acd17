"""The TimescaleDB layout, on a server that has it: hypertable and policies, the second wall, compressed chunks.

Skipped on plain PostgreSQL (the suite's default here). Run with GITO_TEST_DATABASE_URL naming a server that
preloads TimescaleDB; the rest of the suite then runs on the TimescaleDB backend too.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import text

from app.models.storage import RetentionSettings
from app.platform import Platform
from app.services.storage.retention import DEFAULT_RETENTION
from app.services.storage.timescale import SCHEMA
from tests.conftest import NewTenant
from tests.storage.conftest import app_connection, insert_as, new_device, owner_scalar, store
from tests.support import roll_up

pytestmark = pytest.mark.timescale_storage


async def test_telemetry_is_a_compressed_hypertable_with_its_policies(storage: Platform) -> None:
    async with storage.db.system() as session:
        hypertables = (await session.execute(text(
            'SELECT hypertable_schema, hypertable_name, compression_enabled FROM timescaledb_information.hypertables '
            'WHERE hypertable_schema = :schema AND hypertable_name = :name'), {'schema': SCHEMA, 'name': 'telemetry'},
        )).all()
        jobs = (await session.execute(text(
            "SELECT proc_name, hypertable_name FROM timescaledb_information.jobs WHERE proc_name <> 'policy_telemetry'"
            ' ORDER BY 1, 2'))).all()
        aggregates = (await session.scalars(text(
            'SELECT view_name FROM timescaledb_information.continuous_aggregates WHERE view_schema = :schema '
            'ORDER BY 1'), {'schema': SCHEMA})).all()
    assert [tuple(row) for row in hypertables] == [(SCHEMA, 'telemetry', True)]
    assert aggregates == ['telemetry_1h', 'telemetry_1m']
    kinds = [name for name, _ in jobs]
    assert kinds.count('policy_compression') == 1
    assert kinds.count('policy_refresh_continuous_aggregate') == 2
    assert kinds.count('policy_retention') == 3  # raw, and both aggregates' materializations


async def test_the_app_role_sees_its_tenant_through_the_views_and_nothing_underneath(
    storage: Platform, new_tenant: NewTenant,
) -> None:
    admin, stranger = (await new_tenant()).principal, (await new_tenant()).principal
    device = await new_device(storage, admin)
    now = datetime.now(UTC).replace(microsecond=0)
    await store(storage, admin, device.id, [(now, 'power', 1.0)])
    await roll_up(storage)
    chunk = await owner_scalar(storage, f"SELECT format('%I.%I', chunk_schema, chunk_name) "
                                        f"FROM timescaledb_information.chunks WHERE hypertable_schema = '{SCHEMA}' "
                                        "AND hypertable_name = 'telemetry' LIMIT 1")
    connection = await app_connection(storage)
    try:
        for relation in (f'{SCHEMA}.telemetry', f'{SCHEMA}.telemetry_1m', str(chunk)):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.fetch(f'SELECT * FROM {relation} LIMIT 1')
        async with connection.transaction():
            await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(stranger.tenant_id))
            for view in ('telemetry', 'telemetry_1m', 'telemetry_1h'):
                assert await connection.fetchval(f'SELECT count(*) FROM {view} WHERE device_id = $1', device.id) == 0
        with pytest.raises(asyncpg.WithCheckOptionViolationError):  # another tenant's row, through the view
            await insert_as(connection, stranger.tenant_id, admin.tenant_id, device.id)
    finally:
        await connection.close()
    async with storage.db.tenant(admin.tenant_id) as session:
        assert await session.scalar(text('SELECT count(*) FROM telemetry WHERE device_id = :d'), {'d': device.id}) == 1
        assert await session.scalar(text('SELECT sum(count) FROM telemetry_1m WHERE device_id = :d'),
                                    {'d': device.id}) == 1


async def test_late_data_and_duplicates_into_a_compressed_chunk(storage: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    device = await new_device(storage, admin)
    old = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)  # past the compression policy's 7 days
    await store(storage, admin, device.id, [(old, 'power', 1.0), (old + timedelta(seconds=1), 'power', 2.0)])
    async with storage.db.system() as session:
        compressed = (await session.scalars(text(
            f"SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks('{SCHEMA}.telemetry', "
            "older_than => INTERVAL '8 days') c"))).all()
    assert compressed
    duplicates_before = storage.writer.stats.duplicates
    await store(storage, admin, device.id, [(old + timedelta(seconds=2), 'power', 3.0),  # late, into the chunk
                                            (old, 'power', 9.0)])  # a duplicate of a compressed row
    page = await storage.telemetry.raw(admin, device.id, start=old - timedelta(minutes=1),
                                       end=old + timedelta(minutes=1))
    assert [point.value for point in page.points] == [1.0, 2.0, 3.0]
    assert storage.writer.stats.duplicates - duplicates_before == 1


async def test_a_page_of_readings_is_an_ordered_scan_of_the_chunks(storage: Platform, new_tenant: NewTenant) -> None:
    """Through the tenant view, `ORDER BY ts LIMIT` must not sort the whole range (an export page did, before)."""
    admin = (await new_tenant()).principal
    device = await new_device(storage, admin)
    now = datetime.now(UTC).replace(microsecond=0)
    await store(storage, admin, device.id, [(now - timedelta(days=day), 'power', float(day)) for day in range(5)])
    async with storage.db.tenant(admin.tenant_id) as session:
        # On five rows a sort is as cheap as anything: forbid it, so the test asks whether an ordered scan exists
        # at all (through a security-barrier view it did not, whatever the size).
        await session.execute(text('SET LOCAL enable_sort = off'))
        plan = '\n'.join((await session.scalars(text(
            'EXPLAIN (COSTS OFF) SELECT ts, value FROM telemetry WHERE tenant_id = :t AND device_id = :d '
            'AND ts >= :start ORDER BY ts LIMIT 2'), {'t': admin.tenant_id, 'd': device.id,
                                                      'start': now - timedelta(days=10)})).all())
    lines = plan.splitlines()  # the limit straight over an ordered append of the chunks, not over a sort of them
    assert lines[0] == 'Limit' and 'ChunkAppend' in lines[1] and 'Order: telemetry.ts' in lines[2], plan


async def test_late_rows_reach_the_aggregates_through_the_storage_job(storage: Platform, new_tenant: NewTenant) -> None:
    """Below the aggregates' watermark (where the refresh policies have been) a late row is not in the rollups
    until the job refreshes the days the policies do not reach."""
    admin = (await new_tenant()).principal
    device = await new_device(storage, admin)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    await store(storage, admin, device.id, [(now - timedelta(minutes=5), 'power', 1.0)])
    await roll_up(storage)  # the watermark moves up to now, as the policies move it
    late = now - timedelta(days=12)
    await store(storage, admin, device.id, [(late, 'power', 7.0)])

    async def late_minute() -> object:
        async with storage.db.tenant(admin.tenant_id) as session:
            return await session.scalar(text('SELECT sum FROM telemetry_1m WHERE device_id = :d AND bucket = :b'),
                                        {'d': device.id, 'b': late})

    assert await late_minute() is None
    assert await storage.storage_jobs.refresh_late_aggregates(shortest_raw_days=30) == 2
    assert await late_minute() == 7.0


async def test_a_longer_retention_moves_the_drop_policies_at_once(storage: Platform, new_tenant: NewTenant) -> None:
    """TimescaleDB's own jobs drop chunks past the policies' horizon whenever they run: a tenant that now keeps its
    data longer must not lose it to a job that runs before the next housekeeping."""
    admin = (await new_tenant()).principal
    await storage.storage_jobs.apply_retention()
    longest = 3000  # longer than any other test tenant asks for
    try:
        await storage.storage.update_retention(admin, RetentionSettings(
            raw_days=longest - 2, minute_days=longest - 1, hour_days=longest))
        async with storage.db.system() as session:
            horizons: dict[str, str] = {name: after for name, after in (await session.execute(text(
                "SELECT hypertable_name, config->>'drop_after' FROM timescaledb_information.jobs "
                "WHERE proc_name = 'policy_retention' AND hypertable_schema = :schema"), {'schema': SCHEMA})).all()}
        assert horizons['telemetry'] == f'{longest - 2} days'
        assert set(horizons.values()) == {f'{longest - 2} days', f'{longest - 1} days', f'{longest} days'}
    finally:  # the tests after this one expect the policies at the other tenants' retentions
        await storage.storage.update_retention(admin, RetentionSettings(**asdict(DEFAULT_RETENTION)))
        await storage.storage_jobs.apply_retention()
