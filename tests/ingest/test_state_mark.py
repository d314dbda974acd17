"""Silence is judged where the device state is written up to: news still held in memory is not taken for silence."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from app.config import Settings
from app.db import migrate
from app.embedded.postgres import start_embedded_postgres
from app.ingest.broker_hold import SETTLE_S, BrokerHold
from app.ingest.state_mark import STATE_LAG_MAX_S, STATE_LAG_S, StateMark
from app.models.schemas import DeviceCreate
from app.platform import Platform, app_role_password
from tests.conftest import NewTenant
from tests.faults import CuttableProxy, proxied_url, proxy_for
from tests.ingest.test_mqtt_ingest import eventually, publish
from tests.support import SECRET


@asynccontextmanager
async def instance_row(database_url: str, name: str, flushed_through: datetime, *, alive: bool = True
                       ) -> AsyncIterator[None]:
    """An ingest instance's report; `alive`: its connection stays open (else the backend it names is gone)."""
    reporter = await asyncpg.connect(database_url)
    try:
        pid = await reporter.fetchval('SELECT pg_backend_pid()') if alive else 2**31 - 1
        await reporter.execute('INSERT INTO ingest_instances (id, backend_pid, flushed_through) VALUES ($1, $2, $3)',
                               name, pid, flushed_through)
        yield
    finally:
        await reporter.execute('DELETE FROM ingest_instances WHERE id = $1', name)
        await reporter.close()


async def state_lag(platform: Platform) -> float:
    async with platform.db.system() as session:
        return float(await session.scalar(text(f'SELECT {STATE_LAG_S}')) or 0)


async def test_the_lag_is_the_live_instance_furthest_behind_and_gone_ones_do_not_count(
    platform: Platform, database_url: str,
) -> None:
    now = datetime.now(UTC)
    assert await state_lag(platform) == 0
    async with (instance_row(database_url, 'behind', now - timedelta(seconds=100)),
                instance_row(database_url, 'current', now),
                instance_row(database_url, 'killed', now - timedelta(hours=1), alive=False)):
        assert 100 <= await state_lag(platform) < 110
        async with instance_row(database_url, 'stuck', now - timedelta(hours=2)):  # a writer stuck for hours
            assert await state_lag(platform) == STATE_LAG_MAX_S  # does not keep every device online forever
    assert await state_lag(platform) == 0


async def test_presence_waits_for_the_state_to_be_written(
    platform: Platform, new_tenant: NewTenant, database_url: str,
) -> None:
    admin = (await new_tenant()).principal
    device, _ = await platform.devices.create(admin, DeviceCreate(name='Pump', offline_after_s=5))
    async with platform.db.system() as session:
        await session.execute(text("UPDATE devices SET status = 'online', last_seen = now() - interval '60 seconds' "
                                   'WHERE id = :id'), {'id': device.id})
    async with instance_row(database_url, 'slow-flush', datetime.now(UTC) - timedelta(seconds=90)):
        assert device.id not in {d for _, d in await platform.presence.sweep()}  # it may have spoken since
    assert device.id in {d for _, d in await platform.presence.sweep()}


async def test_a_device_whose_news_is_not_yet_written_stays_online(
    running_platform: Platform, new_tenant: NewTenant, database_url: str,
) -> None:
    """A slow flush of device state (held here by a lock on another device's row that the same flush updates)
    leaves `last_seen` behind; the presence sweep must not turn the device that keeps talking offline meanwhile."""
    platform = running_platform
    admin = (await new_tenant()).principal
    talker, _ = await platform.devices.create(admin, DeviceCreate(name='Talker', offline_after_s=5))
    blocker, _ = await platform.devices.create(admin, DeviceCreate(name='Blocker'))
    status = f'{admin.tenant_id}/devices/{{}}/status'
    await publish(platform, status.format(talker.id), b'{}')
    await eventually(lambda: platform.devices.get(admin, talker.id), lambda d: d.status == 'online')
    started = time.monotonic()
    lock = await asyncpg.connect(database_url)
    try:
        async with lock.transaction():
            await lock.execute('SELECT 1 FROM devices WHERE id = $1 FOR UPDATE', blocker.id)
            await publish(platform, status.format(blocker.id), b'{}')
            await asyncio.sleep(2)
            spoke = datetime.now(UTC)
            await publish(platform, status.format(talker.id), b'{}')  # news held in memory behind the blocked flush
            await asyncio.sleep(7.5 - (time.monotonic() - started))  # its last written sign of life: 7.5 s ago
            assert await state_lag(platform) >= 5
            assert talker.id not in {d for _, d in await platform.presence.sweep()}
            assert (await platform.devices.get(admin, talker.id)).status == 'online'
        written = await eventually(lambda: platform.devices.get(admin, talker.id),
                                   lambda d: d.last_seen is not None and d.last_seen > spoke)
        assert written.last_seen is not None and written.last_seen > spoke  # written once the flush got through
    finally:
        await lock.close()
    silent = await eventually(lambda: platform.devices.get(admin, talker.id), lambda d: d.status == 'offline',
                              seconds=15)
    assert silent.status == 'offline'  # and once silent for real, it goes offline as before
    assert await state_lag(platform) < 3


@pytest.fixture
async def mqtt_proxy(mqtt_url: str, settings_env: None, monkeypatch: pytest.MonkeyPatch,
                     ) -> AsyncIterator[CuttableProxy]:
    """Gito's MQTT_URL goes through a proxy the test can cut (request it before `platform`); devices still reach
    the broker itself."""
    proxy = proxy_for(mqtt_url)
    await proxy.start()
    monkeypatch.setenv('MQTT_URL', proxied_url(mqtt_url, proxy))
    yield proxy
    await proxy.stop()


async def test_a_device_whose_news_waits_at_the_broker_stays_online(
    mqtt_proxy: CuttableProxy, mqtt_url: str, running_platform: Platform, new_tenant: NewTenant,
) -> None:
    """Gito's link to the broker breaks while a device goes on talking: the broker keeps the device's messages for
    Gito's session, and neither the presence sweep nor the reported lag may take that for silence."""
    platform = running_platform
    admin = (await new_tenant()).principal
    talker, _ = await platform.devices.create(admin, DeviceCreate(name='Talker', offline_after_s=5))
    status = f'{admin.tenant_id}/devices/{talker.id}/status'
    await publish(platform, status, b'{}', url=mqtt_url)
    await eventually(lambda: platform.devices.get(admin, talker.id), lambda d: d.status == 'online')
    started = time.monotonic()
    await mqtt_proxy.cut()
    await asyncio.sleep(1)
    assert not platform.link.connected
    spoke = datetime.now(UTC)
    await publish(platform, status, b'{}', url=mqtt_url)  # kept for Gito's session while its link is down
    await asyncio.sleep(7.5 - (time.monotonic() - started))  # its last sign of life Gito received: 7.5 s ago
    assert await state_lag(platform) >= 5
    assert talker.id not in {d for _, d in await platform.presence.sweep()}
    assert (await platform.devices.get(admin, talker.id)).status == 'online'
    await mqtt_proxy.restore()
    written = await eventually(lambda: platform.devices.get(admin, talker.id),
                               lambda d: d.last_seen is not None and d.last_seen > spoke, seconds=10)
    assert written.status == 'online' and written.last_seen is not None and written.last_seen > spoke
    assert await eventually(lambda: state_lag(platform), lambda lag: lag < 3, seconds=10) < 3  # caught up


def test_the_hold_lasts_until_reading_has_gone_on_undisturbed_for_a_while() -> None:
    now = [100.0]
    hold = BrokerHold(clock=lambda: now[0])
    hold.stopped()  # before any connection: nothing of a session can be waiting yet, but a pause still counts
    assert hold.since() == 100.0
    hold.reading()
    now[0] += SETTLE_S / 2
    hold.stopped()  # paused again at once: the broker had more queued
    now[0] += 5
    hold.reading()
    now[0] += SETTLE_S / 2
    assert hold.since() == 100.0  # still from the first pause
    now[0] += SETTLE_S
    assert hold.since() is None
    hold.reading()  # reading on: nothing held
    assert hold.since() is None


async def test_an_unreachable_database_is_reported_once_not_every_round(caplog: pytest.LogCaptureFixture) -> None:
    mark = StateMark('postgresql://postgres@127.0.0.1:1/unreachable', lambda: datetime.now(UTC))
    for _ in range(3):
        await mark.report()  # does not raise: the next round tries again
    warnings = [r for r in caplog.records if r.getMessage() == 'could not report how far device state is written']
    assert len(warnings) == 1
    await mark.stop()


async def test_the_report_is_current_only_while_it_stands_on_an_open_connection(database_url: str) -> None:
    idle = StateMark(database_url, lambda: datetime.now(UTC))
    assert idle.current()  # not reporting at all (not ingesting): nothing of it to wait for
    mark = StateMark(database_url, lambda: datetime.now(UTC), every_s=3600)
    mark.start()
    try:
        for _ in range(100):  # the first round reports at once
            if mark.current():
                break
            await asyncio.sleep(0.05)
        assert mark.current()
        assert mark._connection is not None
        mark._connection.terminate()  # the database went away (or the connection with it)
        assert not mark.current()
        await mark.report()  # the next round reconnects
        assert mark.current()
    finally:
        await mark.stop()
    unreachable = StateMark('postgresql://postgres@127.0.0.1:1/unreachable', lambda: datetime.now(UTC), every_s=3600)
    unreachable.start()
    try:
        await asyncio.sleep(0.2)
        assert not unreachable.current()
    finally:
        await unreachable.stop()


async def test_instances_cut_off_by_a_server_restart_count_until_they_report_again(tmp_path: Path) -> None:
    """The restart ends every instance's connection; the first to reconnect must not sweep away news another one
    still holds (its last report counts a while), nor wait for an instance that was gone long before."""
    url, server = await asyncio.to_thread(start_embedded_postgres, tmp_path)
    try:
        settings = Settings(secret_key=SECRET)
        await migrate(url, role=settings.app_db_role, password=app_role_password(settings))
        reporter = await asyncpg.connect(url)
        await reporter.execute("""
            INSERT INTO ingest_instances (id, backend_pid, flushed_through, updated_at) VALUES
                ('cut-off', pg_backend_pid(), now() - interval '40 seconds', now()),
                ('gone-before', 2147483647, now() - interval '2 hours', now() - interval '1 hour')""")
        await reporter.close()
        await asyncio.to_thread(server.cleanup)  # the server stops and starts again
        url, server = await asyncio.to_thread(start_embedded_postgres, tmp_path)
        reconnected = await asyncpg.connect(url)
        try:
            lag = await reconnected.fetchval(f'SELECT {STATE_LAG_S}')
        finally:
            await reconnected.close()
        assert 40 <= lag < 60  # the cut-off instance's report stands; the one gone before would say 600
    finally:
        await asyncio.to_thread(server.cleanup)
