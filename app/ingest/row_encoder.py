"""A prepared batch's readings as binary COPY rows per tenant, (device, key name) resolved to series ids.

A series (`telemetry_series`) is a tenant's device and key, numbered once, and each device has one of its own
(`DEVICE_KEY`). On plain PostgreSQL a message's numbers are one row of `telemetry_rows` in the device's series (key
ids and values as arrays) and its other readings rows of `telemetry_points` in their key's series; with TimescaleDB
every reading is a row of its hypertable. The columns of a row that repeat (tenant, series, a device's number keys)
are encoded once and cached. Latest values are updated in the same pass (once per batch: it will commit, however many
tries it takes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg

from app.ingest.batch_items import Prepared
from app.ingest.copy_rows import (
    EMPTY,
    HEADER,
    MICROSECOND,
    NUMBER,
    PG_EPOCH,
    TRAILER,
    other_tail,
    reading_prefix,
    row_prefix,
    row_tail,
    series_prefix,
)
from app.ingest.latest import LatestBuffer
from app.ingest.payload import Message
from app.services.storage.native_sql import DEVICE_KEY

log = logging.getLogger(__name__)

# Keys are numbered only for a tenant, and series only for a device, that still exists (locked until the numbering
# commits): a tenant deleted after its messages were taken in would fail the keys' insert, and the batch with it at
# every retry; a deleted device would be left a series of no device.
ADD_SERIES = """
INSERT INTO telemetry_series (tenant_id, device_id, key_id)
SELECT $1, device_id, key_id FROM unnest($2::uuid[], $3::integer[]) AS wanted(device_id, key_id)
WHERE EXISTS (SELECT 1 FROM devices d WHERE d.id = wanted.device_id AND d.tenant_id = $1 FOR KEY SHARE)
ORDER BY 2, 3
ON CONFLICT DO NOTHING"""  # in one order: two writers (scale-out) adding the same series cannot deadlock
ADD_KEYS = """
INSERT INTO telemetry_keys (tenant_id, name) SELECT $1, unnest($2::text[])
WHERE EXISTS (SELECT 1 FROM tenants WHERE id = $1 FOR KEY SHARE)
ON CONFLICT DO NOTHING"""
FIND_SERIES = """
SELECT s.id, s.device_id, s.key_id FROM telemetry_series s
JOIN unnest($2::uuid[], $3::integer[]) AS wanted(device_id, key_id)
  ON s.device_id = wanted.device_id AND s.key_id = wanted.key_id
WHERE s.tenant_id = $1"""


# A device's row starts kept, one per set of number keys it sends: enough for one that alternates a few payloads
# (a battery level every tenth message), and a bound on memory for one whose keys keep changing.
KEY_SETS_PER_DEVICE = 4


class RowStart(NamedTuple):
    """A device's rows of numbers with one set of number keys (in their order): the encoded columns before the
    timestamp, and the rest's `struct` pack with its arguments (timestamp at 1, values at 9::2; shared by every
    start with as many numbers: copied, then filled in)."""

    prefix: bytes
    pack: Callable[..., bytes]
    columns: list[Any]


class RowEncoder:
    def __init__(self, latest: LatestBuffer, keys: dict[tuple[UUID, str], int]) -> None:
        self.latest = latest
        self.keys = keys  # (tenant, key name) → key id, filled by `add_keys`
        self._series: dict[UUID, dict[str, tuple[int, bytes]]] = {}  # per device, key → series id, rows' first columns
        self._device_series: dict[UUID, int] = {}  # per device, its own series (`DEVICE_KEY`): rows of its numbers
        # per device, how its numbers are encoded, by key set (a device may alternate between a few payloads)
        self._rows: dict[UUID, dict[tuple[str, ...], RowStart]] = {}
        # plain PostgreSQL: rows for `telemetry_rows` (ROW_COLUMNS) and `telemetry_points` (POINT_COLUMNS); else rows
        # for TimescaleDB's hypertable (COLUMNS)
        self._points = True

    def use_layout(self, *, points: bool) -> None:
        """The layout the rows are for (the writer's connection finds it); forgets rows' prefixes of the other."""
        if points != self._points:
            self._points = points
            self._series.clear()
            self._rows.clear()

    def forget(self, device_id: UUID) -> None:
        """A deleted device's series (deleted with it): a message of it still in flight then finds none."""
        self._series.pop(device_id, None)
        self._device_series.pop(device_id, None)
        self._rows.pop(device_id, None)
        self.latest.touched.pop(device_id, None)

    def series_id(self, device_id: UUID, key: str) -> int:
        """The series of a reading this encoder has encoded."""
        return self._series[device_id][key][0]

    async def encode(self, connection: asyncpg.Connection, prepared: Prepared) -> None:
        """Every accepted reading as a binary COPY row; latest values updated (once: the batch will commit)."""
        missing = self._encode(prepared)
        if missing:  # series not seen since start (or new): look them up or add them, then encode again
            for tenant_id, series in missing.items():
                await self.add_series(connection, tenant_id, series)
            missing = self._encode(prepared)
        if missing:  # still unnumbered: the device (or its tenant) was deleted after its messages were taken in
            for tenant_id, series in missing.items():
                devices = {device_id for device_id, _ in series}
                dropped = prepared.drop_devices(tenant_id, devices)
                log.warning('messages of deleted devices dropped', extra={
                    'tenant_id': str(tenant_id), 'devices': len(devices), 'messages': dropped})
            missing = self._encode(prepared)
            assert not missing

    def encode_known(self, prepared: Prepared) -> bool:
        """`encode` without the database, when every key is known already; False leaves it to `encode` (latest
        values may then be updated twice: the newest timestamp wins, so that changes nothing)."""
        return not self._encode(prepared)

    def _encode(self, prepared: Prepared) -> dict[UUID, set[tuple[UUID, str]]]:
        """`prepared.copies` set when every series is known; else left as it was, and the unknown ones per tenant."""
        copies: dict[UUID, bytearray] = {}
        point_copies: dict[UUID, bytearray] = {}
        missing: dict[UUID, set[tuple[UUID, str]]] = {}
        for tenant_id, entries in prepared.messages.items():
            encoded = self._encode_tenant(tenant_id, entries, prepared.number)
            if isinstance(encoded, set):
                missing[tenant_id] = encoded
                continue
            copies[tenant_id], others = encoded
            if len(others) > EMPTY:
                point_copies[tenant_id] = others
        if not missing:
            prepared.copies = copies
            prepared.point_copies = point_copies
        return missing

    def _encode_tenant(self, tenant_id: UUID, entries: list[tuple[UUID, Message]], batch: int
                       ) -> tuple[bytearray, bytearray] | set[tuple[UUID, str]]:
        """The tenant's rows: on plain PostgreSQL a row of `telemetry_rows` per message with numbers and a row of
        `telemetry_points` per other reading; with TimescaleDB a row of its hypertable per reading, all in the
        first stream."""
        out = bytearray(HEADER)
        others = bytearray(HEADER)
        number = NUMBER.pack  # called here rather than through `number_tail`: once per reading, a tenth of encoding
        known = self._series
        rows = self._rows if self._points else None
        devices = self._device_series
        missing: set[tuple[UUID, str]] = set()
        touched = self.latest.touched
        for device_id, message in entries:
            touched[device_id] = batch
            device_series = known.get(device_id)
            if device_series is None:
                device_series = known[device_id] = {}
            latest = self.latest.for_device(tenant_id, device_id)
            ts = message.ts
            ts_us = (ts - PG_EPOCH) // MICROSECOND  # `micros`, inline: once per message
            readings = message.readings
            if rows is not None:
                starts = rows.get(device_id)
                row = starts.get(tuple(readings)) if starts is not None else None
                if row is not None:  # keys this device has sent before, all of them numbers then
                    values = list(readings.values())
                    for value in values:
                        kind = type(value)
                        if kind is not float and kind is not int:
                            break
                    else:
                        columns = row.columns.copy()
                        columns[1] = ts_us
                        columns[9::2] = values
                        out += row.prefix
                        out += row.pack(*columns)
                        for key, value in readings.items():
                            held = latest.get(key)
                            if held is None or held[0] < ts:
                                latest[key] = (ts, value)
                        continue
                numbers: list[Any] = []
                number_keys = []
                for key, value in readings.items():
                    kind = type(value)
                    if kind is float or kind is int:
                        numbers.append(value)
                        number_keys.append(key)
                    elif key in device_series:
                        others += device_series[key][1]
                        others += other_tail(ts_us, value)
                        held = latest.get(key)
                        if held is None or held[0] < ts:
                            latest[key] = (ts, value)
                    else:
                        missing.add((device_id, key))
                if not numbers:
                    continue
                keys = tuple(number_keys)
                row = starts.get(keys) if starts is not None else None
                if row is None:
                    row = self._row_start(tenant_id, device_id, keys, devices, device_series, missing)
                    if row is None:
                        continue
                columns = row.columns.copy()
                columns[1] = ts_us
                columns[9::2] = numbers
                out += row.prefix
                out += row.pack(*columns)
                for key in keys:
                    held = latest.get(key)
                    if held is None or held[0] < ts:
                        latest[key] = (ts, readings[key])
                continue
            for key, value in readings.items():
                series = device_series.get(key)
                if series is None:
                    missing.add((device_id, key))
                    continue
                out += series[1]
                kind = type(value)
                if kind is float or kind is int:
                    out += number(8, ts_us, 8, value, -1, -1, -1)
                else:
                    out += other_tail(ts_us, value)
                held = latest.get(key)
                if held is None or held[0] < ts:  # at an equal timestamp the first is stored, later ones are duplicates
                    latest[key] = (ts, value)
        if missing:
            return missing
        out += TRAILER
        others += TRAILER
        return out, others

    def _row_start(self, tenant_id: UUID, device_id: UUID, keys: tuple[str, ...], devices: dict[UUID, int],
                   device_series: dict[str, tuple[int, bytes]], missing: set[tuple[UUID, str]]) -> RowStart | None:
        """How a device's rows with these number keys are encoded (cached while they stay the same), or None with
        what is not numbered yet added to `missing` (every key has a series of its own too: `telemetry_pages` and
        duplicates at the same timestamp use it)."""
        absent = [(device_id, key) for key in keys if key not in device_series]
        series = devices.get(device_id)
        if series is None:  # the device's own series is numbered with its keys' (`add_series`)
            absent = [(device_id, key) for key in keys]
        if absent:
            missing.update(absent)
            return None
        assert series is not None
        tail = row_tail(len(keys))
        row = RowStart(row_prefix(tenant_id, series, [self.keys[(tenant_id, key)] for key in keys]), tail.pack,
                       tail.arguments)
        starts = self._rows.get(device_id)
        if starts is None or len(starts) >= KEY_SETS_PER_DEVICE:  # a device whose keys keep changing: start over
            starts = self._rows[device_id] = {}
        starts[keys] = row
        return row

    async def add_series(self, connection: asyncpg.Connection, tenant_id: UUID,
                         series: set[tuple[UUID, str]]) -> None:
        """Look up (or number) a tenant's series: a transaction of its own, series are never renumbered."""
        names = sorted({key for _, key in series if (tenant_id, key) not in self.keys})
        if names:
            await self.add_keys(connection, tenant_id, names)
        series = {(device_id, key) for device_id, key in series if (tenant_id, key) in self.keys}  # tenant gone: none
        if not series:
            return
        devices = [device_id for device_id, _ in series]
        key_ids = [self.keys[(tenant_id, key)] for _, key in series]
        if self._points:  # and each device's own series, of its rows
            owners = sorted(set(devices))
            devices += owners
            key_ids += [DEVICE_KEY] * len(owners)
        async with connection.transaction():
            await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
            await connection.execute(ADD_SERIES, tenant_id, devices, key_ids)
            names_by_id = {self.keys[(tenant_id, key)]: key for _, key in series}
            for series_id, device_id, key_id in await connection.fetch(FIND_SERIES, tenant_id, devices, key_ids):
                if key_id == DEVICE_KEY:
                    self._device_series[device_id] = series_id
                    continue
                prefix = (series_prefix(tenant_id, series_id) if self._points
                          else reading_prefix(tenant_id, device_id, key_id))
                self._series.setdefault(device_id, {})[names_by_id[key_id]] = (series_id, prefix)

    async def add_keys(self, connection: asyncpg.Connection, tenant_id: UUID, names: list[str]) -> None:
        """Add key names to the tenant's key dictionary (a transaction of its own: keys are never taken back)."""
        async with connection.transaction():
            await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
            await connection.execute(ADD_KEYS, tenant_id, names)
            for record in await connection.fetch(
                'SELECT id, name FROM telemetry_keys WHERE tenant_id = $1 AND name = ANY($2::text[])', tenant_id, names,
            ):
                self.keys[(tenant_id, record['name'])] = record['id']
