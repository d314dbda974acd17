"""A prepared batch's readings as binary COPY rows per tenant, key names resolved to the tenant's key ids.

The columns of a row that repeat (tenant, device, key) are encoded once per series and cached. Latest values are
updated in the same pass (once per batch: it will commit, however many tries it takes).
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from app.ingest.batch_items import Prepared
from app.ingest.copy_rows import HEADER, NUMBER, TRAILER, micros, other_tail, series_prefix
from app.ingest.latest import LatestBuffer
from app.ingest.payload import Message


class RowEncoder:
    def __init__(self, latest: LatestBuffer, keys: dict[tuple[UUID, str], int]) -> None:
        self.latest = latest
        self.keys = keys  # (tenant, key name) → key id, filled by `add_keys`
        self._prefixes: dict[UUID, dict[str, bytes]] = {}  # per device, key name → its rows' first columns

    async def encode(self, connection: asyncpg.Connection, prepared: Prepared) -> None:
        """Every accepted reading as a binary COPY row; latest values updated (once: the batch will commit)."""
        missing = self._encode(prepared)
        if missing:  # keys a tenant never sent before: add them, then encode again
            for tenant_id, names in missing.items():
                await self.add_keys(connection, tenant_id, sorted(names))
            missing = self._encode(prepared)
            assert not missing

    def encode_known(self, prepared: Prepared) -> bool:
        """`encode` without the database, when every key is known already; False leaves it to `encode` (latest
        values may then be updated twice: the newest timestamp wins, so that changes nothing)."""
        return not self._encode(prepared)

    def _encode(self, prepared: Prepared) -> dict[UUID, set[str]]:
        """`prepared.copies` set when every key is known; else left as it was, and the unknown names per tenant."""
        copies: dict[UUID, bytearray] = {}
        missing: dict[UUID, set[str]] = {}
        for tenant_id, entries in prepared.messages.items():
            encoded = self._encode_tenant(tenant_id, entries)
            if isinstance(encoded, set):
                missing[tenant_id] = encoded
            else:
                copies[tenant_id] = encoded
        if not missing:
            prepared.copies = copies
        return missing

    def _encode_tenant(self, tenant_id: UUID, entries: list[tuple[UUID, Message]]) -> bytearray | set[str]:
        out = bytearray(HEADER)
        number = NUMBER.pack  # called here rather than through `number_tail`: once per reading, a tenth of encoding
        prefixes = self._prefixes
        keys = self.keys
        missing: set[str] = set()
        for device_id, message in entries:
            device_prefixes = prefixes.get(device_id)
            if device_prefixes is None:
                device_prefixes = prefixes[device_id] = {}
            latest = self.latest.for_device(tenant_id, device_id)
            ts = message.ts
            ts_us = micros(ts)
            for key, value in message.readings:
                prefix = device_prefixes.get(key)
                if prefix is None:
                    key_id = keys.get((tenant_id, key))
                    if key_id is None:
                        missing.add(key)
                        continue
                    prefix = device_prefixes[key] = series_prefix(tenant_id, device_id, key_id)
                out += prefix
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
        return out


    async def add_keys(self, connection: asyncpg.Connection, tenant_id: UUID, names: list[str]) -> None:
        """Add key names to the tenant's key dictionary (a transaction of its own: keys are never taken back)."""
        async with connection.transaction():
            await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
            await connection.execute(
                'INSERT INTO telemetry_keys (tenant_id, name) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING',
                tenant_id, names)
            for record in await connection.fetch(
                'SELECT id, name FROM telemetry_keys WHERE tenant_id = $1 AND name = ANY($2::text[])', tenant_id, names,
            ):
                self.keys[(tenant_id, record['name'])] = record['id']
