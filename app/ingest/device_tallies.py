"""Per-device counters and last-seen from ingest, collapsed in memory and written with the latest values.

Updating every device's row in every batch costs as much as the latest-values upsert did (one row update per
device per batch); so tallies of committed batches are added up here and written (one row per device) in the
same transaction as a batch when the writer's queue is idle, or at least every flush interval. A batch's own
tallies are only added after it commits, so a retried batch never counts twice.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

TOUCH_DEVICES = """
WITH seen AS (
    SELECT * FROM unnest($2::uuid[], $3::timestamptz[], $4::bigint[], $5::bigint[], $6::text[], $7::text[])
        AS s(id, at, received, malformed, reason, excerpt)
), old AS (
    SELECT d.id, d.status FROM devices d JOIN seen ON seen.id = d.id WHERE d.tenant_id = $1 FOR UPDATE OF d
)
UPDATE devices d SET
    last_seen = greatest(d.last_seen, seen.at), status = 'online',
    messages_received = d.messages_received + seen.received,
    messages_malformed = d.messages_malformed + seen.malformed,
    last_malformed_reason = coalesce(seen.reason, d.last_malformed_reason),
    last_malformed_excerpt = CASE WHEN seen.reason IS NULL THEN d.last_malformed_excerpt ELSE seen.excerpt END,
    last_malformed_at = CASE WHEN seen.reason IS NULL THEN d.last_malformed_at ELSE seen.at END
FROM seen JOIN old ON old.id = seen.id
WHERE d.id = seen.id
RETURNING d.id, old.status"""

Key = tuple[UUID, UUID]  # tenant, device


@dataclass
class DeviceTally:
    received: int = 0
    malformed: int = 0
    at: datetime = field(default_factory=lambda: datetime.min.replace(tzinfo=UTC))
    reason: str | None = None
    excerpt: str | None = None

    def add(self, other: DeviceTally) -> None:
        self.received += other.received
        self.malformed += other.malformed
        self.at = max(self.at, other.at)
        if other.reason is not None:
            self.reason, self.excerpt = other.reason, other.excerpt


Tallies = dict[Key, DeviceTally]


def add_tallies(pending: Tallies, batch: Tallies) -> None:
    for key, tally in batch.items():
        held = pending.get(key)
        if held is None:
            pending[key] = replace(tally)
        else:
            held.add(tally)


def merged(pending: Tallies, batch: Tallies) -> Tallies:
    """A new mapping: `pending` plus `batch`, neither changed (the transaction writing it may fail)."""
    result = {key: replace(tally) for key, tally in pending.items()}
    add_tallies(result, batch)
    return result


async def write_tallies(connection: asyncpg.Connection, tallies: Tallies) -> list[tuple[UUID, UUID, str]]:
    """Apply the tallies inside the caller's transaction; the devices that came online."""
    by_tenant: dict[UUID, list[tuple[UUID, DeviceTally]]] = defaultdict(list)
    for (tenant_id, device_id), tally in tallies.items():
        by_tenant[tenant_id].append((device_id, tally))
    changes: list[tuple[UUID, UUID, str]] = []
    for tenant_id, entries in by_tenant.items():
        await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
        previous = await connection.fetch(
            TOUCH_DEVICES, tenant_id, [d for d, _ in entries], [t.at for _, t in entries],
            [t.received for _, t in entries], [t.malformed for _, t in entries],
            [t.reason for _, t in entries], [t.excerpt for _, t in entries],
        )
        changes += [(tenant_id, row['id'], 'online') for row in previous if row['status'] != 'online']
    return changes
