"""Device simulator: many simulated devices publishing realistic telemetry to the MQTT broker.

Each device is what a real one would be on the wire: its own MQTT connection with its own credentials
(username = device id, password = device token, client id `sim-<device_id>`), a `hello` status on every
connect, a heartbeat status every `heartbeat_s`, and flat JSON telemetry with `ts` and `seq` every
`interval_s`. Device start times are spread evenly over one interval so N devices do not publish in bursts.
A dropped connection is retried with exponential backoff and full jitter, so a broker restart is not met
by every device at the same instant.

All devices share one event loop. Cost per device is one TCP connection (one file descriptor), one paho
client, two small tasks and ~35 kB of memory. The per-message cost is paho/aiomqtt's publish path
(~250-450 µs of CPU per QoS 1 message), not the value models. Measured on the 2-core reference machine with
Mosquitto on the same box: 1,000 devices at a 1 s interval take ~45 % of one core (56 MB RSS); 5,000 devices
at 5 s take ~50 % (180 MB); 2,000 devices at 1 s saturate the core (~1,900 msg/s achieved). So one process
tops out around 2,000-3,000 msg/s in total; past that devices skip ticks rather than bunch them, and
`SimulationStats.rate()` shows what was really achieved. The other limit is the open-file limit
(`ulimit -n`, often 1,024 by default: raise it for more than ~1,000 devices; the broker needs the same).
Beyond that, run several simulator processes with disjoint device lists.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import aiomqtt
import orjson

from app.simulator_models import DeviceKind, TelemetrySource, seed_for

log = logging.getLogger(__name__)

FIRMWARE_VERSION = '1.0.0'
_BACKOFF_FIRST_S = 0.5
_BACKOFF_MAX_S = 30.0
_SHUTDOWN_GRACE_S = 5.0


@dataclass(frozen=True)
class SimulatedDevice:
    device_id: str
    tenant_id: str
    token: str
    kind: DeviceKind

    @property
    def topic_prefix(self) -> str:
        return f'{self.tenant_id}/devices/{self.device_id}'


@dataclass
class SimulationStats:
    """Counters shared by all devices of one run; `published` counts every acknowledged message (status too),
    `telemetry` only the telemetry messages among them."""

    published: int = 0
    telemetry: int = 0
    errors: int = 0
    started: float = field(default_factory=time.monotonic)

    def rate(self) -> float:
        """Messages per second since `started`."""
        elapsed = time.monotonic() - self.started
        return self.published / elapsed if elapsed > 0 else 0.0


@dataclass(frozen=True)
class _Options:
    host: str
    port: int
    interval_s: float
    heartbeat_s: float
    qos: int


def start_offsets(count: int, interval_s: float) -> list[float]:
    """Evenly spread first-publish delays in [0, interval_s), one per device."""
    return [interval_s * index / count for index in range(count)]


def reconnect_delay(attempt: int, rng: random.Random) -> float:
    """Exponential backoff with full jitter: 0.5 s, 1 s, 2 s, ... capped at 30 s, each scaled by 0.5..1."""
    ceiling = min(_BACKOFF_MAX_S, _BACKOFF_FIRST_S * 2.0 ** min(attempt, 16))
    return ceiling * rng.uniform(0.5, 1.0)


async def simulate(
    devices: Sequence[SimulatedDevice],
    *,
    mqtt_host: str,
    mqtt_port: int,
    interval_s: float,
    qos: int = 1,
    duration_s: float | None = None,
    heartbeat_s: float = 30.0,
    stats: SimulationStats | None = None,
    stop: asyncio.Event | None = None,
) -> SimulationStats:
    """Run every device until `duration_s` has passed or `stop` is set (forever if neither), then disconnect."""
    if interval_s <= 0 or heartbeat_s <= 0:
        raise ValueError('interval_s and heartbeat_s must be positive')
    if qos not in (0, 1, 2):
        raise ValueError('qos must be 0, 1 or 2')
    stats = stats if stats is not None else SimulationStats()
    options = _Options(mqtt_host, mqtt_port, interval_s, heartbeat_s, qos)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    timer = loop.call_later(duration_s, done.set) if duration_s is not None else None
    watchers: list[asyncio.Task[object]] = [asyncio.create_task(_relay(stop, done))] if stop is not None else []
    log.info('simulation started', extra={'devices': len(devices), 'interval_s': interval_s, 'mqtt_port': mqtt_port})
    tasks = [
        asyncio.create_task(
            _DeviceRunner(device, options=options, stats=stats, done=done).run(offset), name=f'sim-{device.device_id}'
        )
        for device, offset in zip(devices, start_offsets(len(devices), interval_s), strict=True)
    ]
    watchers.append(asyncio.create_task(done.wait()))
    try:
        await asyncio.wait([*tasks, *watchers], return_when=asyncio.FIRST_COMPLETED)
    finally:
        done.set()
        if timer is not None:
            timer.cancel()
        for watcher in watchers:
            watcher.cancel()
        await _finish(tasks)
    log.info('simulation finished', extra={'published': stats.published, 'errors': stats.errors})
    return stats


async def _relay(stop: asyncio.Event, done: asyncio.Event) -> None:
    await stop.wait()
    done.set()


async def _finish(tasks: list[asyncio.Task[None]]) -> None:
    """Let devices disconnect cleanly for a moment, cancel stragglers, re-raise the first real failure."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=_SHUTDOWN_GRACE_S)
    for task in pending:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, Exception):
            raise result


async def _idle(done: asyncio.Event, delay_s: float) -> bool:
    """Sleep for `delay_s` unless the run ends first; True when it has ended."""
    if delay_s > 0 and not done.is_set():
        try:
            async with asyncio.timeout(delay_s):
                await done.wait()
        except TimeoutError:
            pass
    return done.is_set()


class _Ticks:
    """A device's telemetry schedule, phase-locked to its start; missed ticks are skipped, not bunched."""

    def __init__(self, first_at: float, interval_s: float) -> None:
        self.next_at = first_at
        self._interval_s = interval_s

    def advance(self, now: float) -> None:
        self.next_at += self._interval_s
        if self.next_at <= now:
            self.next_at += (now - self.next_at) // self._interval_s * self._interval_s + self._interval_s


class _DeviceRunner:
    """One simulated device for the whole run: connects, publishes, reconnects with backoff until `done`."""

    def __init__(
        self, device: SimulatedDevice, *, options: _Options, stats: SimulationStats, done: asyncio.Event
    ) -> None:
        self._device = device
        self._options = options
        self._stats = stats
        self._done = done
        self._source = TelemetrySource(device.kind, seed=seed_for(device.device_id))
        self._rng = random.Random(seed_for(device.device_id))
        self._status_topic = f'{device.topic_prefix}/status'
        self._telemetry_topic = f'{device.topic_prefix}/telemetry'

    async def run(self, offset_s: float) -> None:
        if await _idle(self._done, offset_s):
            return
        booted = asyncio.get_running_loop().time()
        ticks = _Ticks(booted, self._options.interval_s)
        attempt = 0
        while not self._done.is_set():
            client = aiomqtt.Client(
                self._options.host,
                self._options.port,
                username=self._device.device_id,
                password=self._device.token,
                identifier=f'sim-{self._device.device_id}',
            )
            try:
                async with client:
                    attempt = 0
                    await self._session(client, ticks=ticks, booted=booted)
                return
            except aiomqtt.MqttError as error:
                self._stats.errors += 1
                delay = reconnect_delay(attempt, self._rng)
                attempt += 1
                log.warning(
                    'simulated device disconnected',
                    extra={'device_id': self._device.device_id, 'error': str(error), 'retry_s': round(delay, 2)},
                )
                if await _idle(self._done, delay):
                    return

    async def _session(self, client: aiomqtt.Client, *, ticks: _Ticks, booted: float) -> None:
        """One connection's life: hello, then telemetry and heartbeats until the run ends or the link breaks."""
        loop = asyncio.get_running_loop()
        heartbeat_s = self._options.heartbeat_s
        await self._publish(client, self._status_topic, {'state': 'hello', 'fw': FIRMWARE_VERSION})
        next_heartbeat = loop.time() + heartbeat_s
        while True:
            if await _idle(self._done, min(ticks.next_at, next_heartbeat) - loop.time()):
                return
            now = loop.time()
            if now >= next_heartbeat:
                await self._publish(client, self._status_topic, {'state': 'heartbeat', 'uptime_s': int(now - booted)})
                next_heartbeat += heartbeat_s
                if next_heartbeat <= now:
                    next_heartbeat = now + heartbeat_s
            if now >= ticks.next_at:
                ticks.advance(now)
                await self._publish(client, self._telemetry_topic, self._source.next_payload(time.time()))

    async def _publish(self, client: aiomqtt.Client, topic: str, payload: Mapping[str, object]) -> None:
        await client.publish(topic, orjson.dumps(payload), qos=self._options.qos)
        self._stats.published += 1
        if topic == self._telemetry_topic:
            self._stats.telemetry += 1
