"""Raw-archive rows (every inbound payload as received) in PostgreSQL's binary COPY format.

Archived in the same transaction as the batch's telemetry, so the archive holds exactly what was committed
(and acknowledged); like telemetry, through a per-connection staging table, because COPY cannot write into a
table with row-level security.
"""

from __future__ import annotations

import struct
from uuid import UUID

from app.ingest.batch_items import Item, Rejection
from app.ingest.copy_rows import HEADER, NULL, TRAILER, micros

RAW_COLUMNS = ('tenant_id', 'device_id', 'received_at', 'transport', 'kind', 'accepted', 'reason', 'payload')
CREATE_RAW_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS raw_stage (
    tenant_id uuid, device_id uuid, received_at timestamptz, transport text, kind text, accepted boolean,
    reason text, payload bytea
) ON COMMIT DELETE ROWS"""
INSERT_RAW = f"""
INSERT INTO raw_messages ({', '.join(RAW_COLUMNS)})
SELECT {', '.join(RAW_COLUMNS)} FROM raw_stage WHERE tenant_id = $1"""

_IDS = struct.Struct('>hi16si16siq')  # column count, tenant, device, received_at
_LENGTH = struct.Struct('>i')
_TRUE = b'\x00\x00\x00\x01\x01'
_FALSE = b'\x00\x00\x00\x01\x00'


def _text(value: str | bytes | None) -> bytes:
    if value is None:
        return NULL
    data = value.encode() if isinstance(value, str) else value
    return _LENGTH.pack(len(data)) + data


def raw_row(item: Item) -> bytes:
    """One archive row of an item that carries its payload."""
    assert item.payload is not None
    if isinstance(item, Rejection):
        at, kind, accepted, reason = item.at, 'telemetry', _FALSE, item.reason
    else:
        at, kind, accepted, reason = item.received_at, 'telemetry' if item.messages else 'status', _TRUE, None
    return b''.join((
        _IDS.pack(len(RAW_COLUMNS), 16, item.tenant_id.bytes, 16, item.device_id.bytes, 8, micros(at)),
        _text(item.transport), _text(kind), accepted, _text(reason), _text(item.payload),
    ))


def archive_rows(items: list[Item], archiving: frozenset[UUID]) -> tuple[dict[UUID, bytearray], int]:
    """Per tenant that keeps an archive, its items' payloads as one COPY body; and how many payloads."""
    copies: dict[UUID, bytearray] = {}
    count = 0
    if not archiving:
        return copies, count
    for item in items:
        if item.payload is None or item.tenant_id not in archiving:
            continue
        out = copies.get(item.tenant_id)
        if out is None:
            out = copies[item.tenant_id] = bytearray(HEADER)
        out += raw_row(item)
        count += 1
    for out in copies.values():
        out += TRAILER
    return copies, count
