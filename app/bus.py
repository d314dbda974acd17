"""Event bus: typed topics, bounded per-subscriber queues, optional Redis fan-out across instances.

A slow subscriber (a browser tab on a bad link) never slows ingest: its queue keeps the newest events and
counts what it dropped. With Redis, every instance publishes to a channel per topic and re-emits what other
instances published, so a browser sees events whichever instance holds its websocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, NamedTuple, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, TypeAdapter

from app.models.telemetry import Message

log = logging.getLogger(__name__)
MAX_WAITING = 100_000  # events queued for Redis before new ones are dropped (counted)

JsonScalar = float | int | str | bool | None
Value = float | str | bool | dict[str, Any] | list[Any] | None


class Event(BaseModel):
    model_config = ConfigDict(frozen=True)

    tenant_id: UUID


class ReadingValue(NamedTuple):  # a named tuple: ingest makes one per stored reading
    key: str
    ts: datetime
    value: Value


@dataclass(slots=True)
class TelemetryStored:
    """One device's messages from one committed batch; `readings` flattens them (made only when asked for).

    A dataclass, not a model: the batch writer makes one per device per batch, thousands a second; and not frozen,
    whose __init__ costs four times as much (2.1 against 0.5 µs). Subscribers share it: none may change it."""

    tenant_id: UUID
    device_id: UUID
    messages: tuple[Message, ...]
    last_seen: datetime

    @property
    def readings(self) -> tuple[ReadingValue, ...]:
        new = tuple.__new__  # not the named tuple's generated __new__, a Python-level call per reading
        return tuple(new(ReadingValue, (key, message[0], value))
                     for message in self.messages for key, value in message.readings.items())


class DeviceChanged(Event):
    device_id: UUID
    change: Literal['created', 'updated', 'deleted', 'online', 'offline', 'rejected']


class SessionRevoked(Event):
    """Sessions ended: one (`session_id` set, the stored hash) or all of a user's (`session_id` None)."""

    user_id: UUID
    session_id: str | None = None


class AlarmChanged(Event):
    """An alarm was raised, repeated, acknowledged, cleared, commented on, assigned or changed severity."""

    alarm_id: UUID
    device_id: UUID
    rule_id: UUID
    severity: str
    status: str
    transition: str


E = TypeVar('E', bound=Event | TelemetryStored)


class Subscription(Generic[E]):
    def __init__(self, topic: Topic[E], *, maxsize: int, where: Callable[[E], bool] | None,
                 route: tuple[str, UUID] | None = None) -> None:
        self._topic = topic
        self.route = route
        self._queue: asyncio.Queue[E] = asyncio.Queue(maxsize=maxsize)
        self._where = where
        self.dropped = 0

    def offer(self, event: E) -> None:
        if self._where is not None and not self._where(event):
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    def drain(self) -> list[E]:
        """Everything waiting, without blocking: pages call this from a timer to throttle their updates."""
        events: list[E] = []
        while not self._queue.empty():
            events.append(self._queue.get_nowait())
        return events

    async def get(self, timeout: float | None = None) -> E:  # noqa: ASYNC109 - callers want a bounded wait
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def __aiter__(self) -> AsyncIterator[E]:
        while True:
            yield await self._queue.get()

    def close(self) -> None:
        self._topic.unsubscribe(self)


class Topic(Generic[E]):
    """Subscribers receive every event, or only those of one tenant or one device (`tenant_id` / `device_id`):
    routed ones are found by a dict look-up, so a thousand open device pages do not each test every event."""

    def __init__(self, name: str, event_type: type[E]) -> None:
        self.name = name
        self.event_type = event_type
        self.adapter: TypeAdapter[list[E]] = TypeAdapter(list[event_type])  # type: ignore[valid-type]
        # copied on change, never changed in place: delivery iterates them while callbacks may subscribe
        self._everyone: tuple[Subscription[E], ...] = ()
        self._routed: dict[str, dict[UUID, tuple[Subscription[E], ...]]] = {'tenant_id': {}, 'device_id': {}}
        self._remote: Callable[[Topic[Any], Any], None] | None = None

    def subscribe(self, *, maxsize: int = 1000, where: Callable[[E], bool] | None = None,
                  tenant_id: UUID | None = None, device_id: UUID | None = None) -> Subscription[E]:
        """`where` is tested on every event delivered (after the routing by tenant or device, if given)."""
        route = ('device_id', device_id) if device_id is not None else \
            ('tenant_id', tenant_id) if tenant_id is not None else None
        subscription = Subscription(self, maxsize=maxsize, where=where, route=route)
        if route is None:
            self._everyone = (*self._everyone, subscription)
        else:
            routes = self._routed[route[0]]
            routes[route[1]] = (*routes.get(route[1], ()), subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription[E]) -> None:
        route = subscription.route
        if route is None:
            self._everyone = tuple(s for s in self._everyone if s is not subscription)
            return
        routes = self._routed[route[0]]
        remaining = tuple(s for s in routes.get(route[1], ()) if s is not subscription)
        if remaining:
            routes[route[1]] = remaining
        else:
            routes.pop(route[1], None)

    @property
    def subscriber_count(self) -> int:
        return len(self._everyone) + sum(len(s) for routes in self._routed.values() for s in routes.values())

    def publish(self, event: E) -> None:
        self.deliver(event)
        if self._remote is not None:
            self._remote(self, event)

    def deliver(self, event: E) -> None:
        for subscription in self._everyone:
            subscription.offer(event)
        for attribute, routes in self._routed.items():
            if routes:
                for subscription in routes.get(getattr(event, attribute, None), ()):  # type: ignore[arg-type]
                    subscription.offer(event)


class EventBus:
    def __init__(self) -> None:
        self.telemetry_stored: Topic[TelemetryStored] = Topic('telemetry_stored', TelemetryStored)
        self.device_changed: Topic[DeviceChanged] = Topic('device_changed', DeviceChanged)
        self.session_revoked: Topic[SessionRevoked] = Topic('session_revoked', SessionRevoked)
        self.alarm_changed: Topic[AlarmChanged] = Topic('alarm_changed', AlarmChanged)

    @property
    def topics(self) -> tuple[Topic[Any], ...]:
        return (self.telemetry_stored, self.device_changed, self.session_revoked, self.alarm_changed)

    async def start(self) -> None:
        """In-process bus: nothing to start."""

    async def stop(self) -> None:
        """In-process bus: nothing to stop."""


class RedisEventBus(EventBus):
    """The same topics, re-published through Redis pub/sub so every instance's pages see every event."""

    def __init__(self, redis_url: str, *, prefix: str = 'gito:bus:') -> None:
        super().__init__()
        self._url = redis_url
        self._prefix = prefix
        self._origin = uuid.uuid4().hex
        self._pending: dict[str, tuple[Topic[Any], list[Any]]] = {}
        self._waiting = 0
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.connected = False
        self.dropped = 0
        for topic in self.topics:
            topic._remote = self._enqueue

    def _enqueue(self, topic: Topic[Any], event: Any) -> None:
        """Events go out in one Redis message per topic per round (a JSON array), not one each: a batch of
        ingest publishes thousands of telemetry events at once."""
        if self._waiting >= MAX_WAITING:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning('redis bus behind, events not fanned out', extra={'dropped': self.dropped})
            return
        entry = self._pending.get(topic.name)
        if entry is None:
            entry = self._pending[topic.name] = (topic, [])
        entry[1].append(event)
        self._waiting += 1
        self._wake.set()

    async def start(self) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(self._url)
        await self._redis.ping()
        self._pubsub = self._redis.pubsub()
        await self._pubsub.subscribe(*(self._prefix + topic.name for topic in self.topics))
        self.connected = True
        self._tasks = [asyncio.create_task(self._publish_loop()), asyncio.create_task(self._listen_loop())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # typed in newer redis releases
        await self._redis.aclose()
        self.connected = False

    async def _publish_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            pending, self._pending, self._waiting = self._pending, {}, 0
            for name, (topic, events) in pending.items():
                payload = self._origin.encode() + b' ' + topic.adapter.dump_json(events)
                try:
                    await self._redis.publish(self._prefix + name, payload)
                except Exception:
                    log.exception('redis publish failed', extra={'topic': name, 'events': len(events)})
                    await asyncio.sleep(1)

    async def _listen_loop(self) -> None:
        by_channel = {self._prefix + topic.name: topic for topic in self.topics}
        while True:
            try:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except Exception:
                self.connected = False
                log.exception('redis subscription lost')
                await asyncio.sleep(1)
                continue
            self.connected = True
            if message is None:
                continue
            channel = message['channel'].decode()
            origin, _, body = message['data'].decode().partition(' ')
            topic = by_channel.get(channel)
            if topic is None or origin == self._origin:
                continue
            for event in topic.adapter.validate_json(body):
                topic.deliver(event)


def create_bus(redis_url: str | None) -> EventBus:
    return RedisEventBus(redis_url) if redis_url else EventBus()
