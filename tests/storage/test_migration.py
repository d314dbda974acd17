"""Migrations 0007 and 0012 turn existing telemetry and rollup tables into partitions, keeping every row."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg
import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import MIGRATIONS_DIR, async_url
from tests import support


@pytest.fixture
def blank_database() -> Iterator[support.TestDatabase]:
    import os

    if support.timescale_preloaded(os.environ.get('GITO_TEST_DATABASE_URL')):
        pytest.skip('the conversion to native partitions; a TimescaleDB server converts to a hypertable instead')
    database = support.create_database(os.environ.get('GITO_TEST_DATABASE_URL'))
    yield database
    support.drop_database(database)


def _upgrade_to(revision: str) -> object:
    def run(connection: Connection) -> None:
        config = AlembicConfig()
        config.set_main_option('script_location', str(MIGRATIONS_DIR))
        config.attributes['connection'] = connection
        command.upgrade(config, revision)
    return run


async def _migrate(url: str, revision: str) -> None:
    engine = create_async_engine(async_url(url))
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade_to(revision))  # type: ignore[arg-type]
    await engine.dispose()


async def _convert(url: str) -> list[tuple[object, ...]]:
    await _migrate(url, '0005')
    tenant, device = uuid4(), uuid4()
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [(tenant, device, 1, now - timedelta(days=d), float(d)) for d in (0, 2, 40, 2000)]
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("INSERT INTO tenants (id, name) VALUES ($1, 'T')", tenant)
        await connection.executemany(
            'INSERT INTO telemetry (tenant_id, device_id, key_id, ts, value) VALUES ($1, $2, $3, $4, $5)', rows)
        await _migrate(url, '0007')
        kept = await connection.fetch('SELECT tableoid::regclass::text, ts, value FROM telemetry ORDER BY value')
        assert await connection.fetchval("SELECT relkind::text FROM pg_class WHERE relname = 'telemetry'") == 'p'
    finally:
        await connection.close()
    return [(r[0], r[1], r[2]) for r in kept]


def test_existing_rows_survive_the_conversion(blank_database: support.TestDatabase) -> None:
    kept = asyncio.run(_convert(blank_database.url))
    now = datetime.now(UTC)
    assert [value for _, _, value in kept] == [0.0, 2.0, 40.0, 2000.0]
    assert kept[1][0] == f'telemetry_p{(now - timedelta(days=2)):%Y%m%d}'
    assert kept[3][0] == 'telemetry_default'  # older than three years: no partition of its own


async def _convert_rollups(url: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    await _migrate(url, '0011')
    tenant, device = uuid4(), uuid4()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("INSERT INTO tenants (id, name) VALUES ($1, 'T')", tenant)
        for table, ages in (('telemetry_1m', (0, 2, 400)), ('telemetry_1h', (0, 70, 5000))):
            await connection.executemany(
                f'INSERT INTO {table} (tenant_id, device_id, key_id, bucket, count, sum, min, max, last, last_ts) '
                'VALUES ($1, $2, 1, $3, 1, $4, $4, $4, $4, $3)',
                [(tenant, device, now - timedelta(days=age), float(age)) for age in ages])
        await _migrate(url, '0012')
        kinds = await connection.fetch("SELECT relname::text, relkind::text FROM pg_class "
                                       "WHERE relname IN ('telemetry_1m', 'telemetry_1h') ORDER BY 1")
        assert [tuple(kind) for kind in kinds] == [('telemetry_1h', 'p'), ('telemetry_1m', 'p')]
        minutes = await connection.fetch('SELECT tableoid::regclass::text, sum FROM telemetry_1m ORDER BY sum')
        hours = await connection.fetch('SELECT tableoid::regclass::text, sum FROM telemetry_1h ORDER BY sum')
    finally:
        await connection.close()
    return [tuple(r) for r in minutes], [tuple(r) for r in hours]


def test_existing_rollups_survive_their_conversion(blank_database: support.TestDatabase) -> None:
    minutes, hours = asyncio.run(_convert_rollups(blank_database.url))
    now = datetime.now(UTC)
    assert minutes == [(f'telemetry_1m_p{now:%Y%m%d}', 0.0), (f'telemetry_1m_p{now - timedelta(days=2):%Y%m%d}', 2.0),
                       ('telemetry_1m_p' + f'{now - timedelta(days=400):%Y%m%d}', 400.0)]
    assert hours == [(f'telemetry_1h_m{now:%Y%m}', 0.0), (f'telemetry_1h_m{now - timedelta(days=70):%Y%m}', 70.0),
                     ('telemetry_1h_default', 5000.0)]  # older than ten years: no partition of its own


async def _convert_to_series(url: str) -> dict[str, object]:
    await _migrate(url, '0013')
    tenant, device = uuid4(), uuid4()
    now = datetime.now(UTC).replace(microsecond=0)
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("INSERT INTO tenants (id, name) VALUES ($1, 'T')", tenant)
        await connection.executemany(
            'INSERT INTO telemetry (tenant_id, device_id, key_id, ts, value, text_value) '
            'VALUES ($1, $2, $3, $4, $5, $6)',
            [(tenant, device, 1, now - timedelta(days=2), 1.0, None), (tenant, device, 1, now, 2.0, None),
             (tenant, device, 2, now, None, 'on'), (tenant, device, 1, now - timedelta(days=2000), 3.0, None)])
        before = await connection.fetch('SELECT device_id, key_id, ts, value, text_value, ingest_xid FROM telemetry '
                                        'ORDER BY key_id, ts')
        await _migrate(url, '0014')
        after = await connection.fetch('SELECT device_id, key_id, ts, value, text_value, ingest_xid FROM telemetry '
                                       'ORDER BY key_id, ts')
        homes = await connection.fetch('SELECT tableoid::regclass::text AS home, ts FROM telemetry_points ORDER BY ts')
        series = await connection.fetchval('SELECT count(*) FROM telemetry_series WHERE tenant_id = $1', tenant)
        view = await connection.fetchval("SELECT relkind::text FROM pg_class WHERE oid = 'telemetry'::regclass")
        await connection.execute('INSERT INTO telemetry (tenant_id, device_id, key_id, ts, value) '
                                 'VALUES ($1, $2, 3, $3, 4.0)', tenant, device, now)  # through the view: a new series
        added = await connection.fetchval('SELECT value FROM telemetry WHERE key_id = 3')
        await connection.execute('DELETE FROM telemetry WHERE key_id = 2')
        left = await connection.fetchval('SELECT count(*) FROM telemetry_points')
    finally:
        await connection.close()
    return {'before': [tuple(r) for r in before], 'after': [tuple(r) for r in after], 'series': series,
            'homes': [r['home'] for r in homes], 'view': view, 'added': added, 'left': left, 'now': now}


def test_rows_keep_their_values_and_insertion_ids_when_telemetry_gets_series(
    blank_database: support.TestDatabase,
) -> None:
    result = asyncio.run(_convert_to_series(blank_database.url))
    assert result['after'] == result['before']  # every row, ingest_xid included: rollups go on where they were
    assert len(result['after']) == 4  # type: ignore[arg-type]
    assert result['series'] == 2
    now = result['now']
    assert isinstance(now, datetime)
    assert result['homes'] == ['telemetry_points_default', f'telemetry_points_p{now - timedelta(days=2):%Y%m%d}',
                               f'telemetry_points_p{now:%Y%m%d}', f'telemetry_points_p{now:%Y%m%d}']
    assert result['view'] == 'v'
    assert result['added'] == 4.0
    assert result['left'] == 4  # 4 + 1 added - 1 deleted through the view


async def _upgrade_to_rows(url: str) -> dict[str, object]:
    await _migrate(url, '0016')
    tenant, device = uuid4(), uuid4()
    now = datetime.now(UTC).replace(microsecond=0)
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("INSERT INTO tenants (id, name) VALUES ($1, 'T')", tenant)
        empty_mark = await connection.fetchval("SELECT to_regclass('telemetry_rows_since') IS NULL")
        await connection.executemany(  # through the view of 0014: rows of `telemetry_points`
            'INSERT INTO telemetry (tenant_id, device_id, key_id, ts, value, text_value) '
            'VALUES ($1, $2, $3, $4, $5, $6)', [(tenant, device, 1, now - timedelta(days=1), 1.0, None),
                                                (tenant, device, 2, now, None, 'on')])
        before = await connection.fetch('SELECT key_id, ts, value, text_value, ingest_xid FROM telemetry ORDER BY 1, 2')
        await _migrate(url, '0017')
        after = await connection.fetch('SELECT key_id, ts, value, text_value, ingest_xid FROM telemetry ORDER BY 1, 2')
        since = await connection.fetchval('SELECT since - now() FROM telemetry_rows_since')
        await connection.execute('INSERT INTO telemetry (tenant_id, device_id, key_id, ts, value) '
                                 'VALUES ($1, $2, 1, $3, 5.0)', tenant, device, now)  # a number: a row of its own
        homes = await connection.fetch(
            'SELECT tableoid::regclass::text FROM telemetry_rows UNION ALL '
            'SELECT tableoid::regclass::text FROM telemetry_points ORDER BY 1')
    finally:
        await connection.close()
    return {'empty_mark': empty_mark, 'before': [tuple(r) for r in before], 'after': [tuple(r) for r in after],
            'since': since, 'homes': [r[0] for r in homes], 'now': now}


def test_readings_stored_before_telemetry_rows_stay_and_mark_until_when(blank_database: support.TestDatabase) -> None:
    result = asyncio.run(_upgrade_to_rows(blank_database.url))
    assert result['empty_mark']
    assert result['after'] == result['before']  # nothing moved, insertion ids kept: rollups go on where they were
    since = result['since']
    assert isinstance(since, timedelta) and timedelta(minutes=9) < since <= timedelta(minutes=10)
    now = result['now']
    assert isinstance(now, datetime)
    assert result['homes'] == [f'telemetry_points_p{now - timedelta(days=1):%Y%m%d}',
                               f'telemetry_points_p{now:%Y%m%d}', f'telemetry_rows_p{now:%Y%m%d}']


async def _fresh_install_mark(url: str) -> object:
    await _migrate(url, 'heads')
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval('SELECT count(*) FROM telemetry_rows_since')
    finally:
        await connection.close()


def test_a_new_installation_has_no_readings_of_the_old_layout_to_check(blank_database: support.TestDatabase) -> None:
    assert asyncio.run(_fresh_install_mark(blank_database.url)) == 0
