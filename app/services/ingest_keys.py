"""Idempotency keys for HTTP ingest (`Idempotency-Key`): the same key and body are stored once.

A request claims its key before its data goes to the batch writer; the writer marks the key `stored` in the
same transaction as the rows, so "the rows are committed" and "the key is spent" are one fact. A repeat of a
stored key with the same body answers as the first time, without storing anything; with another body it is
refused (422). A repeat while the first is still in flight is refused (409, retry); a claim left `pending` by a
crash is taken over after `STALE_S`. Keys are kept for `KEEP_S`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from sqlalchemy import text

from app.db import Database
from app.services.errors import Conflict, InvalidInput

MAX_KEY_LENGTH = 200
STALE_S = 60
KEEP_S = 24 * 3600


class KeyInFlight(Conflict):
    title = 'Request in progress'


@dataclass(frozen=True)
class Claim:
    outcome: Literal['new', 'repeat']
    accepted: int
    points: int


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class IngestKeys:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(self, tenant_id: UUID, device_id: UUID, key: str, *, body: bytes, accepted: int,
                    points: int) -> Claim:
        if not key.strip() or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise InvalidInput(f'Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters.',
                               field='Idempotency-Key')
        digest = body_hash(body)
        async with self._db.tenant(tenant_id) as session:
            await session.execute(text("""
                DELETE FROM ingest_keys
                WHERE device_id = :device AND created_at < now() - make_interval(secs => :keep)"""),
                {'device': device_id, 'keep': KEEP_S})
            row = (await session.execute(text("""
                INSERT INTO ingest_keys AS k (tenant_id, device_id, key, body_sha256, accepted, points)
                VALUES (:tenant, :device, :key, :digest, :accepted, :points)
                ON CONFLICT (device_id, key) DO UPDATE SET
                    body_sha256 = EXCLUDED.body_sha256, accepted = EXCLUDED.accepted, points = EXCLUDED.points,
                    created_at = now()
                WHERE k.state = 'pending' AND k.created_at < now() - make_interval(secs => :stale)
                RETURNING true"""), {'tenant': tenant_id, 'device': device_id, 'key': key, 'digest': digest,
                                     'accepted': accepted, 'points': points, 'stale': STALE_S})).first()
            if row is not None:
                return Claim('new', accepted, points)
            held = (await session.execute(text("""
                SELECT body_sha256, accepted, points, state FROM ingest_keys
                WHERE device_id = :device AND key = :key"""), {'device': device_id, 'key': key})).one()
        if held[0] != digest:
            raise InvalidInput('This Idempotency-Key was already used with a different body.', field='Idempotency-Key')
        if held[3] == 'pending':
            raise KeyInFlight('A request with this Idempotency-Key is still being stored; retry shortly.',
                              field='Idempotency-Key')
        return Claim('repeat', held[1], held[2])

    async def release(self, tenant_id: UUID, device_id: UUID, key: str) -> None:
        """The data of a claimed key was not stored (the database was unavailable): the key may be used again."""
        async with self._db.tenant(tenant_id) as session:
            await session.execute(text(
                "DELETE FROM ingest_keys WHERE device_id = :device AND key = :key AND state = 'pending'"),
                {'device': device_id, 'key': key})
