"""Telemetry rows in PostgreSQL's binary COPY format, built directly.

The columns of a row that repeat (tenant, series) are encoded once per series and cached; each reading
then costs one `struct.pack` for its timestamp and number. That is several times cheaper than building a
Python row and having the driver encode it, and the batch writer does it for every reading it stores.
"""

from __future__ import annotations

import struct
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson

HEADER = b'PGCOPY\n\xff\r\n\x00' + b'\x00\x00\x00\x00' + b'\x00\x00\x00\x00'
TRAILER = b'\xff\xff'
COLUMNS = ('tenant_id', 'device_id', 'key_id', 'ts', 'value', 'text_value', 'bool_value', 'json_value')
POINT_COLUMNS = ('tenant_id', 'series_id', 'ts', 'value', 'text_value', 'bool_value', 'json_value')  # as encoded


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

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # PostgreSQL's epoch
MICROSECOND = timedelta(microseconds=1)
NULL = b'\xff\xff\xff\xff'
_SERIES = struct.Struct('>hi16sii')
_DEVICE = struct.Struct('>hi16si16s')
_KEY = struct.Struct('>ii')
NUMBER = struct.Struct('>iqidiii')  # ts, value, then text, bool and json NULL: (8, ts_us, 8, value, -1, -1, -1)
_TS = struct.Struct('>iq')
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
