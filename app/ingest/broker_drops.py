"""Drops of queued messages on an external Mosquitto, read from its `$SYS` statistics.

While Gito is behind or away, the broker queues what devices send for Gito's session, and past its bounds
(`max_queued_messages`, `max_queued_bytes`) drops it although the devices were told it arrived. The managed broker's
log names the client (`broker.py::queue_overflows`); an external broker's log is out of reach, but Mosquitto
publishes its running total of dropped messages on `$SYS/broker/publish/messages/dropped` (every `sys_interval`,
10 s by default). The total is broker-wide: drops for Gito's session, or for a device's own persistent session
(commands queued while it is offline). Either is data lost, so an increase is an ERROR naming both causes.

The topic needs read access for Gito's account (`acl_file_text` grants it; '#' does not match `$SYS` topics). A
broker that sends nothing there within DEAF_AFTER_S (no access, not Mosquitto, or `sys_interval 0`) gets one
warning, and drops there go unreported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from app.ingest.mqtt_consumer import MqttTarget
from app.ingest.mqtt_reader import Link, MqttReader
from app.ingest.mqtt_wire import ConnectOptions, Publish

log = logging.getLogger(__name__)

DROPPED_TOPIC = '$SYS/broker/publish/messages/dropped'
DEAF_AFTER_S = 60.0  # six of Mosquitto's default `sys_interval`


class BrokerDropWatch:
    """Subscribes to the broker's drop total with a connection of its own (clean, nothing queued for it)."""

    def __init__(self, target: MqttTarget, *, mqtt5: bool = True, deaf_after_s: float = DEAF_AFTER_S) -> None:
        options = ConnectOptions(client_id=f'{target.client_id}-stats', username=target.username,
                                 password=target.password, mqtt5=mqtt5, clean_start=True, session_expiry_s=0)
        self._reader = MqttReader(target.host, target.port, options, [DROPPED_TOPIC],
                                  on_messages=self._on_messages, on_link=lambda _up, _reason: None, retry_s=10.0)
        self._deaf_after_s = deaf_after_s
        self._heard = asyncio.Event()
        self._total: int | None = None  # the broker's last reported total
        self.dropped = 0  # drops seen since this watch began

    @property
    def reporting(self) -> bool:
        """Whether the broker has sent its total at least once."""
        return self._heard.is_set()

    async def run(self) -> None:
        deaf = asyncio.create_task(self._warn_if_deaf())
        try:
            await self._reader.run()
        finally:
            deaf.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await deaf

    async def _warn_if_deaf(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._deaf_after_s):
                await self._heard.wait()
            return
        log.warning('mqtt broker statistics not received: drops of messages it queued will not be reported', extra={
            'topic': DROPPED_TOPIC, 'hint': "let Gito's MQTT account read this topic (Mosquitto: sys_interval > 0)"})

    def _on_messages(self, publishes: list[Publish], _link: Link) -> None:
        for topic, payload, _ in publishes:
            if topic == DROPPED_TOPIC.encode():
                with contextlib.suppress(ValueError):
                    self.observe(int(payload))

    def observe(self, total: int) -> None:
        """One report of the broker's running total."""
        self._heard.set()
        previous, self._total = self._total, total
        if previous is None:
            if total:
                log.warning('mqtt broker has dropped queued messages since it started', extra={'dropped': total})
            return
        new = total - previous if total >= previous else total  # a smaller total: the broker restarted
        if new > 0:
            self.dropped += new
            log.error('mqtt broker dropped queued messages', extra={
                'dropped': new, 'broker_total': total,
                'hint': "Gito's session (ingest behind or away) or a device's: raise max_queued_messages / "
                        'max_queued_bytes; the broker log names the client'})
