"""The delivery log of a tenant: list, inspect, retry now, and test messages through the real path."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import orjson
from sqlalchemy import text

from app.db import Database
from app.models.notifications import AttemptPublic, DeliveryPublic, DeliveryStatus
from app.models.schemas import Principal
from app.services.errors import NotFound
from app.services.notifications.channels import require_admin, require_reader
from app.services.notifications.dispatcher import Dispatcher

SELECT = """
    SELECT d.id, d.channel_id, c.name AS channel_name, d.alarm_id, d.rule_id, d.transition, d.notice, d.status,
           d.attempts, d.next_attempt_at, d.last_error, d.last_status_code, d.created_at, d.sent_at
    FROM notification_deliveries d JOIN notification_channels c ON c.id = d.channel_id"""


class DeliveryService:
    def __init__(self, db: Database, dispatcher: Dispatcher) -> None:
        self._db = db
        self._dispatcher = dispatcher

    async def list(self, principal: Principal, *, status: DeliveryStatus | None = None,
                   channel_id: UUID | None = None, limit: int = 100) -> list[DeliveryPublic]:
        require_reader(principal)
        query = SELECT + ' WHERE (CAST(:status AS text) IS NULL OR d.status = :status)' \
            ' AND (CAST(:channel AS uuid) IS NULL OR d.channel_id = :channel) ORDER BY d.created_at DESC LIMIT :limit'
        async with self._db.tenant(principal.tenant_id) as session:
            rows = await session.execute(text(query), {'status': status, 'channel': channel_id, 'limit': limit})
            return [_public(row._mapping) for row in rows]

    async def get(self, principal: Principal, delivery_id: UUID) -> DeliveryPublic:
        require_reader(principal)
        async with self._db.tenant(principal.tenant_id) as session:
            row = (await session.execute(text(SELECT + ' WHERE d.id = :id'), {'id': delivery_id})).one_or_none()
            if row is None:
                raise NotFound('No such delivery.')
            attempts = await session.execute(text("""
                SELECT attempted_at, ok, response_code, error, duration_ms FROM notification_attempts
                WHERE delivery_id = :id ORDER BY attempted_at, id"""), {'id': delivery_id})
            log = [AttemptPublic.model_validate(dict(a._mapping)) for a in attempts]
        return _public(row._mapping).model_copy(update={'attempt_log': log})

    async def retry_now(self, principal: Principal, delivery_id: UUID) -> DeliveryPublic:
        """Attempt at once; a dead delivery starts a new day of retries."""
        require_reader(principal)
        async with self._db.tenant(principal.tenant_id) as session:
            result = await session.execute(text("""
                UPDATE notification_deliveries SET next_attempt_at = now(), status = 'failed',
                    first_attempt_at = CASE WHEN status = 'dead' THEN NULL ELSE first_attempt_at END
                WHERE id = :id AND status <> 'sent'"""), {'id': delivery_id})
        if not getattr(result, 'rowcount', 0):
            await self.get(principal, delivery_id)  # NotFound, or already sent: report it as it is
        else:
            await self._dispatcher.run_once(only=delivery_id)
        return await self.get(principal, delivery_id)

    async def send_test(self, principal: Principal, channel_id: UUID) -> DeliveryPublic:
        """A test message to one channel, through the outbox and the dispatcher like any alarm."""
        require_admin(principal)
        delivery_id = uuid4()
        notice = {
            'tenant_id': str(principal.tenant_id), 'alarm_id': None, 'rule_id': None, 'rule_name': 'Test message',
            'device_id': None, 'device_name': 'Gito', 'severity': 'info', 'transition': 'test',
            'at': datetime.now(UTC).isoformat(), 'key': None, 'value': None,
            'threshold': 'This is a test of the notification channel.', 'actor': principal.email, 'note': None,
        }
        async with self._db.tenant(principal.tenant_id) as session:
            found = await session.scalar(text('SELECT 1 FROM notification_channels WHERE id = :id'),
                                         {'id': channel_id})
            if not found:
                raise NotFound('No such notification channel.')
            await session.execute(text("""
                INSERT INTO notification_deliveries (id, tenant_id, channel_id, transition, notice)
                VALUES (:id, :tenant, :channel, 'test', CAST(:notice AS jsonb))"""),
                {'id': delivery_id, 'tenant': principal.tenant_id, 'channel': channel_id,
                 'notice': orjson.dumps(notice).decode()})
        await self._dispatcher.run_once(only=delivery_id)
        return await self.get(principal, delivery_id)


def _public(row: Any) -> DeliveryPublic:
    notice = row['notice']
    summary = f'{notice.get("severity", "").upper()} {notice.get("rule_name", "")} {row["transition"]} ' \
              f'on {notice.get("device_name", "")}'
    data = {k: row[k] for k in row if k != 'notice'}
    if data['status'] in ('sent', 'dead'):
        data['next_attempt_at'] = None
    return DeliveryPublic.model_validate({**data, 'summary': summary})
