"""MQTT consumer: telemetry and status from every device, through the batch writer, acknowledged after commit.

The reader (`mqtt_reader.py`) hands over every PUBLISH of a socket read at once; they are routed (topic →
device, cached), decoded and offered to the batch writer in one call, and each QoS 1 message is acknowledged
(PUBACK, in bulk) only once the batch holding its rows is committed. The session is persistent (MQTT 5 clean
start off with a session expiry; MQTT 3.1.1 clean session off for brokers without MQTT 5), so what the broker
holds survives a crash of Gito: unacknowledged messages are delivered again. Backpressure: with MQTT 5 the broker
sends at most `max_inflight` unacknowledged messages (Receive Maximum); in any case the reader stops reading the
socket while `max_inflight` messages wait for their commit or the writer's queue is full, and reads again when
they drain. The topic names tenant and device; both must match the device record, and the broker has already
checked the device's credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from asyncpg.pgproto.pgproto import UUID as HashedUUID

from app.ingest.batch_items import Acknowledge, Inbound, Item, Rejection
from app.ingest.broker_hold import BrokerHold
from app.ingest.directory import DeviceDirectory, DeviceEntry
from app.ingest.mqtt_reader import Link, MqttReader
from app.ingest.mqtt_wire import ConnectOptions, Publish
from app.ingest.payload import MAX_PAYLOAD_BYTES, PayloadError, decode, excerpt
from app.ingest.writer import BatchWriter
from app.logs import Throttled

log = logging.getLogger(__name__)

TOPICS = ('+/devices/+/telemetry', '+/devices/+/status')
SHARE_GROUP = 'gito'
ROUTE_CACHE_LIMIT = 200_000
ONE_MICROSECOND = timedelta(microseconds=1)
# Messages decoded per turn of the event loop. A socket read can hold 2,000 messages, 15 ms of decoding in one go;
# the batch writer's next COPY waited behind it (measured: `docs/ARCHITECTURE.md`, "Decoding in turns").
TURN_MESSAGES = 500


@dataclass
class LinkStatus:
    """Whether Gito's consumer is connected to the broker; pages and /readyz bind to it. A plain dataclass (NiceGUI
    polls the binding): a bindable one would import the web stack into every `gito` command."""

    connected: bool = False
    last_error: str = ''
    queue_overflows: int = 0  # times the managed broker began dropping what it had queued for Gito


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


@dataclass(frozen=True)
class Route:
    """What a topic names: a device's telemetry (`kind` 't') or status ('s')."""

    tenant_id: UUID
    device_id: UUID
    kind: str


class MqttConsumer:
    def __init__(
        self, target: MqttTarget, directory: DeviceDirectory, writer: BatchWriter, link: LinkStatus,
        *, retry_s: float = 2.0, max_inflight: int = 20_000, session_expiry_s: int = 86_400, mqtt5: bool = True,
        shared: bool | None = None, stop_grace_s: float = 5.0,
    ) -> None:
        self._stop_grace_s = stop_grace_s
        self._target = target if shared is None else replace(target, shared=shared)
        self._directory = directory
        self._writer = writer
        self.link = link
        self._retry_s = retry_s
        self._max_inflight = max_inflight
        self._session_expiry_s = session_expiry_s
        self.mqtt5 = mqtt5  # off for brokers without MQTT 5 (the pure-Python amqtt broker)
        self._reader: MqttReader | None = None
        self._task: asyncio.Task[None] | None = None
        self._routes: dict[bytes, Route | None] = {}
        self._ackers: dict[Link, Acknowledge] = {}
        self._resolving: dict[UUID, list[tuple[Publish, Link]]] = {}  # devices being looked up: their messages
        self._unread: deque[tuple[list[Publish], Link]] = deque()  # received, to be decoded in turns, in order
        self._unread_count = 0  # messages in `_unread`: held like those in flight (they count towards pausing)
        self._clock = datetime.min.replace(tzinfo=UTC)  # the receive time after the last one handed out
        self._idle = asyncio.Event()
        self._stopping = False
        self.received = 0
        self.ignored = 0
        self._log_ignored = Throttled(log, logging.WARNING, 'message for unknown device ignored')
        self._log_rejected = Throttled(log, logging.INFO, 'payload rejected')
        self.acked = 0
        self.inflight = 0
        self.hold = BrokerHold()  # what the broker may keep back while Gito is not reading: the state mark waits
        writer.held_upstream = self.hold.since
        writer.on_drained(self._resume)

    async def start(self) -> None:
        self._stopping = False
        options = ConnectOptions(
            client_id=self._target.client_id, username=self._target.username, password=self._target.password,
            mqtt5=self.mqtt5, session_expiry_s=self._session_expiry_s, receive_maximum=self._max_inflight,
        )
        self._reader = MqttReader(self._target.host, self._target.port, options, subscriptions(self._target.shared),
                                  on_messages=self._on_messages, on_link=self._set_link, retry_s=self._retry_s)
        self._task = asyncio.create_task(self._reader.run())
        log.info('mqtt consumer starting', extra={'host': self._target.host, 'port': self._target.port,
                                                  'mqtt5': self.mqtt5, 'shared': self._target.shared})

    async def stop(self) -> None:
        """Stop reading, let what is already with the writer commit and be acknowledged, then disconnect."""
        self._stopping = True
        link = self._reader.link if self._reader is not None else None
        if link is not None:
            link.pause()
        if self.inflight > 0:
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), self._stop_grace_s)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.link.connected = False

    def _set_link(self, connected: bool, error: str) -> None:
        self.link.connected = connected
        self.link.last_error = error
        if connected:
            self.hold.reading()
        else:
            self._ackers.clear()
            self.hold.stopped()

    def _resume(self) -> None:
        link = self._reader.link if self._reader is not None else None
        if link is not None and not self._stopping and self.inflight + self._unread_count < self._max_inflight:
            link.resume()
            if link.open and not link.paused:
                self.hold.reading()

    def _acknowledger(self, link: Link) -> Acknowledge:
        acknowledge = self._ackers.get(link)
        if acknowledge is None:
            def acknowledge(packet_ids: list[bytes]) -> None:
                self._settled(len(packet_ids))
                ids = [packet_id for packet_id in packet_ids if packet_id]
                if ids and link.open:
                    link.ack(ids)
                    self.acked += len(ids)

            self._ackers[link] = acknowledge
        return acknowledge

    def _settled(self, count: int) -> None:
        self.inflight -= count
        if self.inflight <= 0:
            self._idle.set()
        self._resume_if_room()

    def _resume_if_room(self) -> None:
        if self.inflight + self._unread_count < self._max_inflight // 2 and not self._writer.full:
            self._resume()

    def _on_messages(self, publishes: list[Publish], link: Link) -> None:
        """A socket read's messages: taken in turns of `TURN_MESSAGES`, behind any still waiting, so that the loop
        gets round to other work (a batch's COPY to send) between turns."""
        if self._stopping:
            return  # not acknowledged: the broker delivers them again to the next session
        self._unread.append((publishes, link))
        self._unread_count += len(publishes)
        if len(self._unread) == 1:  # none waiting: the first turn now
            self._take_turn()
        self._pause_if_full(link)  # a broker that ignores Receive Maximum must not fill the process with unread ones

    def _take_turn(self) -> None:
        unread = self._unread
        if self._stopping:
            unread.clear()  # not acknowledged: the broker delivers them again to the next session
            self._unread_count = 0
            return
        publishes, link = unread[0]
        if len(publishes) > TURN_MESSAGES:
            unread[0] = (publishes[TURN_MESSAGES:], link)
            publishes = publishes[:TURN_MESSAGES]
        else:
            unread.popleft()
        self._unread_count -= len(publishes)
        if link.open:
            self._take(publishes, link)
        # else not taken: the broker delivers them again on the next connection (taken now, a message without
        # `ts` would be stored twice, at two receive times)
        if unread:
            asyncio.get_running_loop().call_soon(self._take_turn)
        else:  # paused for unread messages that turned out to need no commit (ignored): nothing else would resume
            self._resume_if_room()

    def _take(self, publishes: list[Publish], link: Link) -> None:
        self.received += len(publishes)
        acknowledge = self._acknowledger(link)
        received_at = self._now()
        items: list[Item] = []
        routes = self._routes
        resolving = self._resolving
        for publish in publishes:
            topic, payload, packet_id = publish
            route = routes.get(topic, _UNKNOWN)
            if route is _UNKNOWN:
                route = self._route(topic)
            if route is None:
                self._ignore(topic, link, packet_id)
                continue
            queued = resolving.get(route.device_id) if resolving else None
            if queued is None:
                found, entry = self._directory.cached(route.device_id)
                if not found:  # look the device up without blocking the loop; its messages wait, in order
                    queued = resolving[route.device_id] = []
                    asyncio.get_running_loop().create_task(self._resolve(route.device_id))
            if queued is not None:
                queued.append((publish, link))
                self.inflight += 1
                continue
            item = self._item(route, entry, payload, received_at, (acknowledge, packet_id or b''))
            received_at += ONE_MICROSECOND
            if item is None:
                self._ignore(topic, link, packet_id)
            else:
                items.append(item)
        self._clock = received_at
        if items:
            self.inflight += len(items)
            self._writer.offer(items)
        self._pause_if_full(link)

    def _pause_if_full(self, link: Link) -> None:
        """Unread and uncommitted messages (both unacknowledged) at the in-flight limit, or the writer full."""
        if self.inflight + self._unread_count >= self._max_inflight or self._writer.full:
            link.pause()
            self.hold.stopped()

    async def _resolve(self, device_id: UUID) -> None:
        """The messages of a device missing from the directory's cache, once it is looked up, in arrival order."""
        try:
            entry = await self._directory.get(device_id)
        except Exception:
            log.exception('device look-up failed', extra={'device_id': str(device_id)})
            entry = None
        queued = self._resolving.pop(device_id, [])
        items: list[Item] = []
        received_at = self._now()
        for (topic, payload, packet_id), link in queued:
            route = self._routes.get(topic)
            item = None if route is None or entry is None else self._item(
                route, entry, payload, received_at, (self._acknowledger(link), packet_id or b''))
            received_at += ONE_MICROSECOND
            if item is None:
                self._ignore(topic, link, packet_id)
                self._settled(1)
            else:
                items.append(item)
        self._clock = received_at
        if items:
            self._writer.offer(items)

    def _now(self) -> datetime:
        """Receive time, one microsecond apart within a socket read and never going back: it is the timestamp
        of messages that carry no `ts`, and two of one device at the same time would be one duplicate."""
        now = datetime.now(UTC)
        return now if now > self._clock else self._clock

    def _route(self, topic: bytes) -> Route | None:
        parts = topic.split(b'/')
        route = None
        if len(parts) == 4 and parts[1] == b'devices' and parts[3] in (b'telemetry', b'status'):
            try:
                kind = 't' if parts[3] == b'telemetry' else 's'
                route = Route(hashed_uuid(parts[0].decode()), hashed_uuid(parts[2].decode()), kind)
            except ValueError:
                route = None
        if len(self._routes) >= ROUTE_CACHE_LIMIT:
            self._routes.clear()
        self._routes[topic] = route
        return route

    def _item(self, route: Route, entry: DeviceEntry | None, payload: bytes, received_at: datetime,
              ack: tuple[Acknowledge, bytes]) -> Item | None:
        if entry is None or entry.tenant_id != route.tenant_id or not entry.accepts_data:
            return None
        kept = payload[:MAX_PAYLOAD_BYTES]  # for the raw archive, if the tenant keeps one (the writer decides)
        if route.kind == 's':
            return Inbound(entry.tenant_id, route.device_id, [], received_at, ack=ack, payload=kept)
        try:
            messages = decode(payload, received_at=received_at)
        except PayloadError as error:
            self._log_rejected(device_id=str(route.device_id), reason=str(error))
            return Rejection(entry.tenant_id, route.device_id, str(error), excerpt(payload), received_at, ack=ack,
                             payload=kept)
        return Inbound(entry.tenant_id, route.device_id, messages, received_at, ack=ack, payload=kept)

    def _ignore(self, topic: bytes, link: Link | None = None, packet_id: bytes | None = None) -> None:
        self.ignored += 1
        self._log_ignored(topic=topic[:200].decode(errors='replace'))
        if link is not None and packet_id:
            link.ack([packet_id])


_UNKNOWN: Any = object()


def hashed_uuid(text: str) -> UUID:
    """The id as asyncpg's UUID, the type of every id read from PostgreSQL: it hashes in C and keeps the hash, where
    the standard library's `UUID.__hash__` is a Python call. Each message's device id is looked up in about a dozen
    dicts on its way through the writer (`bench/ingest.py`: 5% of the ingest loop's samples were in that call).
    Parsed by the standard library first, which also takes the braced and `urn:uuid:` forms."""
    hashed: UUID = HashedUUID(str(UUID(text)))
    return hashed
