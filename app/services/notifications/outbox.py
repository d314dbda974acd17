"""The transactional outbox: one delivery row per matching channel, written in the alarm change's transaction."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.alarm_notice import AlarmNotice
from app.services.notifications.messages import notice_to_json

# Which per-channel flag a transition needs; a severity change of an open alarm is announced like a raise.
MATCHING_CHANNELS = text("""
    SELECT id FROM notification_channels
    WHERE tenant_id = :tenant AND enabled AND CAST(:severity AS text) = ANY(severities)
      AND (rule_ids IS NULL OR CAST(:rule AS uuid) = ANY(rule_ids))
      AND CASE CAST(:transition AS text) WHEN 'acknowledged' THEN on_acknowledge
                                         WHEN 'cleared' THEN on_clear ELSE on_raise END""")
INSERT_DELIVERY = text("""
    INSERT INTO notification_deliveries (id, tenant_id, channel_id, alarm_id, rule_id, transition, notice,
                                         next_attempt_at)
    VALUES (:id, :tenant, :channel, :alarm, :rule, :transition, CAST(:notice AS jsonb),
            now() + make_interval(secs => :hold))""")


class Outbox:
    """Implements `AlarmNotifier`. Nothing is sent here: the dispatcher picks the rows up once committed."""

    def __init__(self, *, hold_s: float = 2.0) -> None:
        self.pending = asyncio.Event()  # a hint for the dispatcher of this process to look sooner
        # Rows wait this long before their first send, so a storm committed over a few batches is one digest.
        self.hold_s = hold_s

    async def enqueue(self, session: AsyncSession, notice: AlarmNotice) -> None:
        channels = (await session.execute(MATCHING_CHANNELS, {
            'tenant': notice.tenant_id, 'severity': notice.severity, 'rule': notice.rule_id,
            'transition': notice.transition,
        })).scalars().all()
        payload = orjson.dumps(notice_to_json(notice)).decode()
        for channel_id in channels:
            await session.execute(INSERT_DELIVERY, {
                'id': uuid4(), 'tenant': notice.tenant_id, 'channel': channel_id, 'alarm': notice.alarm_id,
                'rule': notice.rule_id, 'transition': notice.transition, 'notice': payload, 'hold': self.hold_s,
            })
        if channels:
            self.pending.set()
