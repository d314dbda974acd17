"""Device simulator: value realism without a broker, then real devices against the local Mosquitto."""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

import aiomqtt
import orjson
import pytest

from app.simulator import (
    SimulatedDevice,
    SimulationStats,
    reconnect_delay,
    simulate,
    start_offsets,
)
from app.simulator_models import DeviceKind, Payload, TelemetrySource, seed_for

MQTT_HOST, MQTT_PORT = '127.0.0.1', 1883  # replaced by the session's test broker, see `_test_broker`
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
KEYS: dict[DeviceKind, set[str]] = {
    'climate': {'ts', 'seq', 'temperature', 'humidity'},
    'ac_meter': {'ts', 'seq', 'voltage', 'current', 'power', 'power_factor', 'energy_kwh', 'frequency'},
    'dc_meter': {'ts', 'seq', 'voltage', 'current', 'power', 'energy_kwh', 'battery_soc'},
}


@pytest.fixture(autouse=True)
def _test_broker(mqtt_url: str) -> None:
    global MQTT_HOST, MQTT_PORT
    from urllib.parse import urlsplit

    parts = urlsplit(mqtt_url)
    MQTT_HOST, MQTT_PORT = parts.hostname or '127.0.0.1', parts.port or 1883


def run(kind: DeviceKind, *, step_s: float = 60.0, days: float = 2.0, device_id: str = 'dev-1') -> list[Payload]:
    source = TelemetrySource(kind, seed=seed_for(device_id))
    return [source.next_payload(T0 + index * step_s) for index in range(int(days * 86_400 / step_s))]


def column(payloads: list[Payload], key: str) -> list[float]:
    return [float(payload[key]) for payload in payloads]


def hour_of(payload: Payload) -> float:
    return (int(payload['ts']) / 1000 % 86_400) / 3600


# --- values, no broker ------------------------------------------------------------------------------------


@pytest.mark.parametrize('kind', ['climate', 'ac_meter', 'dc_meter'])
def test_payload_is_flat_with_ts_and_seq_from_one(kind: DeviceKind) -> None:
    payloads = run(kind, days=0.1)
    assert all(set(payload) == KEYS[kind] for payload in payloads)
    assert [payload['seq'] for payload in payloads] == list(range(1, len(payloads) + 1))
    assert [payload['ts'] for payload in payloads[:2]] == [int(T0 * 1000), int(T0 * 1000) + 60_000]
    assert all(isinstance(value, int | float) and not isinstance(value, bool) for p in payloads for value in p.values())


def test_climate_stays_indoor_and_follows_the_day() -> None:
    payloads = run('climate', days=3)
    temperatures, humidities = column(payloads, 'temperature'), column(payloads, 'humidity')
    assert min(temperatures) > 16.0
    assert max(temperatures) < 27.0
    assert min(humidities) >= 15.0
    assert max(humidities) <= 85.0
    afternoon = [p['temperature'] for p in payloads if 14 <= hour_of(p) < 16]
    night = [p['temperature'] for p in payloads if 2 <= hour_of(p) < 4]
    assert sum(afternoon) / len(afternoon) > sum(night) / len(night) + 1.0
    # Slow signal: one minute apart, a room sensor moves by tenths of a degree, not degrees.
    assert max(abs(a - b) for a, b in itertools.pairwise(temperatures)) < 0.6


def test_climate_sits_around_21_5_across_devices() -> None:
    means = [sum(column(run('climate', days=1, device_id=f'room-{n}'), 'temperature')) / 1440 for n in range(20)]
    assert 20.0 < sum(means) / len(means) < 23.0
    assert max(means) - min(means) > 1.0, 'each room has its own set point'


def test_ac_meter_values_are_those_of_a_230_v_50_hz_supply() -> None:
    payloads = run('ac_meter')
    assert all(216.0 <= p['voltage'] <= 244.0 for p in payloads)
    assert all(49.9 <= p['frequency'] <= 50.1 for p in payloads)
    assert all(0.7 <= p['power_factor'] <= 1.0 for p in payloads)
    assert all(0.0 < p['current'] < 32.0 for p in payloads)
    for p in payloads:
        assert p['power'] == pytest.approx(p['voltage'] * p['current'] * p['power_factor'], rel=2e-3, abs=0.2)


def test_dc_meter_values_are_those_of_a_48_v_battery_bus() -> None:
    payloads = run('dc_meter')
    assert all(46.0 <= p['voltage'] <= 54.5 for p in payloads)
    assert all(5.0 <= p['battery_soc'] <= 100.0 for p in payloads)
    assert all(p['current'] > 0 for p in payloads)
    for p in payloads:
        assert p['power'] == pytest.approx(p['voltage'] * p['current'], rel=2e-3, abs=0.2)
    soc = column(payloads, 'battery_soc')
    assert max(soc) - min(soc) > 5.0, 'the battery should charge by day and discharge by night'


@pytest.mark.parametrize('kind', ['ac_meter', 'dc_meter'])
def test_energy_counter_only_grows_and_integrates_power(kind: DeviceKind) -> None:
    payloads = run(kind, days=1)
    energy = column(payloads, 'energy_kwh')
    assert all(later >= earlier for earlier, later in itertools.pairwise(energy))
    assert energy[-1] > energy[0]
    mean_power_w = sum(column(payloads, 'power')) / len(payloads)
    expected_kwh = mean_power_w * 24 / 1000
    assert energy[-1] - energy[0] == pytest.approx(expected_kwh, rel=0.05)


@pytest.mark.parametrize('kind', ['ac_meter', 'dc_meter'])
def test_energy_counter_survives_a_clock_stepping_back(kind: DeviceKind) -> None:
    source = TelemetrySource(kind, seed=7)
    times = [T0, T0 + 60, T0 + 120, T0 + 30, T0 + 180]
    energy = [float(source.next_payload(now)['energy_kwh']) for now in times]
    assert energy == sorted(energy)


def test_same_device_same_character_other_device_other_values() -> None:
    assert run('ac_meter', days=0.05) == run('ac_meter', days=0.05)
    assert run('ac_meter', days=0.05) != run('ac_meter', days=0.05, device_id='dev-2')


def test_start_offsets_spread_devices_over_one_interval() -> None:
    offsets = start_offsets(1000, 2.0)
    assert offsets[0] == 0.0
    assert max(offsets) < 2.0
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(offsets)}
    assert gaps == {0.002}
    assert start_offsets(0, 1.0) == []


def test_reconnect_delay_grows_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    first = [reconnect_delay(0, rng) for _ in range(200)]
    assert all(0.25 <= delay <= 0.5 for delay in first)
    assert len({round(delay, 6) for delay in first}) > 150
    assert all(2.0 <= reconnect_delay(3, rng) <= 4.0 for _ in range(50))
    assert all(15.0 <= reconnect_delay(attempt, rng) <= 30.0 for attempt in (6, 20, 10_000))


def test_stats_rate_is_messages_per_second() -> None:
    stats = SimulationStats(published=50, started=0.0)
    assert 0 < stats.rate() < 50
    assert SimulationStats().rate() >= 0.0


async def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match='interval_s'):
        await simulate([], mqtt_host=MQTT_HOST, mqtt_port=MQTT_PORT, interval_s=0)
    with pytest.raises(ValueError, match='qos'):
        await simulate([], mqtt_host=MQTT_HOST, mqtt_port=MQTT_PORT, interval_s=1, qos=3)


# --- real broker -------------------------------------------------------------------------------------------


class Received:
    """Everything one subscriber saw under one tenant's topic tree, decoded."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, object]]] = []

    def on(self, topic: str) -> list[dict[str, object]]:
        return [payload for got, payload in self.messages if got == topic]

    def telemetry(self, device: SimulatedDevice) -> list[dict[str, object]]:
        return self.on(f'{device.tenant_id}/devices/{device.device_id}/telemetry')

    def status(self, device: SimulatedDevice) -> list[dict[str, object]]:
        return self.on(f'{device.tenant_id}/devices/{device.device_id}/status')


@asynccontextmanager
async def subscriber(tenant_id: str) -> AsyncIterator[Received]:
    received = Received()
    async with aiomqtt.Client(MQTT_HOST, MQTT_PORT, identifier=f'test-sub-{uuid.uuid4().hex[:8]}') as client:
        await client.subscribe(f'{tenant_id}/devices/+/#', qos=1)

        async def collect() -> None:
            async for message in client.messages:
                received.messages.append((str(message.topic), orjson.loads(bytes(message.payload))))

        task = asyncio.create_task(collect())
        try:
            yield received
            await asyncio.sleep(0.3)  # let the last acknowledged messages reach us
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task


@pytest.fixture
def devices() -> list[SimulatedDevice]:
    tenant_id = f'sim-test-{uuid.uuid4().hex[:12]}'
    kinds: list[DeviceKind] = ['climate', 'ac_meter', 'dc_meter']
    return [SimulatedDevice(f'{kind}-{uuid.uuid4().hex[:6]}', tenant_id, f'token-{kind}', kind) for kind in kinds]


def seqs(payloads: list[dict[str, object]]) -> list[int]:
    return [int(str(payload['seq'])) for payload in payloads]


async def test_devices_publish_telemetry_and_status_to_the_broker(devices: list[SimulatedDevice]) -> None:
    stats = SimulationStats()
    async with subscriber(devices[0].tenant_id) as received:
        result = await simulate(
            devices,
            mqtt_host=MQTT_HOST,
            mqtt_port=MQTT_PORT,
            interval_s=0.2,
            duration_s=2.0,
            heartbeat_s=0.9,
            stats=stats,
        )
    assert result is stats
    assert stats.errors == 0
    for device in devices:
        telemetry = received.telemetry(device)
        assert len(telemetry) >= 7, device
        assert seqs(telemetry) == list(range(1, len(telemetry) + 1))
        assert all(set(payload) == KEYS[device.kind] for payload in telemetry)
        stamps = [int(str(payload['ts'])) for payload in telemetry]
        assert stamps == sorted(stamps)
        status = received.status(device)
        assert status[0] == {'state': 'hello', 'fw': '1.0.0'}
        heartbeats = [payload for payload in status if payload['state'] == 'heartbeat']
        assert heartbeats
        assert all(isinstance(beat['uptime_s'], int) for beat in heartbeats)
    assert stats.published == len(received.messages)
    assert stats.telemetry == sum(len(received.telemetry(device)) for device in devices)


async def test_start_is_staggered_across_the_interval(devices: list[SimulatedDevice]) -> None:
    many = [SimulatedDevice(f'{d.device_id}-{n}', d.tenant_id, d.token, d.kind) for d in devices for n in range(4)]
    arrivals: dict[str, float] = {}
    async with subscriber(many[0].tenant_id) as received:
        task = asyncio.create_task(
            simulate(many, mqtt_host=MQTT_HOST, mqtt_port=MQTT_PORT, interval_s=1.2, duration_s=1.4)
        )
        loop = asyncio.get_running_loop()
        while not task.done():
            for topic, _ in received.messages:
                arrivals.setdefault(topic, loop.time())
            await asyncio.sleep(0.01)
        await task
    first_telemetry = sorted(at for topic, at in arrivals.items() if topic.endswith('/telemetry'))
    assert len(first_telemetry) == len(many)
    assert first_telemetry[-1] - first_telemetry[0] > 0.6, 'first publishes should spread over the interval'


async def test_stop_event_ends_the_run(devices: list[SimulatedDevice]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.call_later(0.5, stop.set)
    started = loop.time()
    stats = await simulate(devices, mqtt_host=MQTT_HOST, mqtt_port=MQTT_PORT, interval_s=0.1, stop=stop)
    assert loop.time() - started < 2.0
    assert stats.published >= len(devices)


class DroppingProxy:
    """A TCP relay in front of the broker whose connections the test can cut, like a broker restart."""

    def __init__(self) -> None:
        self._writers: list[asyncio.StreamWriter] = []
        self.accepted = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        upstream_reader, upstream_writer = await asyncio.open_connection(MQTT_HOST, MQTT_PORT)
        self._writers += [writer, upstream_writer]
        await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(ConnectionError):
            while data := await reader.read(65_536):
                writer.write(data)
                await writer.drain()
        writer.close()

    def drop_all(self) -> None:
        for writer in self._writers:
            writer.close()
        self._writers.clear()


@pytest.fixture
async def proxy() -> AsyncIterator[tuple[DroppingProxy, int]]:
    relay = DroppingProxy()
    server = await asyncio.start_server(relay.handle, MQTT_HOST, 0)
    yield relay, server.sockets[0].getsockname()[1]
    relay.drop_all()
    server.close()
    await server.wait_closed()


async def test_devices_reconnect_after_the_broker_drops_them(
    devices: list[SimulatedDevice],
    proxy: tuple[DroppingProxy, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    relay, port = proxy
    stats = SimulationStats()
    async with subscriber(devices[0].tenant_id) as received:
        task = asyncio.create_task(
            simulate(devices, mqtt_host=MQTT_HOST, mqtt_port=port, interval_s=0.1, duration_s=3.0, stats=stats)
        )
        await wait_until(lambda: all(len(received.telemetry(d)) >= 3 for d in devices))
        relay.drop_all()
        before = {d.device_id: len(received.telemetry(d)) for d in devices}
        await wait_until(lambda: all(len(received.status(d)) >= 2 for d in devices), timeout_s=2.5)
        await task
    assert relay.accepted >= 2 * len(devices)
    assert stats.errors >= len(devices)
    assert any(record.message == 'simulated device disconnected' for record in caplog.records)
    for device in devices:
        assert [payload['state'] for payload in received.status(device)][:2] == ['hello', 'hello']
        telemetry = seqs(received.telemetry(device))
        assert len(telemetry) > before[device.device_id] + 3, 'telemetry resumes after the reconnect'
        assert telemetry == sorted(set(telemetry)), 'seq keeps increasing across connections'


async def wait_until(condition: Callable[[], bool], *, timeout_s: float = 5.0) -> None:
    """Poll a condition on what the subscriber has collected (it has no event to wait on)."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
