"""What the batch writer takes (an `Inbound` message or a `Rejection` to count) and what it keeps per batch."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from uuid import UUID

from app.models.telemetry import Message

Acknowledge = Callable[[list[bytes]], None]
Transport = Literal['mqtt', 'http', 'replay']


@dataclass(slots=True)
class Inbound:
    """What one device sent in one MQTT message or HTTP request. No messages: a sign of life only."""

    tenant_id: UUID
    device_id: UUID
    messages: list[Message]
    received_at: datetime
    done: asyncio.Future[None] | None = None
    # (acknowledge, id): once the batch holding it is committed, `acknowledge` is called with the ids of all of its
    # messages that share it (MQTT PUBACKs in one write); b'' for messages that need no PUBACK (QoS 0)
    ack: tuple[Acknowledge, bytes] | None = None
    idempotency_key: str | None = None  # HTTP ingest: marked stored in the same transaction as the rows
    payload: bytes | None = None  # as received; archived if the tenant keeps a raw archive (None: never)
    transport: Transport = 'mqtt'

    @property
    def replayed(self) -> bool:
        """From the raw archive: not counted as received again, and its `seq` not tracked (it is old)."""
        return self.transport == 'replay'


@dataclass(frozen=True)
class Rejection:
    tenant_id: UUID
    device_id: UUID
    reason: str
    excerpt: str
    at: datetime
    ack: tuple[Acknowledge, bytes] | None = None
    payload: bytes | None = None
    transport: Transport = 'mqtt'


Item = Inbound | Rejection


def rows_in(item: Item) -> int:
    """Its weight in the writer's queue: telemetry rows (at least one)."""
    if isinstance(item, Rejection):
        return 1
    messages = item.messages
    if len(messages) == 1:  # nearly always: one MQTT message, one JSON object
        return len(messages[0].readings) or 1
    return max(1, sum(len(message.readings) for message in messages))


@dataclass
class WriterStats:
    batches: int = 0
    copied_alone: int = 0  # batches that went in as one COPY in autocommit (`direct_copy.DirectCopier`)
    rows: int = 0
    messages: int = 0
    rejected: int = 0
    duplicates: int = 0
    archived: int = 0  # payloads kept in the raw archive
    last_commit_ms: float = 0.0
    commit_s: float = 0.0  # cumulative time in PostgreSQL transactions
    listeners_s: float = 0.0  # cumulative time in commit listeners (the rule engine): it is ingest time too
    insert_s: float = 0.0  # of commit_s: COPY and INSERT of telemetry rows (and of archived payloads)
    prepare_s: float = 0.0  # sequence and quality bookkeeping in Python before the transaction
    encode_s: float = 0.0  # of commit_s: binary COPY rows built in Python
    finish_s: float = 0.0  # of commit_s: the COMMIT
    failures: int = 0


@dataclass
class Prepared:
    """A batch made ready once (duplicates out, counters taken), encoded once, committed as often as it takes."""

    items: list[Item]
    number: int = 0  # batches are numbered as prepared and commit in that order (0: the idle batch, no readings)
    messages: dict[UUID, list[tuple[UUID, Message]]] = field(default_factory=dict)  # per tenant: (device, message)
    offered: dict[UUID, tuple[UUID, int]] = field(default_factory=dict)  # device → (tenant, readings inserted)
    copies: dict[UUID, bytearray] | None = None  # per tenant: its rows in binary COPY format (`COPY_TARGETS`)
    # plain PostgreSQL, per tenant with any: its readings that are not numbers, rows of `telemetry_points`
    point_copies: dict[UUID, bytearray] = field(default_factory=dict)
    archive: dict[UUID, bytearray] | None = None  # per tenant: its raw payloads in binary COPY format
    archived: int = 0  # payloads in `archive`
    # devices with readings found to be duplicates at insert (same key and timestamp as a stored one): the
    # (series id, microseconds) of the readings that were inserted; only these go into the committed events...
    inserted: dict[UUID, set[tuple[int, int]]] = field(default_factory=dict)
    replayed: set[UUID] = field(default_factory=set)  # ...except for devices replayed from the raw archive

    def drop_devices(self, tenant_id: UUID, devices: set[UUID]) -> int:
        """Leave devices' readings out (deleted after they were taken in); the messages dropped."""
        for device_id in devices:
            self.offered.pop(device_id, None)
        entries = self.messages.get(tenant_id, [])
        kept = [(device_id, message) for device_id, message in entries if device_id not in devices]
        if kept:
            self.messages[tenant_id] = kept
        else:
            self.messages.pop(tenant_id, None)
        return len(entries) - len(kept)
