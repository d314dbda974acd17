"""Latest values, collapsed in memory and upserted less often than telemetry is written.

Upserting every (device, key) of every batch caps PostgreSQL at ~80k rows/s on this class of machine; most of
those upserts are overwritten a moment later. So the writer keeps the newest reading per (device, key) here
(newest timestamp wins, not newest arrival) and writes them in the same transaction as a batch when the queue
is idle (so under light load latest values commit with their rows) or, under load, every `interval_s` (longer
when a flush itself is slow) in a transaction of its own on a second connection, taken between two batches, so
that no batch waits for it (see `state_flush.py`).

Telemetry rows are the source of truth; `latest_values` is derived. A crash can lose at most the last interval
of latest-value updates, never a reading: `recover_latest` recomputes, at start, the latest values of every
device seen in the recovery window from the telemetry table (one index lookup per device and key).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import text

from app.db import Database
from app.ingest.copy_rows import (
    COLUMNS,
    HEADER,
    NUMBER,
    TRAILER,
    device_columns,
    key_column,
    micros,
    other_tail,
    stage_table,
)
from app.ingest.quality import SeqState
from app.services.storage.layout import points_in_use
from app.services.storage.native_sql import DEVICE_KEY

CREATE_LATEST_STAGE = stage_table('latest_stage')
NEWER_WINS = """
ON CONFLICT (device_id, key_id) DO UPDATE SET
    ts = EXCLUDED.ts, value = EXCLUDED.value, text_value = EXCLUDED.text_value,
    bool_value = EXCLUDED.bool_value, json_value = EXCLUDED.json_value
WHERE latest_values.ts < EXCLUDED.ts"""  # an equal timestamp is a duplicate: the first one stays
# Only devices that still exist: one deleted after its message was taken in would fail the whole flush (and, inline,
# the batch with it, again at every retry). Locked, so that none is deleted before this commits.
UPSERT_LATEST = """
INSERT INTO latest_values (tenant_id, device_id, key_id, ts, value, text_value, bool_value, json_value)
SELECT s.tenant_id, s.device_id, s.key_id, s.ts, s.value, s.text_value, s.bool_value, s.json_value
FROM latest_stage s
WHERE s.tenant_id = $1 AND EXISTS (SELECT 1 FROM devices d WHERE d.id = s.device_id FOR KEY SHARE)""" + NEWER_WINS
# Per series, its newest row (the last index entry of the series; see app/services/storage/layout.py); on plain
# PostgreSQL the newer of its newest row in `telemetry_points` and the device's newest row of numbers holding the key,
# looked for only past the stored latest value (a key the device stopped sending is not searched for back in time).
RECOVER_LATEST = {
    True: f"""
INSERT INTO latest_values (tenant_id, device_id, key_id, ts, value, text_value, bool_value, json_value)
SELECT DISTINCT ON (s.device_id, s.key_id)
       s.tenant_id, s.device_id, s.key_id, t.ts, t.value, t.text_value, t.bool_value, t.json_value
FROM devices d
JOIN telemetry_series s ON s.tenant_id = d.tenant_id AND s.device_id = d.id AND s.key_id <> {DEVICE_KEY}
LEFT JOIN telemetry_series ds ON ds.tenant_id = d.tenant_id AND ds.device_id = d.id AND ds.key_id = {DEVICE_KEY}
LEFT JOIN latest_values l ON l.device_id = d.id AND l.key_id = s.key_id
CROSS JOIN LATERAL (
    (SELECT p.ts, p.value, p.text_value, p.bool_value, p.json_value FROM telemetry_points p
     WHERE p.series_id = s.id ORDER BY p.ts DESC LIMIT 1)
    UNION ALL
    (SELECT r.ts, r.vals[array_position(r.key_ids, s.key_id)], NULL, NULL, NULL FROM telemetry_rows r
     WHERE r.series_id = ds.id AND r.ts > coalesce(l.ts, '-infinity') AND s.key_id = ANY(r.key_ids)
     ORDER BY r.ts DESC LIMIT 1)
) t
WHERE d.last_seen > now() - make_interval(secs => :window)
ORDER BY s.device_id, s.key_id, t.ts DESC""" + NEWER_WINS,
    False: """
INSERT INTO latest_values (tenant_id, device_id, key_id, ts, value, text_value, bool_value, json_value)
SELECT t.tenant_id, t.device_id, t.key_id, t.ts, t.value, t.text_value, t.bool_value, t.json_value
FROM devices d
JOIN telemetry_keys k ON k.tenant_id = d.tenant_id
CROSS JOIN LATERAL (
    SELECT * FROM telemetry t
    WHERE t.tenant_id = d.tenant_id AND t.device_id = d.id AND t.key_id = k.id
    ORDER BY t.ts DESC LIMIT 1
) t
WHERE d.last_seen > now() - make_interval(secs => :window)""" + NEWER_WINS,
}


def _held(values: dict[UUID, dict[str, tuple[datetime, Any]]], tenants: dict[UUID, UUID], tenant_id: UUID,
          device_id: UUID) -> dict[str, tuple[datetime, Any]]:
    """A device's values, if the device is the tenant's (else none: a reader never sees another tenant's)."""
    return values.get(device_id, {}) if tenants.get(device_id) == tenant_id else {}


@dataclass
class LatestSnapshot:
    """Latest values taken out of the buffer to be written: per device, key name → (ts, value); device → tenant."""

    values: dict[UUID, dict[str, tuple[datetime, Any]]]
    tenants: dict[UUID, UUID]

    def __len__(self) -> int:
        return len(self.values)

    def held(self, tenant_id: UUID, device_id: UUID) -> dict[str, tuple[datetime, Any]]:
        return _held(self.values, self.tenants, tenant_id, device_id)


class LatestBuffer:
    """Newest reading per (device, key) not yet written to `latest_values`: per device, key name → (ts, value)."""

    def __init__(self, *, interval_s: float = 1.0) -> None:
        self.interval_s = interval_s
        self._pending: dict[UUID, dict[str, tuple[datetime, Any]]] = {}
        self._tenants: dict[UUID, UUID] = {}
        self._last_flush = time.monotonic()
        self._write_s = 0.0
        self.flushes = 0
        # device → the batch that last updated its values: readers must not see a batch's values before it commits
        self.touched: dict[UUID, int] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def held(self, tenant_id: UUID, device_id: UUID) -> dict[str, tuple[datetime, Any]]:
        """The device's pending values, if it is the tenant's (read only)."""
        return _held(self._pending, self._tenants, tenant_id, device_id)

    def for_device(self, tenant_id: UUID, device_id: UUID) -> dict[str, tuple[datetime, Any]]:
        """The device's pending values, for the writer to update in place (newest timestamp wins)."""
        values = self._pending.get(device_id)
        if values is None:
            values = self._pending[device_id] = {}
            self._tenants[device_id] = tenant_id
        return values

    def interval_elapsed(self) -> bool:
        """At least `interval_s`, and long enough that flushing takes at most a tenth of the writer's time."""
        return time.monotonic() - self._last_flush >= max(self.interval_s, 9 * self._write_s)

    def take(self) -> LatestSnapshot:
        """Everything pending, to be written; the buffer starts empty (see `restore` if the write fails)."""
        snapshot = LatestSnapshot(self._pending, self._tenants)
        self._pending, self._tenants = {}, {}
        return snapshot

    def restore(self, snapshot: LatestSnapshot) -> None:
        """Put back what could not be written, under what arrived since (newest timestamp still wins)."""
        for device_id, values in snapshot.values.items():
            current = self.for_device(snapshot.tenants[device_id], device_id)
            for key, held in values.items():
                newer = current.get(key)
                if newer is None or newer[0] < held[0]:
                    current[key] = held

    def written(self, seconds: float) -> None:
        self._last_flush = time.monotonic()
        self._write_s = seconds
        self.flushes += 1


async def write_latest(connection: asyncpg.Connection, snapshot: LatestSnapshot,
                       key_ids: dict[tuple[UUID, str], int]) -> int:
    """Upsert a snapshot inside the caller's transaction, per tenant (row-level security checks each)."""
    await connection.execute(CREATE_LATEST_STAGE)
    rows, count = latest_rows(snapshot, key_ids)
    await connection.copy_to_table('latest_stage', source=rows, columns=COLUMNS, format='binary')
    for tenant_id in set(snapshot.tenants.values()):
        await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
        await connection.execute(UPSERT_LATEST, tenant_id)
    return count


def latest_rows(snapshot: LatestSnapshot, key_ids: dict[tuple[UUID, str], int]) -> tuple[bytearray, int]:
    """The snapshot as binary COPY rows (`COLUMNS`), built directly as telemetry rows are (`copy_rows.py`): a
    Python record per value for the driver to encode was most of a flush's time in the event loop. A device's
    columns are encoded once for all of its keys, and its timestamp once while its keys share it (they do when
    they came in one message)."""
    out = bytearray(HEADER)
    number = NUMBER.pack
    count = 0
    tenants = snapshot.tenants
    key_columns: dict[UUID, dict[str, bytes]] = {}  # per tenant, key name → its column, encoded
    for device_id, values in snapshot.values.items():
        tenant_id = tenants[device_id]
        device = device_columns(tenant_id, device_id)
        keys = key_columns.get(tenant_id)
        if keys is None:
            keys = key_columns[tenant_id] = {}
        last_ts, ts_us = None, 0
        for key, (ts, value) in values.items():
            column = keys.get(key)
            if column is None:
                column = keys[key] = key_column(key_ids[(tenant_id, key)])
            if ts is not last_ts:
                last_ts, ts_us = ts, micros(ts)
            out += device
            out += column
            kind = type(value)
            if kind is float or kind is int:
                out += number(8, ts_us, 8, value, -1, -1, -1)
            else:
                out += other_tail(ts_us, value)
        count += len(values)
    out += TRAILER
    return out, count


async def recover_latest(db: Database, *, window_s: int = 86_400) -> None:
    """Recompute latest values of the devices seen within `window_s` from their telemetry (cross-tenant)."""
    async with db.system() as session:
        await session.execute(text(RECOVER_LATEST[await points_in_use(session)]), {'window': window_s})


async def load_sequences(db: Database) -> dict[UUID, SeqState]:
    """The highest `seq` and open gaps of every device that sent one, as the last flush wrote them (cross-tenant).
    The duplicate window starts with only the highest number taken."""
    async with db.system() as session:
        rows = await session.execute(text(
            'SELECT id, last_seq, seq_gaps FROM devices WHERE last_seq IS NOT NULL'))
        return {row[0]: SeqState(highest=row[1], seen=1, gaps=[list(gap) for gap in row[2]]) for row in rows}
