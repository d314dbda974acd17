"""The rollup job's PostgreSQL backend at the lowest CPU priority, where the server runs on this host.

Where Gito, its broker and PostgreSQL share a machine, each rollup run's backend took a core for 1 to 1.5 s every
15 s at 10,000 msg/s, and the ingest writer's backend queued behind it (`bench/ingest.py --rate 10000 --seconds
60`, one run each: p99 publish→commit 343 ms, against 133 ms with no rollups, 209 ms with the rollup backend at
nice 19; runs on this shared machine vary by a third, and three later pairs showed no clear p99 difference). The
rollups can wait; ingest latency cannot. PostgreSQL has no priorities of its own, so Gito renices the backend's
process. It can only where the server is local and runs as Gito's user (the embedded server) or Gito may renice
others' processes. A pid reported by a server on another host or in another container is left alone: the process
must exist here, be a PostgreSQL process and have started when the server says the backend started.

A process's nice value only ranks it among the processes of its own scheduling group. Where the kernel groups by
session (autogroup: `/proc/sys/kernel/sched_autogroup_enabled`, on by default in many distributions' kernels, and on
this machine) and PostgreSQL starts every backend in a session of its own (it calls `setsid`), each backend is a
group alone, with a full group's share against Gito's and the broker's: the reniced backend took as much CPU as
before, and at 30,000 msg/s every rollup run showed in ingest latency (`bench/ingest.py --rate 30000 --seconds 90`:
p99 publish→commit 405-1,497 ms over eight runs, 266 ms with no rollups; 404 and 495 ms with the group lowered).
So the backend's group is lowered too (`/proc/<pid>/autogroup`), where the backend leads a session of its own
(PostgreSQL's backends do, and fork nothing): the nice value of a shared group would lower other processes too.

Even so, a run's backend still took 40-60% of a core at moments when the machine had no idle time (sampled every
0.5 s at 20,000 msg/s), and ingest latency rose with each run: a low weight ranks a task behind others, but a task
that wakes may still wait for the running one's slice. Under SCHED_IDLE the kernel preempts the backend at once for
any other task that wakes and counts a CPU running only it as idle when it places one, so the backend is also put
under that policy (allowed for one's own processes). `bench/ingest.py --rate 20000 --seconds 90`, four alternating
pairs: seconds whose p99 publish→commit was over 250 ms 25, 7, 2, 29 of 81 with SCHED_IDLE against 51, 16, 2, 35
without; p99 503, 289, 174, 1,031 against 1,484, 463, 217, 420 ms (the machine's speed moved by a quarter between
runs; in two pairs with rollups off altogether: 4 and 15 seconds against 9 and 34 with them).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable

import psutil
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

LOWEST = 19
THIS_BACKEND = """
SELECT pid, extract(epoch FROM backend_start)::float8 FROM pg_stat_activity WHERE pid = pg_backend_pid()"""
SAME_START_S = 1.0  # the kernel's start time is in clock ticks; PostgreSQL's is taken just after the fork


async def lower_priority(connection: AsyncConnection) -> int | None:
    """Renice the connection's backend to the lowest priority; its pid, or None where that is not possible from
    here. The caller must not hand a reniced connection back to a pool (invalidate it): the priority stays with it."""
    pid, started = (await connection.execute(text(THIS_BACKEND))).one()
    await connection.commit()
    return int(pid) if renice(int(pid), float(started)) else None


def renice(pid: int, started: float) -> bool:
    try:
        process = psutil.Process(pid)
        if abs(process.create_time() - started) > SAME_START_S or 'postgres' not in process.name():
            return False
        process.nice(LOWEST)
    except (psutil.Error, OSError):
        return False
    idle_policy(pid)
    lower_autogroup(pid)
    return True


def idle_policy(pid: int) -> bool:
    """SCHED_IDLE for the process: the kernel then preempts it at once for any other task that wakes, and counts
    a CPU running only it as idle when placing a waking task. Whether it was set."""
    try:
        os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
    except OSError:
        return False
    return True


def lower_autogroup(pid: int) -> bool:
    """The lowest priority for the autogroup of a process that leads its own session (as a PostgreSQL backend
    does); whether it was set. Where the kernel has autogroups but does not use them, setting it changes nothing."""
    with contextlib.suppress(OSError):
        if os.getsid(pid) == pid:
            with open(f'/proc/{pid}/autogroup', 'w') as group:
                group.write(f'{LOWEST}\n')
            return True
    return False


def backend_clock(pid: int | None) -> Callable[[], float]:
    """The CPU seconds a backend process here has used so far, as a clock (wall time where there is no such
    process, e.g. the server is on another host): what a paced job measures its steps by."""
    if pid is None:
        return time.perf_counter
    process = psutil.Process(pid)

    def cpu_s() -> float:
        try:
            times = process.cpu_times()
        except psutil.Error:
            return time.perf_counter()  # gone: the job's connection is closing
        return float(times.user + times.system)

    return cpu_s
