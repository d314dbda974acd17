"""Chart query figures: a 30-day chart of one device sending 4 keys every 10 s (~260k readings per key).

    python -m bench.query [--days 30] [--interval 10] [--keys 4] [--runs 7]

Needs a PostgreSQL server: GITO_BENCH_DATABASE_URL or DATABASE_URL (a server URL; the benchmark creates and
drops its own database), else the embedded PostgreSQL in a temporary directory. Loads the readings with one
INSERT … SELECT in the layout the batch writer makes (on plain PostgreSQL a row of `telemetry_rows` per message;
the writer itself is not what is measured here), runs the storage job once (partitions,
rollups), then times `TelemetryService.chart` for 30 days, 7 days, 24 hours and 1 hour: prints the median and
worst time of --runs warm runs, the source picked and the points returned per series; then streams the whole
range as CSV (about a million rows) and prints how long that took.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from app.config import Settings
from app.db import migrate
from app.models.schemas import DeviceCreate, Principal
from app.platform import Platform, Resolved, app_role_password
from app.services.storage.native_sql import DEVICE_KEY
from tests.support import TestDatabase, create_database, drop_database, roll_up

LOAD = """
INSERT INTO telemetry (tenant_id, device_id, key_id, ts, value)
SELECT :tenant, :device, k.id, CAST(:start AS timestamptz) + make_interval(secs => i * :interval),
       sin(i / 360.0) * 10 + k.id
FROM generate_series(0, :count - 1) i CROSS JOIN telemetry_keys k WHERE k.tenant_id = :tenant"""
# Plain PostgreSQL: each message's numbers one row in the device's series, as the batch writer stores them.
SERIES = f"""
INSERT INTO telemetry_series (tenant_id, device_id, key_id)
SELECT CAST(:tenant AS uuid), CAST(:device AS uuid), {DEVICE_KEY}
UNION ALL SELECT :tenant, :device, id FROM telemetry_keys WHERE tenant_id = :tenant"""
LOAD_ROWS = f"""
INSERT INTO telemetry_rows (tenant_id, series_id, ts, key_ids, vals)
SELECT :tenant, s.id, CAST(:start AS timestamptz) + make_interval(secs => i * :interval),
       array(SELECT k.id FROM telemetry_keys k WHERE k.tenant_id = :tenant ORDER BY k.id),
       array(SELECT sin(i / 360.0) * 10 + k.id FROM telemetry_keys k WHERE k.tenant_id = :tenant ORDER BY k.id)
FROM generate_series(0, :count - 1) i
CROSS JOIN telemetry_series s WHERE s.tenant_id = :tenant AND s.device_id = :device AND s.key_id = {DEVICE_KEY}"""


async def bench(database: TestDatabase, *, days: int, interval: int, keys: int, runs: int) -> None:
    settings = Settings(secret_key='bench-query-secret', storage_jobs=False, data_dir=Path(tempfile.mkdtemp()))
    await migrate(database.url, role=settings.app_db_role, password=app_role_password(settings))
    platform = Platform(settings, Resolved(database_url=database.url, mqtt_url='mqtt://127.0.0.1:1'))
    try:
        await platform.storage_jobs.start(loop=False)
        tenant = await platform.tenants.create('Bench')
        admin = Principal(tenant_id=tenant.id, user_id=None, role='admin')
        device, _ = await platform.devices.create(admin, DeviceCreate(name='Meter'))
        end = datetime.now(UTC).replace(microsecond=0)
        start = end - timedelta(days=days)
        count = days * 86400 // interval
        started = time.perf_counter()
        async with platform.db.system() as session:
            for index in range(keys):
                await session.execute(text('INSERT INTO telemetry_keys (tenant_id, name) VALUES (:t, :n)'),
                                      {'t': tenant.id, 'n': f'key{index}'})
        await platform.storage_jobs.ensure_partitions()
        async with platform.db.system() as session:
            params = {'tenant': tenant.id, 'device': device.id, 'start': start, 'interval': interval, 'count': count}
            if platform.storage_jobs.backend == 'timescaledb':
                await session.execute(text(LOAD), params)
            else:
                await session.execute(text(SERIES), params)
                await session.execute(text(LOAD_ROWS), params)
        loaded = time.perf_counter()
        if platform.storage_jobs.backend == 'timescaledb':  # what the refresh policies do as the month goes by
            await roll_up(platform)
            rolled_up = 'continuous aggregates refreshed'
        else:
            run = await platform.storage_jobs.refresh_rollups()
            rolled_up = f'rollups ({run.minutes:,} minutes, {run.hours:,} hours)'
        rolled = time.perf_counter()
        async with platform.db.system() as session:
            await session.execute(text('ANALYZE'))
        print(f'storage backend {platform.storage_jobs.backend}: loaded {count:,} readings x {keys} keys over {days} '
              f'days in {loaded - started:.1f} s; {rolled_up} in {rolled - loaded:.1f} s')
        for label, span in (('30 d', timedelta(days=30)), ('7 d', timedelta(days=7)),
                            ('24 h', timedelta(hours=24)), ('1 h', timedelta(hours=1))):
            timings = []
            series = []
            for _ in range(runs + 1):  # the first run warms the caches and is not counted
                began = time.perf_counter()
                series = await platform.telemetry.chart(admin, device.id, start=end - span, end=end)
                timings.append((time.perf_counter() - began) * 1000)
            warm = timings[1:]
            points = sorted({len(s.values) for s in series})
            print(f'chart {label:>4}: median {statistics.median(warm):6.1f} ms, worst {max(warm):6.1f} ms '
                  f'(first {timings[0]:.1f} ms); source {series[0].source}, bucket {series[0].bucket_s} s, '
                  f'{len(series)} series x {points} points')
        began = time.perf_counter()
        size = lines = 0
        async for chunk in await platform.export.csv(admin, device.id, start=start, end=end + timedelta(seconds=1)):
            size += len(chunk)
            lines += chunk.count(b'\n')
        took = time.perf_counter() - began
        print(f'CSV export of {lines - 1:,} rows ({size / 1e6:.0f} MB) streamed in {took:.1f} s '
              f'({(lines - 1) / took:,.0f} rows/s)')
    finally:
        await platform.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--days', type=int, default=30)
    parser.add_argument('--interval', type=int, default=10, help='seconds between messages')
    parser.add_argument('--keys', type=int, default=4)
    parser.add_argument('--runs', type=int, default=7)
    args = parser.parse_args()
    server = os.environ.get('GITO_BENCH_DATABASE_URL') or os.environ.get('DATABASE_URL')
    database = create_database(server)
    try:
        asyncio.run(bench(database, days=args.days, interval=args.interval, keys=args.keys, runs=args.runs))
    finally:
        drop_database(database)


if __name__ == '__main__':
    main()
