"""What PostgreSQL spends per message in the writer's COPY, by row layout: one row per reading (as stored today)
against one row per message.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python bench/row_layout.py --messages 1000000

At 30,000 msg/s the writer's PostgreSQL backend is the second-largest cost after Gito itself, and at each checkpoint
the first change to every hot index page writes a full-page image: with a row per reading every (device, key) series
appends on a leaf page of its own (40,000 at 10,000 devices of four keys). This measures the alternative before
anything is built on it. Each layout is a day-partitioned table with the primary key (series, ts) and the BRIN index
on `ingest_xid` that `telemetry_points` has (`app/services/storage/native_sql.py`):
- `reading`: `telemetry_points` as it is, four rows per message;
- `arrays`: one row per message, key ids and values as arrays (any number of keys);
- `columns`: one row per message with four (key, value) column pairs (the bench's payload fits exactly).
Batches of `--batch` messages (the writer's default) go to each layout in turn, one transaction each, so the
machine's load moves all three alike. Printed per message: the backend's CPU (its process, read with psutil: the
server must be on this machine), the wall time, and the WAL written, with a checkpoint before every tenth of the
run so the full-page images count as they do under load; then each table's size, and what reading one key of one
device back costs per point (a chart's raw series: a row per message holds the other keys too). A scratch database
`gito_row_layout` is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import psutil

SCRATCH = 'gito_row_layout'
KEYS = 4
COMMON = 'tenant_id uuid NOT NULL, series_id integer NOT NULL, ts timestamptz NOT NULL'
TAIL = 'ingest_xid bigint NOT NULL DEFAULT txid_current(), PRIMARY KEY (series_id, ts)'
LAYOUTS = {
    'reading': ('value double precision, text_value text, bool_value boolean, json_value jsonb',
                ['value', 'text_value', 'bool_value', 'json_value']),
    'arrays': ('key_ids integer[] NOT NULL, vals double precision[] NOT NULL', ['key_ids', 'vals']),
    'columns': (', '.join(f'k{i} smallint, v{i} double precision' for i in range(KEYS)),
                [f'{c}{i}' for i in range(KEYS) for c in ('k', 'v')]),
}


def ddl(name: str, columns: str, day: date) -> str:
    return f"""
CREATE TABLE {name} ({COMMON}, {columns}, {TAIL}) PARTITION BY RANGE (ts);
CREATE TABLE {name}_day PARTITION OF {name} FOR VALUES FROM ('{day}') TO ('{day + timedelta(days=1)}');
CREATE INDEX ON {name} USING brin (ingest_xid) WITH (pages_per_range = 32)"""


def batch_rows(tenant: uuid.UUID, devices: range, device_count: int, ts: datetime) -> dict[str, list[tuple[Any, ...]]]:
    rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in LAYOUTS}
    key_ids = list(range(1, KEYS + 1))
    for number in devices:
        device = number % device_count
        values = [random.random() * 100 for _ in range(KEYS)]
        rows['reading'] += [(tenant, device * KEYS + k, ts, values[k], None, None, None) for k in range(KEYS)]
        rows['arrays'].append((tenant, device, ts, key_ids, values))
        rows['columns'].append((tenant, device, ts, *(x for k in range(KEYS) for x in (key_ids[k], values[k]))))
    return rows


async def run(args: argparse.Namespace) -> dict[str, Any]:
    admin = await asyncpg.connect(args.database_url)
    await admin.execute(f'DROP DATABASE IF EXISTS {SCRATCH}')
    await admin.execute(f'CREATE DATABASE {SCRATCH}')
    try:
        dsn = args.database_url.rsplit('/', 1)[0] + '/' + SCRATCH
        connection = await asyncpg.connect(dsn)
        try:
            return await measure(connection, args)
        finally:
            await connection.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)')
        await admin.close()


async def measure(connection: asyncpg.Connection, args: argparse.Namespace) -> dict[str, Any]:
    day = datetime.now(UTC).date()
    for name, (definition, _) in LAYOUTS.items():
        await connection.execute(ddl(name, definition, day))
    backend = psutil.Process(await connection.fetchval('SELECT pg_backend_pid()'))
    tenant = uuid.uuid4()
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=1)
    cpu = dict.fromkeys(LAYOUTS, 0.0)
    wall = dict.fromkeys(LAYOUTS, 0.0)
    wal = dict.fromkeys(LAYOUTS, 0)
    checkpoint_every = max(args.messages // 10, args.batch)
    sent = 0
    while sent < args.messages:
        if sent % checkpoint_every < args.batch:
            await connection.execute('CHECKPOINT')
        ts = start + timedelta(seconds=sent // args.devices)  # each device once per second, as in bench/ingest.py
        rows = batch_rows(tenant, range(sent, sent + args.batch), args.devices, ts)
        for name, (_, copied) in LAYOUTS.items():
            before_cpu, before_wall = sum(backend.cpu_times()[:2]), time.perf_counter()
            before_lsn = await connection.fetchval('SELECT pg_current_wal_insert_lsn()')
            async with connection.transaction():
                await connection.copy_records_to_table(name, records=rows[name],
                                                       columns=['tenant_id', 'series_id', 'ts', *copied])
            wall[name] += time.perf_counter() - before_wall
            cpu[name] += sum(backend.cpu_times()[:2]) - before_cpu
            wal[name] += await connection.fetchval(
                'SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1)', before_lsn)
        sent += args.batch
    sizes = {name: await connection.fetchval(f"SELECT pg_total_relation_size('{name}_day')") for name in LAYOUTS}
    await connection.execute('VACUUM ANALYZE')  # as autovacuum would leave them: visibility map set, statistics
    read = await read_one_key(connection, args.devices, args.read_series)
    return {
        'devices': args.devices, 'messages': sent, 'keys_per_message': KEYS, 'batch_messages': args.batch,
        'layouts': {name: {
            'backend_cpu_us_per_msg': round(cpu[name] / sent * 1e6, 2),
            'wall_us_per_msg': round(wall[name] / sent * 1e6, 2),
            'wal_bytes_per_msg': round(wal[name] / sent),
            'table_and_indexes_mb': round(sizes[name] / 2**20),
            'read_us_per_point': read[name],
        } for name in LAYOUTS},
        'cpu_ratio_reading_to_arrays': round(cpu['reading'] / cpu['arrays'], 2) if cpu['arrays'] else None,
    }


# One key of one device over everything stored, as a chart of raw points reads it (`layout.py`'s series pages).
READ_ONE_KEY = {
    'reading': f'SELECT ts, value FROM reading WHERE series_id = $1 * {KEYS} + $2::integer - 1 ORDER BY ts',
    'arrays': 'SELECT ts, vals[array_position(key_ids, $2::integer)] FROM arrays '
              'WHERE series_id = $1 AND $2::integer = ANY(key_ids) ORDER BY ts',
    'columns': 'SELECT ts, CASE $2::smallint WHEN k0 THEN v0 WHEN k1 THEN v1 WHEN k2 THEN v2 WHEN k3 THEN v3 END '
               'FROM columns WHERE series_id = $1 AND $2::smallint IN (k0, k1, k2, k3) ORDER BY ts',
}


async def read_one_key(connection: asyncpg.Connection, devices: int, series: int) -> dict[str, float | None]:
    """Server time per point read (EXPLAIN ANALYZE's execution time, so the client's decoding does not count),
    over `series` random (device, key) series, the same for each layout."""
    picks = [(random.randrange(devices), random.randint(1, KEYS)) for _ in range(series)]
    out: dict[str, float | None] = {}
    for name, query in READ_ONE_KEY.items():
        total_ms, points = 0.0, 0
        for device, key in picks:
            plan = await connection.fetchval(f'EXPLAIN (ANALYZE, FORMAT JSON) {query}', device, key)
            found = json.loads(plan)[0]
            total_ms += found['Execution Time']
            points += found['Plan']['Actual Rows']
        out[name] = round(total_ms * 1000 / points, 2) if points else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--database-url', default=os.environ.get('DATABASE_URL', ''))
    parser.add_argument('--devices', type=int, default=10_000)
    parser.add_argument('--messages', type=int, default=500_000)
    parser.add_argument('--batch', type=int, default=1_250, help='messages per COPY (the writer takes 5,000 rows)')
    parser.add_argument('--read-series', type=int, default=200, help='series read back, one key each')
    args = parser.parse_args()
    if not args.database_url:
        parser.error('DATABASE_URL (or --database-url) names the PostgreSQL server to measure')
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == '__main__':
    main()
