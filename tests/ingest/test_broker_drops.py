"""An external Mosquitto dropping queued messages is reported from its `$SYS` total (real Mosquitto, real drops)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest

from app.api.metrics import metrics_text
from app.ingest.broker import BrokerCredential, acl_file_text, password_file_text
from app.ingest.broker_drops import BrokerDropWatch
from app.ingest.broker_mosquitto import mosquitto_config
from app.ingest.mqtt_consumer import MqttTarget
from app.platform import Platform
from app.services.credentials import mosquitto_hash
from tests.ingest.test_broker import SERVICE, TELEMETRY, Device, free_port


@dataclass
class External:
    port: int
    service_password: str
    device: Device

    def target(self, username: str, password: str) -> MqttTarget:
        return MqttTarget('127.0.0.1', self.port, username, password, client_id=f'gito-{secrets.token_hex(4)}')

    def client(self, username: str, password: str, **options: object) -> aiomqtt.Client:
        return aiomqtt.Client('127.0.0.1', self.port, username=username, password=password, **options)  # type: ignore[arg-type]


@pytest.fixture
async def external(tmp_path: Path) -> AsyncIterator[External]:
    """A Mosquitto as an operator runs it: Gito's ACL file, a small queue, statistics every second."""
    if shutil.which('mosquitto') is None:
        pytest.fail('mosquitto is not installed; install it (apt-get install mosquitto)')
    port, password, device = free_port(), secrets.token_urlsafe(16), Device.new()
    credentials = [BrokerCredential(SERVICE, mosquitto_hash(password), None), device.credential()]
    (tmp_path / 'passwd').write_text(password_file_text(credentials))
    (tmp_path / 'acl').write_text(acl_file_text(credentials))
    config = mosquitto_config(mqtt_dir=tmp_path, host='127.0.0.1', port=port, password_file=tmp_path / 'passwd',
                              acl_file=tmp_path / 'acl', log_file=tmp_path / 'mosquitto.log', queue_messages=10)
    (tmp_path / 'mosquitto.conf').write_text(config + 'sys_interval 1\n')
    process = await asyncio.create_subprocess_exec('mosquitto', '-c', str(tmp_path / 'mosquitto.conf'))
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection('127.0.0.1', port)
                writer.close()
                break
            await asyncio.sleep(0.05)
        yield External(port, password, device)
    finally:
        process.terminate()
        await process.wait()


async def test_drops_of_queued_messages_are_counted_and_logged(
    external: External, caplog: pytest.LogCaptureFixture,
) -> None:
    watch = BrokerDropWatch(external.target(SERVICE, external.service_password))
    task = asyncio.create_task(watch.run())
    try:
        async with external.client(SERVICE, external.service_password, identifier='gito-away',
                                   clean_session=False) as consumer:
            await consumer.subscribe(TELEMETRY, qos=1)
        for _ in range(50):  # the first report is the baseline: nothing dropped yet
            if watch.reporting:
                break
            await asyncio.sleep(0.1)
        assert watch.reporting and watch.dropped == 0
        async with external.client(external.device.id, external.device.token) as device:  # while Gito is away
            for n in range(30):
                await device.publish(external.device.telemetry, str(n).encode(), qos=1)
        for _ in range(50):
            if watch.dropped:
                break
            await asyncio.sleep(0.1)
        assert watch.dropped == 20  # 10 queued, the rest dropped although the device was told they arrived
        assert 'mqtt broker dropped queued messages' in caplog.text
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_an_account_that_cannot_read_the_statistics_is_warned_about(
    external: External, caplog: pytest.LogCaptureFixture,
) -> None:
    watch = BrokerDropWatch(external.target(external.device.id, external.device.token), deaf_after_s=2.5)
    task = asyncio.create_task(watch.run())
    try:
        await asyncio.sleep(3)
        assert 'mqtt broker statistics not received' in caplog.text
        assert watch.dropped == 0
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_a_smaller_total_is_a_restarted_broker_not_a_negative_drop() -> None:
    watch = BrokerDropWatch(MqttTarget('127.0.0.1', 1, None, None, client_id='gito'))
    for total in (7, 7, 12, 3, 5):
        watch.observe(total)
    assert watch.dropped == 5 + 3 + 2  # 7 before the watch began is not counted


async def test_gito_on_an_external_broker_watches_it(running_platform: Platform) -> None:
    assert running_platform.resolved.mqtt_url is not None  # the tests' broker is external
    assert running_platform.broker_drops is not None
    assert 'gito_mqtt_broker_dropped_total 0\n' in metrics_text(running_platform)
