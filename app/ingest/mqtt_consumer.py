"""MQTT consumer: telemetry and status from every device, through the batch writer, acknowledged after commit.

paho-mqtt with `manual_ack=True` runs its network loop in its own thread; each QoS 1 message is handed to the
asyncio loop in bulk and acknowledged (PUBACK) only once the batch holding its rows is committed. The session
is persistent (MQTT 5 clean start off with a session expiry; MQTT 3.1.1 clean session off for brokers without
MQTT 5), so what the broker holds survives a crash of Gito: unacknowledged messages are delivered again.
Backpressure: at most `max_inflight` messages are between the socket and their commit; past that the network
thread stops reading, the broker keeps the rest. The topic names tenant and device; both must match the device
record, and the broker has already checked the device's credentials.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import paho.mqtt.client as paho
from nicegui import binding
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from app.ingest.directory import DeviceDirectory
from app.ingest.payload import PayloadError, decode, excerpt
from app.ingest.writer import BatchWriter, Inbound, Rejection

log = logging.getLogger(__name__)

TOPICS = ('+/devices/+/telemetry', '+/devices/+/status')
SHARE_GROUP = 'gito'


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


def subscriptions(shared: bool) -> list[str]:
    return [f'$share/{SHARE_GROUP}/{topic}' if shared else topic for topic in TOPICS]


class MqttConsumer:
    def __init__(
        self, target: MqttTarget, directory: DeviceDirectory, writer: BatchWriter, link: LinkStatus,
        *, retry_s: float = 2.0, max_inflight: int = 20_000, session_expiry_s: int = 86_400, mqtt5: bool = True,
        shared: bool | None = None, stop_grace_s: float = 5.0,
    ) -> None:
        self._stop_grace_s = stop_grace_s
        self._target = target if shared is None else MqttTarget(**{**target.__dict__, 'shared': shared})
        self._directory = directory
        self._writer = writer
        self.link = link
        self._retry_s = retry_s
        self._max_inflight = max_inflight
        self._session_expiry_s = session_expiry_s
        self.mqtt5 = mqtt5  # off for brokers without MQTT 5 (the pure-Python amqtt broker)
        self._client: paho.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: collections.deque[tuple[int, paho.MQTTMessage]] = collections.deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # set when nothing handed to the writer waits for its commit
        self._wake_pending = False
        self._slots = threading.Semaphore(max_inflight)
        self._generation = 0  # message ids belong to one connection: never ack an old one on a new connection
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.received = 0
        self.ignored = 0
        self.acked = 0
        self.inflight = 0

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._slots = threading.Semaphore(self._max_inflight)
        client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=self._target.client_id,
            protocol=paho.MQTTv5 if self.mqtt5 else paho.MQTTv311,
            clean_session=None if self.mqtt5 else False, manual_ack=True,
        )
        if self._target.username is not None:
            client.username_pw_set(self._target.username, self._target.password)
        client.reconnect_delay_set(min_delay=1, max_delay=max(1, int(self._retry_s)))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        properties = None
        if self.mqtt5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = self._session_expiry_s
            properties.ReceiveMaximum = min(65_535, self._max_inflight)
        client.connect_async(self._target.host, self._target.port, keepalive=30,
                             clean_start=False if self.mqtt5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
                             properties=properties)
        self._client = client
        self._task = asyncio.create_task(self._drain())
        client.loop_start()

    async def stop(self) -> None:
        """Stop reading, let what is already with the writer commit and be acknowledged, then disconnect."""
        self._stopping = True
        if self.inflight > 0:
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), self._stop_grace_s)
        self._slots.release(self._max_inflight)  # a network thread blocked on backpressure must see the stop
        if self._client is not None:
            self._client.disconnect()
            await asyncio.to_thread(self._client.loop_stop)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.link.connected = False

    # --- paho's network thread -------------------------------------------------------------------------------

    def _on_connect(self, client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self._to_loop(self._set_link, False, str(reason))
            return
        self._generation += 1
        client.subscribe([(topic, 1) for topic in subscriptions(self._target.shared)])
        self._to_loop(self._set_link, True, '')
        log.info('mqtt consumer connected', extra={'host': self._target.host, 'port': self._target.port,
                                                   'mqtt5': self.mqtt5, 'shared': self._target.shared})

    def _on_disconnect(self, _client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self._generation += 1
        self._to_loop(self._set_link, False, str(reason))
        if not self._stopping:
            log.warning('broker unreachable', extra={'error': str(reason), 'retry_s': self._retry_s})

    def _on_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        if self._stopping:
            return  # not acknowledged: the broker delivers it again to the next session
        self._slots.acquire()  # blocks this thread (stops reading the socket) while max_inflight are pending
        self._inbox.append((self._generation, message))
        if not self._wake_pending:
            self._wake_pending = True
            self._to_loop(self._wake.set)

    def _to_loop(self, callback: Any, *args: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(callback, *args)

    # --- the asyncio loop ------------------------------------------------------------------------------------

    def _set_link(self, connected: bool, error: str) -> None:
        self.link.connected = connected
        self.link.last_error = error

    async def _drain(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._wake_pending = False
            while self._inbox:
                generation, message = self._inbox.popleft()
                self.inflight += 1
                try:
                    await self._handle(generation, message)
                except Exception:
                    log.exception('mqtt message handling failed', extra={'topic': message.topic[:200]})
                    self._ack(generation, message.mid, message.qos)

    def _release(self) -> None:
        self.inflight -= 1
        self._slots.release()
        if self.inflight <= 0:
            self._idle.set()

    def _acker(self, generation: int, mid: int, qos: int) -> Any:
        return lambda: self._ack(generation, mid, qos)

    def _ack(self, generation: int, mid: int, qos: int) -> None:
        self._release()
        client = self._client
        if qos > 0 and client is not None and generation == self._generation and self.link.connected:
            client.ack(mid, qos)
            self.acked += 1

    async def _handle(self, generation: int, message: paho.MQTTMessage) -> None:
        ack = self._acker(generation, message.mid, message.qos)
        if self._stopping:
            self._release()  # dropped unacknowledged: redelivered to the next session
            return
        await self.handle(message.topic, bytes(message.payload), ack=ack)

    async def handle(self, topic: str, payload: bytes, *, ack: Any = None) -> None:
        """Decode one message and hand it to the writer; `ack` runs once it is committed (or at once if ignored)."""
        self.received += 1
        received_at = datetime.now(UTC)
        parts = topic.split('/')
        tenant_id, device_id = _ids_of(parts)
        entry = None if device_id is None else await self._directory.get(device_id)
        if device_id is None or entry is None or entry.tenant_id != tenant_id or not entry.accepts_data:
            self.ignored += 1
            log.warning('message for unknown device ignored', extra={'topic': topic[:200]})
            if ack is not None:
                ack()
            return
        tenant_id = entry.tenant_id
        if parts[3] == 'status':
            await self._writer.submit(Inbound(tenant_id, device_id, [], received_at, ack=ack))
            return
        try:
            messages = decode(payload, received_at=received_at)
        except PayloadError as error:
            log.info('payload rejected', extra={'device_id': str(device_id), 'reason': str(error)})
            await self._writer.reject(Rejection(tenant_id, device_id, str(error), excerpt(payload), received_at,
                                                ack=ack))
            return
        await self._writer.submit(Inbound(tenant_id, device_id, messages, received_at, ack=ack))


def _ids_of(parts: list[str]) -> tuple[UUID | None, UUID | None]:
    if len(parts) != 4 or parts[1] != 'devices' or parts[3] not in ('telemetry', 'status'):
        return None, None
    try:
        return UUID(parts[0]), UUID(parts[2])
    except ValueError:
        return None, None
