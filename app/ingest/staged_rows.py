"""Rows moved from the writer's staging tables into telemetry, with duplicates sorted out.

The staging path of the batch writer (`writer.py`): the app role may not COPY into a table whose row-level security
applies to it, so a tenant's rows are copied into per-connection temporary tables and moved with `INSERT … SELECT`
under `app.tenant_id`. Duplicates are rare, so a plain INSERT is tried first (about a third cheaper than sorting
them out); when a row is a duplicate, the readings are moved one by one and what was really added is returned.

A duplicate is a reading of the same device, key and timestamp as a stored one (or an earlier one of the batch:
the first is kept). On plain PostgreSQL a message's numbers are one row of `telemetry_rows` (primary key: device
series, timestamp), so a message with other keys at a stored row's timestamp is no duplicate: its new numbers go
to `telemetry_points` in their keys' series (a row is never updated, so each reading is inserted once, with its
own `ingest_xid`, and the rollups stay exact), and only keys already stored in either table are dropped.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from app.ingest.copy_rows import (
    COLUMNS,
    POINT_COLUMNS,
    ROW_COLUMNS,
    micros,
    point_stage_table,
    row_stage_table,
    stage_table,
)

VALUES = 'ts, value, text_value, bool_value, json_value'
# Per layout (True: plain PostgreSQL; False: TimescaleDB, rows as `COLUMNS`, through the `telemetry` view).
CREATE_STAGES = {
    True: (point_stage_table('ingest_stage'), row_stage_table('ingest_rows_stage'), """
CREATE TEMP TABLE IF NOT EXISTS ingest_fresh (
    tenant_id uuid, device_id uuid, series_id integer, key_series integer, ts timestamptz, key_id integer,
    value double precision
) ON COMMIT DELETE ROWS"""),
    False: (stage_table('ingest_stage'),),
}
INSERT_POINTS = {
    True: f"""
INSERT INTO telemetry_points (tenant_id, series_id, {VALUES})
SELECT tenant_id, series_id, {VALUES} FROM ingest_stage WHERE tenant_id = $1""",
    False: f"""
INSERT INTO telemetry (tenant_id, device_id, key_id, {VALUES})
SELECT tenant_id, device_id, key_id, {VALUES} FROM ingest_stage WHERE tenant_id = $1""",
}
# The same with duplicates left out, returning what was inserted as (device, key series, ts).
MOVE_POINTS = {
    True: f"""
WITH moved AS ({INSERT_POINTS[True]}
ON CONFLICT DO NOTHING RETURNING series_id, ts)
SELECT s.device_id, m.series_id, m.ts FROM moved m JOIN telemetry_series s ON s.id = m.series_id""",
    False: f"""
WITH moved AS ({INSERT_POINTS[False]}
ON CONFLICT DO NOTHING RETURNING device_id, key_id, ts)
SELECT m.device_id, s.id, m.ts FROM moved m
JOIN telemetry_series s ON s.tenant_id = $1 AND s.device_id = m.device_id AND s.key_id = m.key_id""",
}
INSERT_ROWS = """
INSERT INTO telemetry_rows (tenant_id, series_id, key_ids, ts, vals)
SELECT tenant_id, series_id, key_ids, ts, vals FROM ingest_rows_stage WHERE tenant_id = $1"""
# The staged numbers not stored yet (in either table) nor earlier in the batch (staging order: the COPY's),
# one per device, key and timestamp, with the series of their key.
FRESH_READINGS = """
INSERT INTO ingest_fresh (tenant_id, device_id, series_id, key_series, ts, key_id, value)
SELECT DISTINCT ON (st.series_id, st.ts, u.key_id) $1, d.device_id, st.series_id, k.id, st.ts, u.key_id, u.value
FROM ingest_rows_stage st
JOIN telemetry_series d ON d.id = st.series_id
CROSS JOIN LATERAL unnest(st.key_ids, st.vals) AS u(key_id, value)
JOIN telemetry_series k ON k.tenant_id = $1 AND k.device_id = d.device_id AND k.key_id = u.key_id
WHERE st.tenant_id = $1
  AND NOT EXISTS (SELECT 1 FROM telemetry_rows r
                  WHERE r.series_id = st.series_id AND r.ts = st.ts AND u.key_id = ANY(r.key_ids))
  AND NOT EXISTS (SELECT 1 FROM telemetry_points p WHERE p.series_id = k.id AND p.ts = st.ts)
ORDER BY st.series_id, st.ts, u.key_id, st.ctid
RETURNING device_id, key_series, ts"""
# Fresh numbers of a device and timestamp with no row yet: one row (a batch's messages at one timestamp merged).
FRESH_ROWS = """
INSERT INTO telemetry_rows (tenant_id, series_id, ts, key_ids, vals)
SELECT $1, f.series_id, f.ts, array_agg(f.key_id ORDER BY f.key_id), array_agg(f.value ORDER BY f.key_id)
FROM ingest_fresh f
WHERE f.tenant_id = $1 AND NOT EXISTS (SELECT 1 FROM telemetry_rows r WHERE r.series_id = f.series_id AND r.ts = f.ts)
GROUP BY f.series_id, f.ts
ON CONFLICT DO NOTHING"""
# The others (their device's row at that timestamp holds other keys): rows of `telemetry_points` in their key's
# series. Run after FRESH_ROWS, so it sees the rows that statement added.
FRESH_POINTS = """
INSERT INTO telemetry_points (tenant_id, series_id, ts, value)
SELECT $1, f.key_series, f.ts, f.value FROM ingest_fresh f
WHERE f.tenant_id = $1 AND NOT EXISTS (SELECT 1 FROM telemetry_rows r
                                       WHERE r.series_id = f.series_id AND r.ts = f.ts AND f.key_id = ANY(r.key_ids))
ON CONFLICT DO NOTHING"""


async def move_staged(connection: asyncpg.Connection, tenant_id: UUID, rows: bytearray | None,
                      points: bytearray | None, *, layout_points: bool, check_all: bool,
                      ) -> dict[UUID, set[tuple[int, int]]] | None:
    """Move one tenant's staged rows into telemetry (the caller set `app.tenant_id`, in its transaction): `rows` is
    the tenant's stream of `COPY_TARGETS[layout_points]`, `points` (plain PostgreSQL) its readings that are not
    numbers. None when everything was inserted; else, per device, the (key series, microseconds) of the readings
    that were. `check_all`: numbers may duplicate readings of `telemetry_points` (older than the layout), so they are
    sorted out reading by reading from the start."""
    if rows is not None:
        columns = ROW_COLUMNS if layout_points else COLUMNS
        await connection.copy_to_table('ingest_rows_stage' if layout_points else 'ingest_stage', source=rows,
                                       columns=columns, format='binary')
    if points is not None:
        await connection.copy_to_table('ingest_stage', source=points, columns=POINT_COLUMNS, format='binary')
    if not (check_all and layout_points):
        try:
            async with connection.transaction():
                if rows is not None:
                    await connection.execute(INSERT_ROWS if layout_points else INSERT_POINTS[False], tenant_id)
                if points is not None:
                    await connection.execute(INSERT_POINTS[True], tenant_id)
            return None
        except asyncpg.UniqueViolationError:
            pass
    added: dict[UUID, set[tuple[int, int]]] = {}
    found = []
    if points is not None or not layout_points:
        found += await connection.fetch(MOVE_POINTS[layout_points], tenant_id)
    if rows is not None and layout_points:
        found += await connection.fetch(FRESH_READINGS, tenant_id)
        await connection.execute(FRESH_ROWS, tenant_id)
        await connection.execute(FRESH_POINTS, tenant_id)
    for device_id, series_id, ts in found:
        added.setdefault(device_id, set()).add((series_id, micros(ts)))
    return added
