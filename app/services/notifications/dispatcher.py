"""Claims due outbox rows across tenants, sends them, records every attempt, retries with backoff, dead-letters.

Runs on the owner's engine (`db.system()`): one dispatcher serves every tenant, as the presence sweep does.
Rows are claimed with `FOR UPDATE SKIP LOCKED` and stay locked while their sends run, so several instances
never send the same row twice; a crash mid-send rolls the claim back and the row is sent again (at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.services.notifications.address_policy import Network, parse_cidrs
from app.services.notifications.grouping import Batch, group_rows
from app.services.notifications.messages import build_message
from app.services.notifications.safe_http import HttpResult
from app.services.notifications.senders import ChannelTarget, Senders
from app.services.notifications.signing import SecretBox

log = logging.getLogger(__name__)

CLAIM = """
    SELECT d.id, d.tenant_id, d.channel_id, d.rule_id, d.transition, d.notice, d.attempts, d.first_attempt_at,
           d.created_at, c.kind, c.name, c.enabled, c.recipients, c.url, c.secret_encrypted
    FROM notification_deliveries d JOIN notification_channels c ON c.id = d.channel_id
    WHERE d.status IN ('pending', 'failed') AND d.next_attempt_at <= now() {only}
    ORDER BY d.next_attempt_at LIMIT :limit
    FOR UPDATE OF d {skip}"""
RECORD_ATTEMPT = text("""
    INSERT INTO notification_attempts (tenant_id, delivery_id, attempted_at, ok, response_code, error, duration_ms)
    VALUES (:tenant, :delivery, :at, :ok, :code, :error, :duration)""")
UPDATE_DELIVERY = text("""
    UPDATE notification_deliveries SET status = :status, attempts = attempts + 1, next_attempt_at = :next,
        first_attempt_at = COALESCE(first_attempt_at, :at), last_error = :error, last_status_code = :code,
        sent_at = CASE WHEN :ok THEN :at ELSE sent_at END
    WHERE id = :delivery""")


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter, until `give_up_after_s` since the first attempt."""

    base_s: float = 10.0
    cap_s: float = 3600.0
    give_up_after_s: float = 24 * 3600.0

    def delay(self, attempts: int) -> float:
        return random.uniform(0, min(self.cap_s, self.base_s * 2 ** max(attempts - 1, 0)))


class Dispatcher:
    def __init__(self, db: Database, senders: Senders, box: SecretBox, *, base_url: str, wake: asyncio.Event,
                 backoff: Backoff | None = None, poll_s: float = 1.0, batch: int = 100,
                 digest_threshold: int = 5, digest_window_s: float = 60.0) -> None:
        self._db = db
        self._senders = senders
        self._box = box
        self._base_url = base_url
        self._wake = wake
        self.backoff = backoff or Backoff()
        self.poll_s = poll_s
        self._batch = batch
        self.digest_threshold = digest_threshold
        self.digest_window_s = digest_window_s

    async def run(self) -> None:
        while True:
            try:
                claimed = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning('notification dispatch failed', extra={'error': type(error).__name__})
                claimed = 0
            if claimed == 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_s):  # not `wait_for`: in 3.11 it can drop a cancellation
                        await self._wake.wait()

    async def run_once(self, *, only: UUID | None = None) -> int:
        """Send every due row (or just `only`); returns how many rows were claimed."""
        # One named row waits for a dispatcher that holds it, then reports what that one did.
        statement = text(CLAIM.format(only='AND d.id = :only' if only else '', skip='' if only else 'SKIP LOCKED'))
        params: dict[str, Any] = {'limit': self._batch} | ({'only': only} if only else {})
        async with self._db.system() as session:
            rows = [dict(row._mapping) for row in await session.execute(statement, params)]
            if not rows:
                return 0
            allowed = await self._allow_lists(session, {row['tenant_id'] for row in rows})
            batches = group_rows(rows, threshold=self.digest_threshold, window_s=self.digest_window_s)
            results = await asyncio.gather(*(self._send(b, allowed.get(b.rows[0]['tenant_id'], [])) for b in batches))
            for batch, result in zip(batches, results, strict=True):
                await self._record(session, batch, result)
        return len(rows)

    async def _allow_lists(self, session: AsyncSession, tenants: set[UUID]) -> dict[UUID, list[Network]]:
        rows = await session.execute(text(
            'SELECT tenant_id, allowed_cidrs FROM notification_settings WHERE tenant_id = ANY(:tenants)'),
            {'tenants': list(tenants)})
        return {tenant: parse_cidrs(cidrs) for tenant, cidrs in rows}

    async def _send(self, batch: Batch, allowed: list[Network]) -> HttpResult:
        first = batch.rows[0]
        if not first['enabled']:
            return HttpResult(ok=False, status_code=None, error='The channel is disabled.', duration_ms=0)
        sealed = first['secret_encrypted']
        secret = self._box.open(sealed) if sealed else None
        target = ChannelTarget(
            id=first['channel_id'], tenant_id=first['tenant_id'], kind=first['kind'], name=first['name'],
            recipients=list(first['recipients']), url=secret if first['kind'] == 'slack' else first['url'],
            secret=secret if first['kind'] == 'webhook' else None,
        )
        message = build_message([row['notice'] for row in batch.rows], base_url=self._base_url)
        try:
            return await self._senders.send(target, message, message_id=batch.message_id, allowed=allowed)
        except Exception as error:  # a sender bug must not stop the other rows' bookkeeping
            log.warning('notification send raised', extra={'channel_id': str(target.id),
                                                           'error': type(error).__name__})
            return HttpResult(ok=False, status_code=None, error=f'Send failed: {type(error).__name__}',
                              duration_ms=0)

    async def _record(self, session: AsyncSession, batch: Batch, result: HttpResult) -> None:
        now = datetime.now(UTC)
        # One delay for the whole batch, so a digest is retried as one message again.
        delay = self.backoff.delay(max(row['attempts'] for row in batch.rows) + 1)
        for row in batch.rows:
            status, next_at = 'sent', now
            if not result.ok:
                first = row['first_attempt_at'] or now
                if (now - first).total_seconds() >= self.backoff.give_up_after_s:
                    status = 'dead'
                else:
                    status = 'failed'
                    next_at = now + timedelta(seconds=delay)
            await session.execute(RECORD_ATTEMPT, {
                'tenant': row['tenant_id'], 'delivery': row['id'], 'at': now, 'ok': result.ok,
                'code': result.status_code, 'error': result.error, 'duration': result.duration_ms,
            })
            await session.execute(UPDATE_DELIVERY, {
                'status': status, 'next': next_at, 'at': now, 'error': result.error, 'code': result.status_code,
                'ok': result.ok, 'delivery': row['id'],
            })
            if status == 'dead':
                log.warning('notification dead-lettered', extra={'delivery_id': str(row['id'])})
