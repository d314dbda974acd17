"""The managed broker, Mosquitto and amqtt alike, checked with a real MQTT client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import stat
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import aiomqtt
import pytest

from app.api.metrics import metrics_text
from app.ingest.amqtt_child import filter_within, parse_acl, parse_passwords
from app.ingest.broker import BrokerCredential, BrokerPortTaken, ManagedBroker, acl_file_text, password_file_text
from app.ingest.broker_mosquitto import mosquitto_config
from app.platform import Platform
from app.services.credentials import mosquitto_hash

Kind = Literal['mosquitto', 'amqtt']
KINDS: list[Kind] = ['mosquitto', 'amqtt']
SERVICE = 'gito-service'
TELEMETRY = '+/devices/+/telemetry'


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Device:
    tenant: str
    id: str
    token: str

    @classmethod
    def new(cls) -> Device:
        return cls(str(uuid.uuid4()), str(uuid.uuid4()), secrets.token_urlsafe(32))

    @property
    def telemetry(self) -> str:
        return f'{self.tenant}/devices/{self.id}/telemetry'

    def credential(self) -> BrokerCredential:
        return BrokerCredential(self.id, mosquitto_hash(self.token), f'{self.tenant}/devices/{self.id}/')


@dataclass
class Running:
    broker: ManagedBroker
    port: int
    data_dir: Path
    service_password: str
    device: Device

    def credentials(self, *extra: Device) -> list[BrokerCredential]:
        service = BrokerCredential(SERVICE, mosquitto_hash(self.service_password), None)
        return [service, self.device.credential(), *(device.credential() for device in extra)]

    def client(self, username: str, password: str, **options: object) -> aiomqtt.Client:
        return aiomqtt.Client('127.0.0.1', self.port, username=username, password=password, **options)  # type: ignore[arg-type]

    def service(self, **options: object) -> aiomqtt.Client:
        return self.client(SERVICE, self.service_password, **options)

    def as_device(self, device: Device | None = None) -> aiomqtt.Client:
        device = device or self.device
        return self.client(device.id, device.token)


def _skip_if_missing(kind: Kind) -> None:
    # Mosquitto is part of the supported setup; say so loudly rather than silently testing less.
    if kind == 'mosquitto' and shutil.which('mosquitto') is None:
        pytest.fail('mosquitto is not installed; install it (apt-get install mosquitto) to test the managed broker')


@pytest.fixture(params=KINDS)
async def running(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Running]:
    kind: Kind = request.param
    _skip_if_missing(kind)
    port = free_port()
    broker = ManagedBroker(data_dir=tmp_path, host='127.0.0.1', port=port, kind=kind)
    state = Running(broker, port, tmp_path, secrets.token_urlsafe(32), Device.new())
    await broker.start(state.credentials())
    assert broker.kind_in_use == kind
    yield state
    await broker.stop()


async def first_message(client: aiomqtt.Client, timeout_s: float = 5) -> aiomqtt.Message:
    async with asyncio.timeout(timeout_s):
        async for message in client.messages:
            return message
    raise AssertionError('no message')


async def test_device_telemetry_reaches_the_service_account(running: Running) -> None:
    async with running.service() as service:
        await service.subscribe(TELEMETRY, qos=1)
        async with running.as_device() as device:
            await device.publish(running.device.telemetry, b'{"t": 21.5}', qos=1)
        message = await first_message(service)
    assert message.topic.value == running.device.telemetry
    assert message.payload == b'{"t": 21.5}'
    assert running.broker.url == f'mqtt://127.0.0.1:{running.port}'


@pytest.mark.parametrize('who', ['wrong password', 'unknown user', 'no password'])
async def test_bad_credentials_are_refused(running: Running, who: str) -> None:
    username, password = {
        'wrong password': (running.device.id, secrets.token_urlsafe(32)),
        'unknown user': (str(uuid.uuid4()), running.device.token),
        'no password': (running.device.id, ''),
    }[who]
    with pytest.raises(aiomqtt.MqttError):
        async with running.client(username, password):
            pass


async def test_a_device_cannot_publish_under_another_devices_prefix(running: Running) -> None:
    other = Device(running.device.tenant, str(uuid.uuid4()), secrets.token_urlsafe(32))
    async with running.service() as service:
        await service.subscribe(TELEMETRY, qos=1)
        async with running.as_device() as device:
            await device.publish(other.telemetry, b'forged', qos=1)
            await device.publish(f'{uuid.uuid4()}/devices/{running.device.id}/telemetry', b'other tenant', qos=1)
            await device.publish(running.device.telemetry, b'genuine', qos=1)
        # One publisher's messages arrive in order: the genuine one coming first means the others were dropped.
        message = await first_message(service)
    assert message.payload == b'genuine'


async def test_a_device_cannot_subscribe_outside_its_prefix(running: Running) -> None:
    commands = f'{running.device.tenant}/devices/{running.device.id}/commands'
    async with running.as_device() as device:
        await device.subscribe(TELEMETRY, qos=1)  # refused (failure SUBACK), or at least never served
        await device.subscribe(commands, qos=1)
        async with running.service() as service:
            await service.publish(Device.new().telemetry, b'not for you', qos=1)
            await service.publish(commands, b'yours', qos=1)
        message = await first_message(device)
    assert message.payload == b'yours'


async def test_new_credentials_apply_without_a_restart(running: Running) -> None:
    newcomer = Device.new()
    pid = running.broker.pid
    with pytest.raises(aiomqtt.MqttError):
        async with running.as_device(newcomer):
            pass
    await running.broker.update_credentials(running.credentials(newcomer))
    async with running.service() as service:
        await service.subscribe(TELEMETRY, qos=1)
        async with running.as_device(newcomer) as device:
            await device.publish(newcomer.telemetry, b'hello', qos=1)
        message = await first_message(service)
    assert message.topic.value == newcomer.telemetry
    assert running.broker.pid == pid


async def test_removed_credentials_are_refused(running: Running) -> None:
    service_only = running.credentials()[:1]
    await running.broker.update_credentials(service_only)
    with pytest.raises(aiomqtt.MqttError):
        async with running.as_device():
            pass


async def test_credential_files_are_private(running: Running) -> None:
    for name in ('passwd', 'acl'):
        mode = stat.S_IMODE((running.data_dir / 'mqtt' / name).stat().st_mode)
        assert mode == 0o600
    assert running.device.token not in (running.data_dir / 'mqtt' / 'passwd').read_text()


async def test_stop_leaves_no_child_process(running: Running) -> None:
    pid = running.broker.pid
    assert pid is not None
    await running.broker.stop()
    assert running.broker.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped, not a zombie
    await running.broker.stop()  # idempotent


@pytest.mark.parametrize('kind', KINDS)
async def test_a_taken_port_is_reported_with_the_variable_to_change(kind: Kind, tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(('127.0.0.1', 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        broker = ManagedBroker(data_dir=tmp_path, host='127.0.0.1', port=port, kind=kind)
        with pytest.raises(BrokerPortTaken, match=f'GITO_MQTT_PORT={port}'):
            await broker.start([])
    assert broker.pid is None


async def test_a_leftover_broker_on_the_same_data_directory_is_named(running: Running) -> None:
    kind: Kind = 'mosquitto' if running.broker.kind_in_use == 'mosquitto' else 'amqtt'
    twin = ManagedBroker(data_dir=running.data_dir, host='127.0.0.1', port=running.port, kind=kind)
    with pytest.raises(BrokerPortTaken, match=f'pid {running.broker.pid}'):
        await twin.start(running.credentials())


async def test_auto_prefers_mosquitto_and_falls_back_to_amqtt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _skip_if_missing('mosquitto')
    broker = ManagedBroker(data_dir=tmp_path / 'a', host='127.0.0.1', port=free_port(), kind='auto')
    await broker.start([])
    await broker.stop()
    assert broker.kind_in_use == 'mosquitto'
    monkeypatch.setattr(shutil, 'which', lambda _name: None)
    broker = ManagedBroker(data_dir=tmp_path / 'b', host='127.0.0.1', port=free_port(), kind='auto')
    await broker.start([])
    await broker.stop()
    assert broker.kind_in_use == 'amqtt'


async def test_mosquitto_serves_shared_subscriptions_to_the_service_account(tmp_path: Path) -> None:
    _skip_if_missing('mosquitto')
    port = free_port()
    broker = ManagedBroker(data_dir=tmp_path, host='127.0.0.1', port=port, kind='mosquitto')
    state = Running(broker, port, tmp_path, secrets.token_urlsafe(32), Device.new())
    await broker.start(state.credentials())
    try:
        async with state.service() as service:
            await service.subscribe(f'$share/gito/{TELEMETRY}', qos=1)
            async with state.as_device() as device:
                await device.publish(state.device.telemetry, b'shared', qos=1)
            assert (await first_message(service)).payload == b'shared'
    finally:
        await broker.stop()


async def test_mosquitto_keeps_queued_qos1_messages_across_a_restart(tmp_path: Path) -> None:
    _skip_if_missing('mosquitto')
    port = free_port()
    broker = ManagedBroker(data_dir=tmp_path, host='127.0.0.1', port=port, kind='mosquitto')
    state = Running(broker, port, tmp_path, secrets.token_urlsafe(32), Device.new())
    await broker.start(state.credentials())
    try:
        async with state.service(identifier='gito-consumer', clean_session=False) as service:
            await service.subscribe(TELEMETRY, qos=1)
        async with state.as_device() as device:
            await device.publish(state.device.telemetry, b'while away', qos=1)
        await broker.stop()
        await broker.start(state.credentials())
        async with state.service(identifier='gito-consumer', clean_session=False) as service:
            assert (await first_message(service)).payload == b'while away'
    finally:
        await broker.stop()


async def test_mosquitto_holds_what_gito_missed_up_to_the_configured_queue(tmp_path: Path) -> None:
    """Past its queue bound Mosquitto silently drops QoS 1 messages it already acknowledged to the device: the
    bound must be the one Gito configures (`GITO_MQTT_QUEUE_MESSAGES`; it was a fixed 100,000, 3 s at 30k msg/s)."""
    _skip_if_missing('mosquitto')
    port = free_port()
    broker = ManagedBroker(data_dir=tmp_path, host='127.0.0.1', port=port, kind='mosquitto', queue_messages=300)
    state = Running(broker, port, tmp_path, secrets.token_urlsafe(32), Device.new())
    await broker.start(state.credentials())
    try:
        async with state.service(identifier='gito-consumer', clean_session=False) as service:
            await service.subscribe(TELEMETRY, qos=1)
        async with state.as_device() as device:  # Gito is away (PostgreSQL down, say)
            for n in range(500):
                await device.publish(state.device.telemetry, str(n).encode(), qos=1)
        got: list[bytes] = []
        async with state.service(identifier='gito-consumer', clean_session=False) as service:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3):
                    async for message in service.messages:
                        got.append(bytes(message.payload))
        assert got == [str(n).encode() for n in range(300)]
        # ...and says so in its log, where Gito looks for it (`Platform._watch_broker_queue`: an error and a metric)
        assert broker.queue_overflows('gito-consumer') == 1
        assert broker.queue_overflows('gito-consumer') == 0  # counted once
    finally:
        await broker.stop()


async def test_gito_reports_the_broker_dropping_its_queue(
    platform: Platform, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    _skip_if_missing('mosquitto')
    port = free_port()
    broker = ManagedBroker(data_dir=tmp_path, host='127.0.0.1', port=port, kind='mosquitto', queue_messages=10)
    state = Running(broker, port, tmp_path, secrets.token_urlsafe(32), Device.new())
    await broker.start(state.credentials())
    watch = asyncio.create_task(platform._watch_broker_queue(broker, every_s=0.05))
    try:
        async with state.service(identifier=platform.mqtt_target.client_id, clean_session=False) as service:
            await service.subscribe(TELEMETRY, qos=1)
        async with state.as_device() as device:  # while Gito's consumer is away
            for n in range(30):
                await device.publish(state.device.telemetry, str(n).encode(), qos=1)
        for _ in range(100):
            if platform.link.queue_overflows:
                break
            await asyncio.sleep(0.05)
        assert platform.link.queue_overflows == 1
        assert 'gito_mqtt_queue_overflows_total 1\n' in metrics_text(platform)
        assert 'mqtt broker is dropping messages queued for gito' in caplog.text
    finally:
        watch.cancel()
        await broker.stop()


def test_the_default_queue_holds_a_minute_at_the_target_rate(tmp_path: Path) -> None:
    config = mosquitto_config(mqtt_dir=tmp_path, host='127.0.0.1', port=1883, password_file=tmp_path / 'p',
                              acl_file=tmp_path / 'a', log_file=tmp_path / 'l')
    bounds = ['max_queued_messages 2000000\n', f'max_queued_bytes {256 * 2**20}\n']
    assert all(bound in config for bound in bounds)
    compose_broker = (Path(__file__).resolve().parents[2] / 'deploy' / 'mosquitto' / 'mosquitto.conf').read_text()
    assert all(bound in compose_broker for bound in bounds)  # the production shape queues as much


def test_credential_files_round_trip_through_the_amqtt_parsers() -> None:
    device = Device.new()
    credentials = [BrokerCredential(SERVICE, mosquitto_hash('s'), None), device.credential()]
    acl = parse_acl(acl_file_text(credentials))
    assert acl[SERVICE] == ('#', '$share/#')
    assert acl[device.id] == (f'{device.tenant}/devices/{device.id}/#',)
    assert parse_passwords(password_file_text(credentials))[device.id] == credentials[1].mosquitto_hash


@pytest.mark.parametrize(
    ('requested', 'allowed', 'expected'),
    [
        ('t/devices/d/telemetry', 't/devices/d/#', True),
        ('t/devices/d', 't/devices/d/#', True),
        ('t/devices/d/commands/#', 't/devices/d/#', True),
        ('t/devices/e/telemetry', 't/devices/d/#', False),
        ('t/devices/+/telemetry', 't/devices/d/#', False),
        ('#', 't/devices/d/#', False),
        ('t/devices/dd/x', 't/devices/d/#', False),
        ('+/devices/+/telemetry', '#', True),
        ('a/b', 'a/+', True),
        ('a/b/c', 'a/+', False),
    ],
)
def test_filter_within(requested: str, allowed: str, expected: bool) -> None:
    assert filter_within(requested, allowed) is expected


@pytest.mark.parametrize('username', ['a:b', 'a b', '', 'a\nb'])
def test_unsafe_usernames_are_rejected(username: str) -> None:
    with pytest.raises(ValueError, match='username'):
        password_file_text([BrokerCredential(username, mosquitto_hash('x'), None)])


@pytest.mark.parametrize('prefix', ['', '/', 't/+/d/', 't/#', '$SYS/', 't/d\nuser x'])
def test_unsafe_prefixes_are_rejected(prefix: str) -> None:
    with pytest.raises(ValueError, match='prefix'):
        acl_file_text([BrokerCredential('device', mosquitto_hash('x'), prefix)])
