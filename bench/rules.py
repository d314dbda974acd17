"""Rule engine cost: ingest throughput with 10,000 stream rules on versus off, and commit→alarm latency.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python bench/rules.py

A scratch database `gito_bench_rules` is created on the server DATABASE_URL names and dropped afterwards (the
app role is `gito_bench_rules_app`, so the password of the cluster's usual `gito_app` is left alone). One process
builds the Platform as `bench/ingest.py`'s child does and starts the two parts of it on this path: the event bus
and the batch writer, whose commit listener is the real RuleEngine. `--devices` devices (default 5,000) get two
device-scoped stream rules each (10,000): `t > 90` on every device, and by turns a range with hysteresis, a
comparison of two keys, a rate of change or a composite AND; default options (auto-clear on the first false
reading). MQTT and HTTP decoding are left out: `Inbound` items of four numeric keys are handed to
`platform.writer.submit` as fast as the writer takes them, so the writer and the engine are the only work.

Rounds alternate rules off (every rule disabled: the engine runs with an empty index) and on, `--messages` each,
in the same process; throughput is messages committed per second, counted by a commit listener registered after
the engine (the writer awaits its listeners before taking the next batch, so engine time is ingest time), until
the round's alarm rows are written too (the engine writes them from a task of its own). One
message in `--hot-every` carries `t = 95`, raising an alarm that the next reading of that device clears.
Commit→alarm: the writer publishes `telemetry_stored` right after a batch commits and the alarm service publishes
`alarm_changed` right after the alarm row commits; the bench stamps both (a bus subscription's filter runs at
publish time) and pairs each raise with the commit of the batch that carried the hot reading.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from collections import defaultdict, deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

NAMESPACE = uuid.UUID('0d5e7a52-8f8e-4b0c-a9a4-3c0f5e2b6d11')
BENCH_DB = 'gito_bench_rules'
BENCH_ROLE = 'gito_bench_rules_app'
TENANT = uuid.uuid5(NAMESPACE, 'tenant')
ROOT = Path(__file__).resolve().parent.parent
HOT = 95.0


def device_ids(count: int) -> list[uuid.UUID]:
    return [uuid.uuid5(NAMESPACE, f'device-{index}') for index in range(count)]


def second_rule(index: int) -> dict[str, Any]:
    """Four stream rule types by turns; none of them is true for the bench's readings."""
    conditions: list[dict[str, Any]] = [
        {'type': 'range', 'key': 'p', 'direction': 'high', 'raise_at': 1100.0, 'clear_at': 1050.0},
        {'type': 'comparison', 'left': 'h', 'op': '>', 'right': 't', 'offset': 200.0},
        {'type': 'rate', 'key': 'v', 'op': '>', 'per_minute': 1000.0, 'window_s': 300},
        {'type': 'composite', 'mode': 'and', 'conditions': [
            {'type': 'threshold', 'key': 't', 'op': '>', 'value': 90.0},
            {'type': 'threshold', 'key': 'h', 'op': '>', 'value': 200.0}]},
    ]
    return conditions[index % 4]


async def provision(owner: Any, devices: list[uuid.UUID]) -> int:
    await owner.execute("INSERT INTO tenants (id, name) VALUES ($1, 'Bench') ON CONFLICT DO NOTHING", TENANT)
    await owner.copy_records_to_table('devices', columns=('id', 'tenant_id', 'name', 'token_sha256',
                                                          'mqtt_password_hash', 'type'),
                                      records=[(d, TENANT, f'd{i}', 'x', 'x', 'sensor') for i, d in enumerate(devices)])
    now = datetime.now(UTC)
    options = json.dumps({'debounce_s': 0, 'clear_after_s': 0, 'clear_after_readings': 0, 'cooldown_s': 0,
                          'auto_clear': True, 'schedule': [], 'timezone': 'UTC'})
    records = []
    for index, device in enumerate(devices):
        scope = json.dumps({'kind': 'device', 'device_id': str(device), 'device_type': None})
        for number, condition in enumerate(({'type': 'threshold', 'key': 't', 'op': '>', 'value': 90.0},
                                            second_rule(index))):
            records.append((uuid.uuid4(), TENANT, f'd{index} rule {number}', False, 'major', scope,
                            json.dumps(condition), options, now, now))
    await owner.copy_records_to_table('rules', columns=('id', 'tenant_id', 'name', 'enabled', 'severity', 'scope',
                                                        'condition', 'options', 'created_at', 'updated_at'),
                                      records=records)
    return len(records)


class Probe:
    """Counts committed messages and pairs each alarm raise with the commit of the batch that carried it."""

    def __init__(self) -> None:
        self.committed = 0
        self.hot_commits: dict[uuid.UUID, deque[float]] = defaultdict(deque)
        self.latencies: list[float] = []
        self.raised = 0
        self.measuring = False

    def on_stored(self, event: Any) -> bool:  # runs when the writer publishes, right after its commit
        hot = event.readings[0].value == HOT  # `t` comes first; the same check whether rules are on or off
        if hot and self.measuring:
            self.hot_commits[event.device_id].append(time.perf_counter())
        return False

    def on_alarm(self, event: Any) -> bool:  # runs when the alarm service publishes, right after its commit
        if event.transition == 'raised':
            now = time.perf_counter()
            pending = self.hot_commits.get(event.device_id)
            if pending:
                committed_at = pending.popleft()
                if self.measuring:
                    self.raised += 1
                    self.latencies.append(now - committed_at)
        return False

    async def listener(self, events: list[Any]) -> None:
        self.committed += sum(len(event.readings) for event in events) // 4


def make_items(devices: list[uuid.UUID], count: int, *, start: int, hot_every: int) -> list[Any]:
    from app.ingest.payload import Message
    from app.ingest.writer import Inbound

    base = datetime.now(UTC) - timedelta(hours=1)
    items = []
    for number in range(start, start + count):
        ts = base + timedelta(microseconds=number)
        turn, index = divmod(number, len(devices))
        t = HOT if hot_every and (turn + index) % hot_every == 0 else 20.0 + number % 10
        readings: dict[str, Any] = {'t': t, 'h': float(number % 100), 'p': 1013.25, 'v': 3.3}
        items.append(Inbound(tenant_id=TENANT, device_id=devices[index], messages=[Message(ts=ts, seq=None,
                                                                                   readings=readings)],
                             received_at=ts))
    return items


async def run_round(platform: Any, probe: Probe, items: list[Any]) -> tuple[float, float]:
    """Messages committed per second of wall time, and per second of this process's CPU time."""
    target = probe.committed + len(items)
    started, cpu = time.perf_counter(), time.process_time()
    for item in items:
        await platform.writer.submit(item)
    while probe.committed < target:  # noqa: ASYNC110 - the bench waits for its own counter
        await asyncio.sleep(0.002)
    await platform.rule_engine.settled()  # its alarm rows too: they are written off the writer's path
    return len(items) / (time.perf_counter() - started), len(items) / (time.process_time() - cpu)


async def set_rules(owner: Any, platform: Any, *, enabled: bool) -> None:
    await owner.execute('UPDATE rules SET enabled = $1 WHERE tenant_id = $2', enabled, TENANT)
    platform.rule_engine.invalidate(TENANT)


async def bench(args: argparse.Namespace, url: str) -> dict[str, Any]:
    import asyncpg

    from app.config import Settings
    from app.db import migrate
    from app.platform import Platform, Resolved, app_role_password

    settings = Settings(database_url=url, mqtt_url='mqtt://127.0.0.1:1', redis_url=None, secret_key='bench-rules',
                        app_db_role=BENCH_ROLE, data_dir=Path('/tmp/gito-bench-rules'))
    await migrate(url, role=settings.app_db_role, password=app_role_password(settings))
    owner = await asyncpg.connect(url)
    devices = device_ids(args.devices)
    rules = await provision(owner, devices)
    platform = Platform(settings, Resolved(database_url=url, mqtt_url=settings.mqtt_url))
    probe = Probe()
    platform.writer.on_committed(probe.listener)  # after the rule engine's
    stored = platform.bus.telemetry_stored.subscribe(maxsize=1, where=probe.on_stored)
    changed = platform.bus.alarm_changed.subscribe(maxsize=1, where=probe.on_alarm)
    await platform.bus.start()
    await platform.writer.start()
    try:
        offset = 0
        # warm-up with rules on: the index of 10,000 rules loads, device names are cached, keys are known
        await set_rules(owner, platform, enabled=True)
        loaded = time.perf_counter()
        await run_round(platform, probe, make_items(devices, args.devices, start=offset, hot_every=0))
        warmup_s = time.perf_counter() - loaded
        offset += args.devices
        rates: dict[str, list[float]] = {'off': [], 'on': []}
        cpu_rates: dict[str, list[float]] = {'off': [], 'on': []}
        split: dict[str, list[tuple[float, float]]] = {'off': [], 'on': []}  # (commit_s, listeners_s) per round
        profiler = None
        for _ in range(args.rounds):
            for mode in ('off', 'on'):
                await set_rules(owner, platform, enabled=mode == 'on')
                await run_round(platform, probe, make_items(devices, 1, start=offset, hot_every=0))  # reload index
                items = make_items(devices, args.messages, start=offset + 1, hot_every=args.hot_every)
                offset += args.messages + 1
                probe.hot_commits.clear()
                probe.measuring = mode == 'on'
                if args.profile and mode == 'on' and profiler is None:
                    import cProfile
                    profiler = cProfile.Profile()
                    profiler.enable()
                before = (platform.writer.stats.commit_s, platform.writer.stats.listeners_s)
                wall, cpu = await run_round(platform, probe, items)
                split[mode].append((platform.writer.stats.commit_s - before[0],
                                    platform.writer.stats.listeners_s - before[1]))
                rates[mode].append(wall)
                cpu_rates[mode].append(cpu)
                if profiler is not None and args.profile:
                    profiler.disable()
                    profiler.dump_stats(args.profile)
                    args.profile = ''
                probe.measuring = False
                await asyncio.sleep(0.3)  # let the last clears land
        alarms = await owner.fetchval('SELECT count(*) FROM alarms WHERE tenant_id = $1', TENANT)
        stats = platform.writer.stats
    finally:
        stored.close()
        changed.close()
        await platform.writer.stop()
        await platform.bus.stop()
        await platform.db.dispose()
        await owner.close()
    off, on = statistics.median(rates['off']), statistics.median(rates['on'])
    cpu_off, cpu_on = statistics.median(cpu_rates['off']), statistics.median(cpu_rates['on'])
    latencies = sorted(probe.latencies)

    def pct(q: float) -> float | None:
        return round(1000 * latencies[min(len(latencies) - 1, int(len(latencies) * q))], 1) if latencies else None

    return {
        'devices': args.devices, 'rules': rules, 'messages_per_round': args.messages, 'rounds': args.rounds,
        'keys_per_message': 4, 'hot_every': args.hot_every, 'index_load_and_warmup_s': round(warmup_s, 2),
        'msg_s_rules_off': [round(rate) for rate in rates['off']],
        'msg_s_rules_on': [round(rate) for rate in rates['on']],
        'median_msg_s_off': round(off), 'median_msg_s_on': round(on), 'ratio_on_to_off': round(on / off, 3),
        'rules_cost_pct': round(100 * (1 - on / off), 1),
        'median_msg_per_cpu_s_off': round(cpu_off), 'median_msg_per_cpu_s_on': round(cpu_on),
        'cpu_ratio_on_to_off': round(cpu_on / cpu_off, 3), 'alarm_rows': alarms, 'raises_measured': probe.raised,
        'commit_to_alarm_p50_ms': pct(0.5), 'commit_to_alarm_p99_ms': pct(0.99),
        'commit_to_alarm_max_ms': pct(1.0), 'writer_commit_s': round(stats.commit_s, 1),
        'writer_listeners_s': round(stats.listeners_s, 1), 'batches': stats.batches,
        **{f'{part}_us_per_msg_{mode}': round(1e6 * sum(pair[number] for pair in split[mode])
                                              / (args.messages * args.rounds), 1)
           for mode in ('off', 'on') for number, part in enumerate(('commit', 'listeners'))},
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """The bench on a scratch database (and app role) of its own, both dropped afterwards."""
    import asyncpg

    admin = await asyncpg.connect(args.database_url)
    statements = {'drop': f'DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)', 'create': f'CREATE DATABASE {BENCH_DB}',
                  'role': f'DROP ROLE IF EXISTS {BENCH_ROLE}'}
    try:
        await admin.execute(statements['drop'])
        await admin.execute(statements['create'])
        return await bench(args, urlsplit(args.database_url)._replace(path=f'/{BENCH_DB}').geturl())
    finally:
        await admin.execute(statements['drop'])
        await admin.execute(statements['role'])
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--devices', type=int, default=5000, help='devices; two stream rules each')
    parser.add_argument('--messages', type=int, default=25_000, help='messages per round')
    parser.add_argument('--rounds', type=int, default=5, help='pairs of rounds, rules off then on')
    parser.add_argument('--hot-every', type=int, default=1000, help='one message in N raises an alarm (0: none)')
    parser.add_argument('--database-url', default=os.environ.get('DATABASE_URL', ''))
    parser.add_argument('--profile', default='', help='write a cProfile of the first rules-on round here')
    args = parser.parse_args()
    if not args.database_url:
        raise SystemExit('Set DATABASE_URL to a PostgreSQL server the bench may create a scratch database on.')
    load = os.getloadavg()[0]
    result = asyncio.run(run(args))
    print(json.dumps({'load_before': round(load, 2), **result}, indent=2))


if __name__ == '__main__':
    main()
