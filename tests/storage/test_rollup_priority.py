"""The rollup job runs its PostgreSQL backend at the lowest CPU priority where it can, and leaves none behind."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest
from sqlalchemy import text

from app.platform import Platform
from app.services.storage.backend_priority import (
    LOWEST,
    THIS_BACKEND,
    backend_clock,
    lower_autogroup,
    lower_priority,
    renice,
)
from tests.conftest import NewTenant
from tests.storage.conftest import new_device, store
from tests.storage.test_rollups import rollup


async def skip_unless_backends_are_ours_to_renice(platform: Platform) -> None:
    async with platform.db.system() as session:
        pid = await session.scalar(text('SELECT pg_backend_pid()'))
    try:
        backend = psutil.Process(int(pid))
        if os.geteuid() != 0 and backend.username() != psutil.Process().username():
            pytest.skip('PostgreSQL runs as another user here and Gito may not renice it')
    except psutil.Error:
        pytest.skip('PostgreSQL runs on another host or in another container')


@pytest.mark.native_storage
async def test_rollups_run_at_the_lowest_priority_on_a_backend_that_is_then_closed(
    storage: Platform, new_tenant: NewTenant,
) -> None:
    await skip_unless_backends_are_ours_to_renice(storage)
    admin = (await new_tenant()).principal
    device = await new_device(storage, admin)
    await store(storage, admin, device.id, [(datetime.now(UTC), 'power', 3.0)])
    for _ in range(300):  # a transaction open anywhere on the server (another test database too) holds runs back
        await storage.storage_jobs.refresh_rollups()
        if await rollup(storage, 'telemetry_1m', device.id):
            break
        await asyncio.sleep(0.1)
    backend = storage.storage_jobs.low_priority_backend
    assert backend is not None
    assert [row[1:] for row in await rollup(storage, 'telemetry_1m', device.id)] == [(1, 3.0, 3.0, 3.0, 3.0)]
    for _ in range(50):  # the backend exits once it sees its connection closed
        if not psutil.pid_exists(backend):
            break
        await asyncio.sleep(0.1)
    assert not psutil.pid_exists(backend)  # its backend ended: pooled work never runs at that priority


def autogroup_nice(pid: int) -> str | None:
    group = Path(f'/proc/{pid}/autogroup')
    return group.read_text().split()[-1] if group.exists() else None


async def test_a_backend_is_reniced_only_when_it_is_the_process_postgresql_named(storage: Platform) -> None:
    await skip_unless_backends_are_ours_to_renice(storage)
    async with storage.db.owner.connect() as connection:
        pid, started = (await connection.execute(text(THIS_BACKEND))).one()
        backend = psutil.Process(pid)
        assert not renice(pid, started + 60)  # a pid from another host that happens to exist here
        assert not renice(os.getpid(), psutil.Process().create_time())  # not a PostgreSQL process
        assert backend.nice() == 0
        assert os.sched_getscheduler(pid) == os.SCHED_OTHER
        assert await lower_priority(connection) == pid
        assert backend.nice() == LOWEST
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE  # preempted at once by any task that wakes
        group = autogroup_nice(pid)
        if group is not None:  # scheduling by session: the backend's own group (PostgreSQL gives it a session) too
            assert os.getsid(pid) == pid
            assert group == str(LOWEST)
        if os.getsid(0) != os.getpid():  # a process that shares its session: its group is left as it was
            assert not lower_autogroup(os.getpid())
        await connection.invalidate()


async def test_a_paced_step_is_timed_by_the_cpu_its_backend_used_not_by_the_wall_clock(storage: Platform) -> None:
    """On a saturated machine a low-priority step takes long on the wall clock while using little CPU: pauses are
    scaled by the CPU it used."""
    await skip_unless_backends_are_ours_to_renice(storage)
    async with storage.db.owner.connect() as connection:
        pid = int(await connection.scalar(text('SELECT pg_backend_pid()')) or 0)
        clock = backend_clock(pid)
        before = clock()
        await connection.execute(text('SELECT pg_sleep(0.5)'))  # waiting, as a starved backend does
        waited = clock() - before
        before = clock()
        await connection.execute(text('SELECT sum(i) FROM generate_series(1, 3000000) i'))
        worked = clock() - before
    assert waited < 0.1
    assert worked > 0.1
    assert backend_clock(None) is time.perf_counter  # a server elsewhere: the wall clock
