"""Per-device counters and last-seen from ingest, collapsed in memory and written with the latest values.

Updating every device's row in every batch costs as much as the latest-values upsert did (one row update per
device per batch); so tallies of committed batches are added up here and written (one row per device) in the
same transaction as a batch when the writer's queue is idle, or at least every flush interval. A batch is
counted once, when it is prepared (it is then retried until it commits): its readings count as stored, and the
few that the insert found to be duplicates are moved over by a correction once the insert knows them. Sequence
state (highest `seq`, open gaps) is written as it stood when the flush was taken (see `StateSnapshot.marks`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import orjson

from app.ingest.quality import QualityDelta, SeqMark

TOUCH_DEVICES = """
WITH seen AS (
    SELECT * FROM unnest($2::uuid[], $3::timestamptz[], $4::bigint[], $5::bigint[], $6::text[], $7::text[],
                         $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::jsonb[],
                         $14::bigint[], $15::bigint[], $16::boolean[])
        AS s(id, at, received, malformed, reason, excerpt, stored, duplicate, out_of_order, missing, last_seq, gaps,
             skew, max_skew, live)
), old AS (  -- by primary key, in its order: a join planned as a hash read every device of the tenant per chunk
    SELECT d.id, d.status FROM devices d WHERE d.id = ANY($2::uuid[]) AND d.tenant_id = $1 FOR UPDATE
)
UPDATE devices d SET
    last_seen = greatest(d.last_seen, seen.at), status = CASE WHEN seen.live THEN 'online' ELSE d.status END,
    messages_received = d.messages_received + seen.received,
    messages_malformed = d.messages_malformed + seen.malformed,
    last_malformed_reason = coalesce(seen.reason, d.last_malformed_reason),
    last_malformed_excerpt = CASE WHEN seen.reason IS NULL THEN d.last_malformed_excerpt ELSE seen.excerpt END,
    last_malformed_at = CASE WHEN seen.reason IS NULL THEN d.last_malformed_at ELSE seen.at END,
    readings_stored = d.readings_stored + seen.stored,
    readings_duplicate = d.readings_duplicate + seen.duplicate,
    messages_out_of_order = d.messages_out_of_order + seen.out_of_order,
    seq_missing = greatest(0, d.seq_missing + seen.missing),
    last_seq = coalesce(seen.last_seq, d.last_seq),
    seq_gaps = coalesce(seen.gaps, d.seq_gaps),
    clock_skew_ms = coalesce(seen.skew, d.clock_skew_ms),
    max_clock_skew_ms = CASE WHEN d.max_clock_skew_ms IS NULL OR abs(seen.max_skew) > abs(d.max_clock_skew_ms)
                             THEN coalesce(seen.max_skew, d.max_clock_skew_ms) ELSE d.max_clock_skew_ms END
FROM seen JOIN old ON old.id = seen.id
WHERE d.id = seen.id
RETURNING d.id, old.status"""

@dataclass
class DeviceTally:
    tenant_id: UUID
    received: int = 0
    malformed: int = 0
    at: datetime = field(default_factory=lambda: datetime.min.replace(tzinfo=UTC))
    reason: str | None = None
    excerpt: str | None = None
    stored: int = 0  # readings inserted (not duplicates)
    duplicate: int = 0  # readings dropped as duplicates (by seq, or by device, key and timestamp)
    out_of_order: int = 0
    missing: int = 0  # net change of missing sequence numbers
    skew_ms: int | None = None
    max_skew_ms: int | None = None
    live: bool = False  # something arrived from the device (not only readings replayed from the raw archive)

    def add_quality(self, delta: QualityDelta) -> None:
        self.duplicate += delta.duplicates
        self.out_of_order += delta.out_of_order
        self.missing += delta.gaps_opened

    def add_skew(self, milliseconds: int) -> None:
        self.skew_ms = milliseconds
        if self.max_skew_ms is None or abs(milliseconds) > abs(self.max_skew_ms):
            self.max_skew_ms = milliseconds


    def absorb(self, older: DeviceTally) -> None:
        """Add counts taken before these (a flush that failed and is put back)."""
        self.received += older.received
        self.malformed += older.malformed
        self.stored += older.stored
        self.duplicate += older.duplicate
        self.out_of_order += older.out_of_order
        self.missing += older.missing
        self.at = max(self.at, older.at)
        self.live = self.live or older.live
        if self.reason is None:
            self.reason, self.excerpt = older.reason, older.excerpt
        if self.skew_ms is None:
            self.skew_ms = older.skew_ms
        if older.max_skew_ms is not None and (self.max_skew_ms is None
                                              or abs(older.max_skew_ms) > abs(self.max_skew_ms)):
            self.max_skew_ms = older.max_skew_ms


Tallies = dict[UUID, DeviceTally]  # by device


def restore(tallies: Tallies, older: Tallies) -> None:
    for device_id, tally in older.items():
        current = tallies.get(device_id)
        if current is None:
            tallies[device_id] = tally
        else:
            current.absorb(tally)


def correct(tallies: Tallies, duplicates: dict[UUID, int]) -> None:
    """Readings counted as stored that the insert found to be duplicates."""
    for device_id, count in duplicates.items():
        tally = tallies.get(device_id)
        if tally is not None:
            tally.stored -= count
            tally.duplicate += count


async def write_tallies(
    connection: asyncpg.Connection, tallies: Tallies, duplicates: dict[UUID, int],
    seq_mark: Callable[[UUID], SeqMark | None],
) -> list[tuple[UUID, UUID, str]]:
    """Apply the tallies (and the corrections not yet in them) inside the caller's transaction; the devices that
    came online."""
    by_tenant: dict[UUID, list[tuple[UUID, DeviceTally, SeqMark | None, int]]] = defaultdict(list)
    for device_id, tally in tallies.items():
        by_tenant[tally.tenant_id].append((device_id, tally, seq_mark(device_id), duplicates.get(device_id, 0)))
    changes: list[tuple[UUID, UUID, str]] = []
    for tenant_id, entries in by_tenant.items():
        await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
        previous = await connection.fetch(
            TOUCH_DEVICES, tenant_id, [d for d, _, _, _ in entries], [t.at for _, t, _, _ in entries],
            [t.received for _, t, _, _ in entries], [t.malformed for _, t, _, _ in entries],
            [t.reason for _, t, _, _ in entries], [t.excerpt for _, t, _, _ in entries],
            [t.stored - dup for _, t, _, dup in entries], [t.duplicate + dup for _, t, _, dup in entries],
            [t.out_of_order for _, t, _, _ in entries], [t.missing for _, t, _, _ in entries],
            [s[0] if s is not None else None for _, _, s, _ in entries],
            [orjson.dumps(s[1]).decode() if s is not None else None for _, _, s, _ in entries],
            [t.skew_ms for _, t, _, _ in entries], [t.max_skew_ms for _, t, _, _ in entries],
            [t.live for _, t, _, _ in entries],
        )
        live = {device_id for device_id, tally, _, _ in entries if tally.live}
        changes += [(tenant_id, row['id'], 'online') for row in previous
                    if row['status'] != 'online' and row['id'] in live]
    return changes
