"""MQTT consumer: telemetry and status from every device, through the batch writer.

The topic names tenant and device; both must match the device record, and the broker has already checked
the device's credentials and (for the managed broker) that it publishes only under its own prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import aiomqtt
from nicegui import binding

from app.ingest.directory import DeviceDirectory
from app.ingest.payload import PayloadError, decode, excerpt
from app.ingest.writer import BatchWriter, Inbound, Rejection

log = logging.getLogger(__name__)

TOPICS = ('+/devices/+/telemetry', '+/devices/+/status')


@binding.bindable_dataclass
class LinkStatus:
    """Whether Gito's consumer is connected to the broker; pages and /readyz bind to it."""

    connected: bool = False
    last_error: str = ''


@dataclass(frozen=True)
class MqttTarget:
    host: str
    port: int
    username: str | None
    password: str | None
    client_id: str
    shared: bool = False


def parse_mqtt_url(url: str, *, client_id: str) -> MqttTarget:
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ('mqtt', 'tcp'):
        raise ValueError(f'MQTT_URL must start with mqtt:// (got {parts.scheme!r})')
    return MqttTarget(
        host=parts.hostname or '127.0.0.1', port=parts.port or 1883,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        client_id=client_id,
    )


class MqttConsumer:
    def __init__(
        self, target: MqttTarget, directory: DeviceDirectory, writer: BatchWriter, link: LinkStatus,
        *, retry_s: float = 2.0,
    ) -> None:
        self._target = target
        self._directory = directory
        self._writer = writer
        self.link = link
        self._retry_s = retry_s
        self._task: asyncio.Task[None] | None = None
        self.received = 0
        self.ignored = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.link.connected = False

    async def _run(self) -> None:
        target = self._target
        while True:
            client = aiomqtt.Client(
                target.host, target.port, username=target.username, password=target.password,
                identifier=target.client_id, clean_session=False, max_queued_incoming_messages=10_000,
            )
            try:
                async with client:
                    for topic in TOPICS:
                        await client.subscribe(f'$share/gito/{topic}' if target.shared else topic, qos=1)
                    self.link.connected = True
                    self.link.last_error = ''
                    log.info('mqtt consumer connected', extra={'host': target.host, 'port': target.port})
                    async for message in client.messages:
                        payload = message.payload
                        await self.handle(str(message.topic), payload if isinstance(payload, bytes) else
                                          str(payload).encode() if payload is not None else b'')
            except aiomqtt.MqttError as error:
                self.link.connected = False
                self.link.last_error = str(error)
                log.warning('broker unreachable', extra={'error': str(error), 'retry_s': self._retry_s})
                await asyncio.sleep(self._retry_s)

    async def handle(self, topic: str, payload: bytes) -> None:
        self.received += 1
        received_at = datetime.now(UTC)
        parts = topic.split('/')
        if len(parts) != 4 or parts[1] != 'devices' or parts[3] not in ('telemetry', 'status'):
            self.ignored += 1
            return
        try:
            tenant_id, device_id = UUID(parts[0]), UUID(parts[2])
        except ValueError:
            self.ignored += 1
            log.warning('message on malformed topic ignored', extra={'topic': topic[:200]})
            return
        entry = await self._directory.get(device_id)
        if entry is None or entry.tenant_id != tenant_id or not entry.tenant_active:
            self.ignored += 1
            log.warning('message for unknown device ignored', extra={'device_id': str(device_id)})
            return
        if parts[3] == 'status':
            await self._writer.submit(Inbound(tenant_id, device_id, [], received_at))
            return
        try:
            messages = decode(payload, received_at=received_at)
        except PayloadError as error:
            log.info('payload rejected', extra={'device_id': str(device_id), 'reason': str(error)})
            await self._writer.reject(Rejection(tenant_id, device_id, str(error), excerpt(payload), received_at))
            return
        await self._writer.submit(Inbound(tenant_id, device_id, messages, received_at))
