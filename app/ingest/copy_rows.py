"""Telemetry rows in PostgreSQL's binary COPY format, built directly.

The columns of a row that repeat (tenant, series) are encoded once per series and cached; each reading
then costs one `struct.pack` for its timestamp and number. That is several times cheaper than building a
Python row and having the driver encode it, and the batch writer does it for every reading it stores.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from uuid import UUID

import orjson

HEADER = b'PGCOPY\n\xff\r\n\x00' + b'\x00\x00\x00\x00' + b'\x00\x00\x00\x00'
TRAILER = b'\xff\xff'
EMPTY = len(HEADER) + len(TRAILER)  # a COPY stream of no rows
COLUMNS = ('tenant_id', 'device_id', 'key_id', 'ts', 'value', 'text_value', 'bool_value', 'json_value')
POINT_COLUMNS = ('tenant_id', 'series_id', 'ts', 'value', 'text_value', 'bool_value', 'json_value')  # as encoded
ROW_COLUMNS = ('tenant_id', 'series_id', 'key_ids', 'ts', 'vals')  # `telemetry_rows` as encoded: a message's numbers


def stage_table(name: str) -> str:
    """DDL of a per-connection staging table with the telemetry columns, emptied at each commit."""
    return f"""
CREATE TEMP TABLE IF NOT EXISTS {name} (
    tenant_id uuid, device_id uuid, key_id integer, ts timestamptz,
    value double precision, text_value text, bool_value boolean, json_value jsonb
) ON COMMIT DELETE ROWS"""


def point_stage_table(name: str) -> str:
    """The same for encoded rows (`POINT_COLUMNS`)."""
    return f"""
CREATE TEMP TABLE IF NOT EXISTS {name} (
    tenant_id uuid, series_id integer, ts timestamptz,
    value double precision, text_value text, bool_value boolean, json_value jsonb
) ON COMMIT DELETE ROWS"""

def row_stage_table(name: str) -> str:
    """The same for a message's numbers (`ROW_COLUMNS`)."""
    return f"""
CREATE TEMP TABLE IF NOT EXISTS {name} (
    tenant_id uuid, series_id integer, key_ids integer[], ts timestamptz, vals double precision[]
) ON COMMIT DELETE ROWS"""


PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # PostgreSQL's epoch
MICROSECOND = timedelta(microseconds=1)
NULL = b'\xff\xff\xff\xff'
_SERIES = struct.Struct('>hi16sii')
_DEVICE = struct.Struct('>hi16si16s')
_KEY = struct.Struct('>ii')
NUMBER = struct.Struct('>iqidiii')  # ts, value, then text, bool and json NULL: (8, ts_us, 8, value, -1, -1, -1)
_TS = struct.Struct('>iq')
_ROW = struct.Struct('>hi16sii')  # column count, tenant, device series
_KEY_ID = struct.Struct('>ii')
_ARRAY = struct.Struct('>iiiiii')  # byte length, dimensions, has nulls, element type, length, lower bound
INT4_OID = 23
FLOAT8_OID = 701
_ROW_TAILS: dict[int, RowTail] = {}
_LENGTH = struct.Struct('>i')


def joined(copies: Collection[bytearray]) -> bytearray:
    """Several COPY streams (each with its header and trailer) as one; a single one as it is, uncopied."""
    if len(copies) == 1:
        return next(iter(copies))
    out = bytearray(HEADER)
    for rows in copies:
        out += memoryview(rows)[len(HEADER):len(rows) - len(TRAILER)]
    out += TRAILER
    return out


def series_prefix(tenant_id: UUID, series_id: int) -> bytes:
    """The first two columns of every row of one series (and the column count)."""
    return _SERIES.pack(7, 16, tenant_id.bytes, 4, series_id)


def reading_prefix(tenant_id: UUID, device_id: UUID, key_id: int) -> bytes:
    """The first three `COLUMNS` of every row of one series (TimescaleDB's hypertable has no series id)."""
    return device_columns(tenant_id, device_id) + key_column(key_id)


def device_columns(tenant_id: UUID, device_id: UUID) -> bytes:
    """The column count, tenant and device: `COLUMNS` up to the key."""
    return _DEVICE.pack(8, 16, tenant_id.bytes, 16, device_id.bytes)


def key_column(key_id: int) -> bytes:
    """The key id, `COLUMNS` after the device."""
    return _KEY.pack(4, key_id)


def micros(ts: datetime) -> int:
    """Microseconds since PostgreSQL's epoch."""
    return (ts - PG_EPOCH) // MICROSECOND  # exact, and half the time of a float `timestamp()` of an aware ts


def number_tail(ts_us: int, value: float) -> bytes:
    return NUMBER.pack(8, ts_us, 8, value, -1, -1, -1)


def other_tail(ts_us: int, value: Any) -> bytes:
    """The last five columns for a text, boolean or JSON value."""
    out = _TS.pack(8, ts_us) + NULL
    if isinstance(value, bool):
        return out + NULL + b'\x00\x00\x00\x01' + (b'\x01' if value else b'\x00') + NULL
    if isinstance(value, str):
        data = value.encode()
        return out + _LENGTH.pack(len(data)) + data + NULL + NULL
    data = b'\x01' + orjson.dumps(value)  # jsonb's binary form: a version byte, then the text
    return out + NULL + NULL + _LENGTH.pack(len(data)) + data


def row_prefix(tenant_id: UUID, device_series: int, key_ids: list[int]) -> bytes:
    """The first three `ROW_COLUMNS` of a message's row: tenant, the device's series, its keys as `integer[]`."""
    n = len(key_ids)
    keys = b''.join(_KEY_ID.pack(4, key_id) for key_id in key_ids)
    return _ROW.pack(5, 16, tenant_id.bytes, 4, device_series) + _ARRAY.pack(20 + 8 * n, 1, 0, INT4_OID, n, 1) + keys


class RowTail(NamedTuple):
    """The last two `ROW_COLUMNS` of a row of `n` numbers: `pack(8, ts_us, 20 + 12 * n, 1, 0, FLOAT8_OID, n, 1,
    8, value, 8, value, …)`, and those arguments with zeros for the timestamp (at 1) and the values (at 9::2), to be
    copied and filled in."""

    pack: Callable[..., bytes]
    arguments: list[Any]


def row_tail(n: int) -> RowTail:
    found = _ROW_TAILS.get(n)
    if found is None:
        found = _ROW_TAILS[n] = RowTail(struct.Struct('>iq' + 'iiiiii' + 'id' * n).pack,
                                        [8, 0, 20 + 12 * n, 1, 0, FLOAT8_OID, n, 1] + [8, 0.0] * n)
    return found
