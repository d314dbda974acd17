"""Under load the writer prepares the next batch while the one before it commits, and a batch that needs nothing
else in its transaction goes in as one COPY in autocommit as the ingest role. Neither may lose or run ahead."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text

from app.ingest import state_flush
from app.ingest.batch_items import Prepared
from app.ingest.direct_copy import ingest_role
from app.ingest.latest import load_sequences
from app.ingest.payload import Message
from app.ingest.writer import BatchWriter, Inbound
from app.platform import Platform
from tests.conftest import NewTenant
from tests.ingest.conftest import copy_target
from tests.ingest.test_mqtt_ingest import make_device

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
async def copy_relation(database_url: str) -> str:
    """What the ingest role copies into on this server's layout."""
    return (await copy_target(database_url))[1]


@pytest.fixture
async def writer(platform: Platform) -> AsyncIterator[BatchWriter]:
    """One reading a batch, latest values due at every batch: each offer below is a batch of its own."""
    writer = BatchWriter(platform.writer._dsn, platform.bus, max_rows=1, latest_interval_s=0)
    yield writer
    await writer.stop()


def burst(writer: BatchWriter, tenant_id: UUID, device_id: UUID, seqs: range) -> list[asyncio.Future[None]]:
    """One offer per message, all queued at once, as a busy MQTT socket hands them over."""
    loop = asyncio.get_running_loop()
    done = []
    for seq in seqs:
        future: asyncio.Future[None] = loop.create_future()
        message = Message(T0 + timedelta(seconds=seq), seq, {'v': float(seq)}, True)
        writer.offer([Inbound(tenant_id, device_id, [message], datetime.now(UTC), done=future)])
        done.append(future)
    return done


async def stored(platform: Platform, tenant_id: UUID, device_id: UUID) -> list[float]:
    async with platform.db.tenant(tenant_id) as session:
        rows = await session.execute(text('SELECT value FROM telemetry WHERE device_id = :id ORDER BY ts'),
                                     {'id': device_id})
        return [value for (value,) in rows]


async def last_seq(platform: Platform, device_id: UUID) -> int | None:
    async with platform.db.system() as session:
        seq: int | None = await session.scalar(text('SELECT last_seq FROM devices WHERE id = :id'), {'id': device_id})
        return seq


async def test_batches_with_more_queued_behind_them_go_in_as_one_copy_each(
    platform: Platform, new_tenant: NewTenant, writer: BatchWriter,
) -> None:
    admin = (await new_tenant()).principal
    device = await make_device(platform, admin)
    await writer.start()
    await asyncio.wait_for(asyncio.gather(*burst(writer, admin.tenant_id, device.id, range(1, 5))), timeout=30)
    # The first three had a batch queued behind them: one COPY each (the last one too while a flush aside was
    # still being written; else it took the latest values and device counters along in a transaction).
    assert writer.stats.copied_alone >= 3
    assert writer.stats.batches == 4
    await writer.stop()  # what latest values and counters are still pending are written now
    assert await stored(platform, admin.tenant_id, device.id) == [1.0, 2.0, 3.0, 4.0]
    latest = await platform.telemetry.latest(admin, device.id)
    assert [(item.key, item.value) for item in latest] == [('v', 4.0)]
    assert await last_seq(platform, device.id) == 4


async def test_a_role_revoked_between_bursts_falls_back_and_loses_nothing(
    platform: Platform, new_tenant: NewTenant, writer: BatchWriter, caplog: pytest.LogCaptureFixture,
    copy_relation: str,
) -> None:
    admin = (await new_tenant()).principal
    device = await make_device(platform, admin)
    role = ingest_role(platform.settings.app_db_role)
    await writer.start()
    await asyncio.wait_for(asyncio.gather(*burst(writer, admin.tenant_id, device.id, range(1, 4))), timeout=30)
    assert writer.stats.copied_alone > 0
    async with platform.db.system() as session:  # per database: other test databases keep their grant
        await session.execute(text(f'REVOKE INSERT ON {copy_relation} FROM "{role}"'))
    try:
        await asyncio.wait_for(asyncio.gather(*burst(writer, admin.tenant_id, device.id, range(4, 7))), timeout=30)
    finally:
        async with platform.db.system() as session:
            await session.execute(text(f'GRANT INSERT ON {copy_relation} TO "{role}"'))
    assert not writer.copies_directly
    assert 'ingest role no longer usable' in caplog.text
    assert await stored(platform, admin.tenant_id, device.id) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


async def test_a_batch_prepared_ahead_is_never_flushed_before_it_commits(
    platform: Platform, new_tenant: NewTenant, writer: BatchWriter,
) -> None:
    """Its sequence marks written while it is uncommitted, a crash would have the broker's redelivery of it dropped
    as duplicates. So: hold the second batch's commit, let the third be prepared behind it, crash, redeliver."""
    admin = (await new_tenant()).principal
    device = await make_device(platform, admin)
    held = asyncio.Event()
    commit = writer._commit

    async def hold_second(prepared: Prepared) -> Any:
        if any(message.seq == 2 for entries in prepared.messages.values() for _, message in entries):
            held.set()
            await asyncio.Event().wait()  # PostgreSQL that never answers
        return await commit(prepared)

    writer._commit = hold_second  # type: ignore[method-assign]
    await writer.start()
    done = burst(writer, admin.tenant_id, device.id, range(1, 4))
    await asyncio.wait_for(done[0], timeout=30)
    await asyncio.wait_for(held.wait(), timeout=30)
    for _ in range(100):  # the third batch is prepared while the second is held
        if writer._ahead is not None:
            break
        await asyncio.sleep(0.01)
    assert writer._ahead is not None
    await writer.state.wait()  # any flush aside that was started is written now
    assert await last_seq(platform, device.id) == 1  # no mark of a batch that has not committed
    assert writer._task is not None
    writer._task.cancel()  # the crash
    with contextlib.suppress(asyncio.CancelledError):
        await writer._task

    restarted = BatchWriter(platform.writer._dsn, platform.bus, max_rows=1, latest_interval_s=0)
    restarted.restore_sequences(await load_sequences(platform.db))
    await restarted.start()
    try:  # the broker delivers what was never acknowledged again
        await asyncio.wait_for(asyncio.gather(*burst(restarted, admin.tenant_id, device.id, range(2, 4))), timeout=30)
    finally:
        await restarted.stop()
    assert await stored(platform, admin.tenant_id, device.id) == [1.0, 2.0, 3.0]
    assert restarted.stats.duplicates == 0
    assert await last_seq(platform, device.id) == 3


async def test_a_copy_connection_killed_under_load_is_made_again_and_loses_nothing(
    platform: Platform, new_tenant: NewTenant, writer: BatchWriter,
) -> None:
    admin = (await new_tenant()).principal
    device = await make_device(platform, admin)
    await writer.start()
    await asyncio.wait_for(asyncio.gather(*burst(writer, admin.tenant_id, device.id, range(1, 4))), timeout=30)
    assert writer._copier is not None and writer._copier._connection is not None
    killed = writer._copier._connection.get_server_pid()
    async with platform.db.system() as session:
        assert await session.scalar(text('SELECT pg_terminate_backend(:pid)'), {'pid': killed})
    await asyncio.wait_for(asyncio.gather(*burst(writer, admin.tenant_id, device.id, range(4, 8))), timeout=30)
    # Whether the next COPY failed and was retried, or the connection was seen closed first and made again, depends
    # on when the termination reached the client: either way, nothing is lost or stored twice.
    assert writer.healthy
    assert writer._copier._connection.get_server_pid() != killed
    assert writer.stats.copied_alone > 3  # copies go on on the new connection
    assert await stored(platform, admin.tenant_id, device.id) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert writer.stats.duplicates == 0


@pytest.mark.parametrize(('devices', 'inline'), [(2, True), (3, False)])
async def test_only_a_few_devices_latest_values_go_inline_with_a_batch(
    platform: Platform, new_tenant: NewTenant, writer: BatchWriter, monkeypatch: pytest.MonkeyPatch,
    devices: int, inline: bool,
) -> None:
    """Inline, the latest values of thousands of devices held a batch (and all behind it) for half a second."""
    monkeypatch.setattr(state_flush, 'INLINE_DEVICES', 2)
    admin = (await new_tenant()).principal
    made = [await make_device(platform, admin) for _ in range(devices)]
    await writer.start()
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    writer.offer([Inbound(admin.tenant_id, device.id, [Message(T0, None, {'v': 1.0})], datetime.now(UTC),
                          done=done if index == 0 else None) for index, device in enumerate(made)])
    await asyncio.wait_for(done, timeout=30)
    for _ in range(200):  # written inline with the batch, or aside right after it
        if not writer.state.pending and not writer.state.busy:
            break
        await asyncio.sleep(0.02)
    assert (writer.stats.copied_alone, writer.state.aside_writes) == ((0, 0) if inline else (1, 1))
    for device in made:
        latest = await platform.telemetry.latest(admin, device.id)
        assert [(item.key, item.value) for item in latest] == [('v', 1.0)]


async def test_a_batch_that_cannot_be_encoded_ahead_is_encoded_at_commit(
    platform: Platform, new_tenant: NewTenant, writer: BatchWriter, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    admin = (await new_tenant()).principal
    device = await make_device(platform, admin)

    def broken(prepared: Prepared) -> bool:
        raise RuntimeError('encoder bug')

    monkeypatch.setattr(writer._encoder, 'encode_known', broken)
    await writer.start()
    await asyncio.wait_for(asyncio.gather(*burst(writer, admin.tenant_id, device.id, range(1, 4))), timeout=30)
    assert 'encoding a batch ahead failed' in caplog.text
    assert await stored(platform, admin.tenant_id, device.id) == [1.0, 2.0, 3.0]
