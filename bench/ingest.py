"""Ingest throughput: sustained msg/s and points/s, publish→commit latency, RSS, and the broker's own ceiling.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        python bench/ingest.py --devices 10000 --rate 30000 --seconds 30 --qos 1

PostgreSQL is the server named by DATABASE_URL (a scratch database `gito_bench` is created there and dropped
afterwards). The broker is a Mosquitto the bench starts, tuned like Gito's managed broker (no in-flight cap,
deep queues); `--no-own-broker` uses MQTT_URL as it is (a default-configured Mosquitto drops QoS 1 messages past
1000 queued per client under this load); `--amqtt` runs against Gito's embedded amqtt broker, started as `gito
serve` starts it where Mosquitto is not installed (password and topic checks included). `MQTT_URL` is ignored
otherwise. `--archive` has the bench tenant keep a raw archive. Three phases in one run:
1. the publishers' own ceiling and the broker's delivery ceiling: QoS 1 as fast as possible to `mosquitto_sub -q 1`;
2. Gito's platform (writer, consumer, latest values, the live bus; no web UI) in a child process, its devices
   provisioned directly, while `--publishers` processes publish `--rate` msg/s of four numeric keys each,
   spread over `--devices` devices, with `ts` = publish time so the child's commit listener measures
   publish→commit latency;
3. the drain, up to 60 s: `not_committed_at_end` counts what was published but not yet committed then (still
   held, unacknowledged, by the broker: backlog, not loss). The child runs the whole Platform minus the web UI,
   so commit listeners (the rule engine) count; `writer_commit_s` / `writer_listeners_s` split the time.
`max_state_lag_s`: how far the written device state (last_seen, counters, latest values) stood behind what was
received, at most (presence and no-data rules wait for it: `app/ingest/state_mark.py`). The first `WARM_UP_S`
seconds (every device's first message: caches cold, series created) are left out of the `_after_warm_up` figures;
`seconds_with_p99_over_250_ms` counts, of the seconds after them, those whose own p99 was over the target.
`hot_update_pct`: of the updates of `devices` and `latest_values`, the share that was HOT (see `HOT_SHARE`).
`machine_cpu_pct`: how busy all cores were during Gito's run (and steal, iowait), so a slow run can be told from a
busy machine; `cpu_us_per_msg` splits CPU per committed message between Gito, the writer's PostgreSQL backends, every
PostgreSQL process (`postgres_all`: rollups, vacuum, checkpoints, state flushes too), the broker and the publishers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

# This checkout's `app`, not the one an editable install elsewhere points at: comparing two commits must run each.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.ingest.mqtt_wire import utf8, varint

NAMESPACE = uuid.UUID('6a1b0c4e-2f57-4d1e-9c55-0b3a8f7d2e10')
BENCH_DB = 'gito_bench'
ROOT = Path(__file__).resolve().parent.parent


def device_ids(count: int) -> list[uuid.UUID]:
    return [uuid.uuid5(NAMESPACE, f'device-{index}') for index in range(count)]


TENANT = uuid.uuid5(NAMESPACE, 'tenant')
WARM_UP_S = 10.0  # the first seconds: every device's first message (caches cold, keys created), not steady state
PAYLOAD = b'{"t":%d.5,"h":%d,"p":1013.25,"v":3.3,"ts":%d,"seq":%d}'  # four numeric keys


# --- publisher process ---------------------------------------------------------------------------------------

def _packet(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + varint(len(body)) + body


def publisher(args: argparse.Namespace) -> None:
    """A lean MQTT 3.1.1 publisher on a raw socket: prebuilt PUBLISH packets written in bulk, PUBACKs counted by a
    reader thread (paho's publisher tops out near 15k msg/s with its network thread starved of the GIL)."""
    import socket

    target = urlsplit(args.mqtt_url)
    sock = socket.create_connection((target.hostname or '127.0.0.1', target.port or 1883))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client_id = f'bench-pub-{uuid.uuid4().hex[:8]}'
    login = b''
    flags = 0x02  # clean session
    if target.username:
        login = utf8(unquote(target.username)) + utf8(unquote(target.password or ''))
        flags |= 0xC0
    sock.sendall(_packet(0x10, utf8('MQTT') + bytes([4, flags]) + (60).to_bytes(2, 'big') + utf8(client_id) + login))
    connack = sock.recv(4)
    if connack[:2] != b'\x20\x02' or connack[3] != 0:
        raise SystemExit(f'broker refused the publisher: {connack!r}')
    acked = [0]

    def read_acks() -> None:
        pending = 0
        while True:
            data = sock.recv(65536)
            if not data:
                return
            pending += len(data)
            acked[0] += pending // 4
            pending %= 4

    threading.Thread(target=read_acks, daemon=True).start()
    topics = [utf8(f'{TENANT}/devices/{device}/telemetry') for device in device_ids(args.devices)]
    topics = topics[args.index::args.of] if not args.topic else [utf8(args.topic)]
    flags = 0x30 | (args.qos << 1)
    count, seq, started = 0, 0, time.monotonic()
    rate = args.rate / args.of if args.rate else None
    while True:
        elapsed = time.monotonic() - started
        if (args.seconds and elapsed >= args.seconds) or (args.messages and count >= args.messages):
            break
        due = int(elapsed * rate) - count if rate else 1000
        if due <= 0:
            time.sleep(0.002)
            continue
        if args.messages:
            due = min(due, args.messages - count)
        now_ms = int(time.time() * 1000)
        chunk = bytearray()
        for _ in range(min(due, 5000)):
            topic = topics[count % len(topics)]
            payload = PAYLOAD % (count % 40, count % 100, now_ms, seq)
            packet_id = (count % 65535 + 1).to_bytes(2, 'big') if args.qos else b''
            chunk += _packet(flags, topic + packet_id + payload)
            count += 1
            if count % len(topics) == 0:
                seq += 1
        sock.sendall(chunk)
    published_s = time.monotonic() - started
    deadline = time.monotonic() + 60
    while args.qos and acked[0] < count and time.monotonic() < deadline:
        time.sleep(0.01)
    sock.sendall(b'\xe0\x00')
    sock.close()
    print(json.dumps({'published': count, 'acked': acked[0], 'seconds': published_s,
                      'acked_s': time.monotonic() - started, 'cpu_s': time.process_time()}))


def run_publishers(args: argparse.Namespace, *, rate: int, seconds: float, messages: int = 0,
                   topic: str = '') -> list[subprocess.Popen[str]]:
    return [subprocess.Popen(
        [sys.executable, __file__, '--role', 'publisher', '--mqtt-url', args.mqtt_url, '--devices', str(args.devices),
         '--rate', str(rate), '--seconds', str(seconds), '--messages', str(messages // args.publishers),
         '--qos', str(args.qos), '--index', str(index), '--of', str(args.publishers), '--topic', topic],
        stdout=subprocess.PIPE, text=True) for index in range(args.publishers)]


def collect(processes: list[subprocess.Popen[str]]) -> dict[str, float]:
    results = [json.loads(process.communicate()[0].strip().splitlines()[-1]) for process in processes]
    return {'published': sum(r['published'] for r in results), 'seconds': max(r['seconds'] for r in results),
            'cpu_s': sum(r['cpu_s'] for r in results)}


# --- phase 1: the broker's own ceiling -----------------------------------------------------------------------

def broker_ceiling(args: argparse.Namespace) -> dict[str, float]:
    target = urlsplit(args.mqtt_url)
    topic = f'bench/{uuid.uuid4().hex[:8]}/ceiling'
    login = ['-u', unquote(target.username), '-P', unquote(target.password or '')] if target.username else []
    sub = subprocess.Popen(['mosquitto_sub', '-V', '311' if args.amqtt else '5', '-h', target.hostname or '127.0.0.1',
                            '-p', str(target.port or 1883), '-q', str(args.qos), '-t', topic, *login],
                           stdout=subprocess.PIPE)
    stamps: list[float] = []

    def count() -> None:
        assert sub.stdout is not None
        for _ in sub.stdout:
            stamps.append(time.monotonic())

    reader = threading.Thread(target=count, daemon=True)
    reader.start()
    time.sleep(1)
    published = collect(run_publishers(args, rate=0, seconds=0, messages=args.ceiling_messages, topic=topic))
    deadline = time.monotonic() + 30
    while len(stamps) < published['published'] and time.monotonic() < deadline:
        time.sleep(0.2)
    sub.terminate()
    received = len(stamps)
    window = (stamps[-1] - stamps[0]) if received > 1 else 1.0
    return {'publisher_ceiling_msg_s': round(published['published'] / published['seconds']),
            'broker_delivery_ceiling_msg_s': round(received / window), 'ceiling_received': received,
            'ceiling_published': published['published']}


# --- phase 2: Gito in a child process -------------------------------------------------------------------------

async def gito_child(args: argparse.Namespace) -> None:
    import asyncpg
    import psutil

    from app.config import Settings
    from app.db import migrate
    from app.platform import Platform, Resolved, app_role_password, tune_garbage_collector

    settings = Settings()
    await migrate(args.database_url, role=settings.app_db_role, password=app_role_password(settings))
    owner = await asyncpg.connect(args.database_url)
    await owner.execute("INSERT INTO tenants (id, name) VALUES ($1, 'Bench') ON CONFLICT DO NOTHING", TENANT)
    await owner.copy_records_to_table('devices', columns=('id', 'tenant_id', 'name', 'token_sha256',
                                                          'mqtt_password_hash'),
                                      records=[(d, TENANT, f'd{i}', 'x', 'x') for i, d in
                                               enumerate(device_ids(args.devices))])
    if args.archive:
        await owner.execute('INSERT INTO raw_archive_settings (tenant_id, enabled, days) VALUES ($1, true, 1)', TENANT)
    platform = Platform(settings, Resolved(database_url=args.database_url, mqtt_url=args.mqtt_url))
    platform.consumer.mqtt5 = not args.amqtt  # amqtt speaks MQTT 3.1.1 only (as `gito serve` knows for itself)
    latencies: list[tuple[float, float]] = []  # (sent at, publish → commit seconds)
    committed = [0, 0]  # messages (readings / 4), batches

    async def listen(events: list[Any]) -> None:
        now = time.time()
        committed[1] += 1
        for index, event in enumerate(events):
            committed[0] += len(event.messages)  # one per published message (each has its own `ts`)
            if index % 10 == 0:
                sent = event.messages[-1].ts.timestamp()
                latencies.append((sent, now - sent))

    platform.writer.on_committed(listen)
    await platform.start()
    page_latencies: list[tuple[float, float]] = []  # (sent at, publish → page seconds)
    watched = set(device_ids(args.devices)[:20])  # twenty open device pages, each on its own subscription
    pages = [platform.bus.telemetry_stored.subscribe(maxsize=2000, device_id=d) for d in watched]

    async def open_pages() -> None:
        """What a device page does: drain its subscription every 0.5 s and show the readings."""
        while True:
            await asyncio.sleep(0.5)
            now = time.time()
            for subscription in pages:
                for event in subscription.drain():
                    page_latencies.extend((sent, now - sent) for sent in
                                          (reading.ts.timestamp() for reading in event.readings[::4]))

    viewer = asyncio.create_task(open_pages())
    tune_garbage_collector()
    collector = CollectorClock()
    gc.callbacks.append(collector)
    while not platform.link.connected:  # noqa: ASYNC110 - a bench waits on a flag it does not own
        await asyncio.sleep(0.05)
    process, rss = psutil.Process(), [0.0]
    state_lags: list[tuple[float, float]] = []  # (at, how far the written device state stood behind what was received)

    async def sample() -> None:
        while True:
            rss[0] = max(rss[0], process.memory_info().rss / 2**20)
            behind = (datetime.now(UTC) - platform.writer.state.flushed_through()).total_seconds()
            state_lags.append((time.time(), behind))
            if args.verbose:
                consumer, writer = platform.consumer, platform.writer
                stats = writer.stats
                print(json.dumps({
                    'at': round(time.time(), 1), 'received': consumer.received, 'acked': consumer.acked,
                    'inflight': consumer.inflight, 'backlog': writer.backlog, 'batches': stats.batches,
                    'commit_ms': round(stats.last_commit_ms), 'committed': committed[0],
                    'cpu_s': round(sum(process.cpu_times()[:2]), 2),
                    'split_s': {name: round(getattr(stats, f'{name}_s'), 2)
                                for name in ('prepare', 'encode', 'insert', 'finish', 'listeners')},
                    'state_s': round(writer.state.seconds, 2), 'host_idle_s': round(psutil.cpu_times().idle, 2),
                    'rollup_s': round(sum(platform.storage_jobs.rollup_steps_s.values()), 2),
                }), file=sys.stderr, flush=True)
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample())
    cpu_at_ready = sum(process.cpu_times()[:2])  # start-up (imports, migrations) is not ingest
    print('READY', flush=True)
    line = await asyncio.to_thread(sys.stdin.readline)  # the expected message count, once publishing ended
    expected = int(line)
    first_at = time.monotonic()
    start_count = committed[0]
    deadline = time.monotonic() + 60
    while committed[0] < expected and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    drain_s = time.monotonic() - first_at
    sampler.cancel()
    viewer.cancel()
    pg_cpu_s: dict[str, float] = {}
    copier = platform.writer._copier
    for name, connection in (('batches', platform.writer._connection), ('state', platform.writer.state._connection),
                             ('copies', copier._connection if copier is not None else None)):
        if connection is not None:  # CPU the writer's PostgreSQL backends used: a figure load hardly moves
            backend = psutil.Process(connection.get_server_pid())
            pg_cpu_s[name] = round(sum(backend.cpu_times()[:2]), 1)
    await platform.stop()  # writes what it already took: counted below and in committed_messages
    rows = await owner.fetchval('SELECT count(*) FROM telemetry WHERE tenant_id = $1', TENANT)
    latest = await owner.fetchval('SELECT count(*) FROM latest_values WHERE tenant_id = $1', TENANT)
    archived = await owner.fetchval('SELECT count(*) FROM raw_messages WHERE tenant_id = $1', TENANT)
    hot = {row['relname']: round(100 * row['n_tup_hot_upd'] / row['n_tup_upd'], 1) if row['n_tup_upd'] else None
           for row in await owner.fetch(HOT_SHARE)}  # the writer's backends reported theirs as they ended (stop)
    await owner.close()
    first_sent = min((sent for sent, _ in latencies), default=0.0)
    if args.latencies:
        await asyncio.to_thread(Path(args.latencies).write_text, json.dumps(latencies))
    everything = sorted(latency for _, latency in latencies)
    settled = sorted(latency for sent, latency in latencies if sent >= first_sent + WARM_UP_S)
    print(json.dumps({
        'committed_messages': committed[0], 'rows': rows, 'latest_rows': latest, 'batches': committed[1],
        'drain_after_publish_s': round(drain_s, 2), 'committed_during_drain': committed[0] - start_count,
        'p50_ms': percentile_ms(everything, 0.5), 'p99_ms': percentile_ms(everything, 0.99),
        'p50_after_warm_up_ms': percentile_ms(settled, 0.5), 'p99_after_warm_up_ms': percentile_ms(settled, 0.99),
        'p999_after_warm_up_ms': percentile_ms(settled, 0.999),
        'seconds_with_p99_over_250_ms': seconds_over(latencies, first_sent + WARM_UP_S, 0.25),
        'p95_to_open_page_ms': percentile_ms(sorted(latency for _, latency in page_latencies), 0.95),
        'p95_to_open_page_after_warm_up_ms': percentile_ms(
            sorted(latency for sent, latency in page_latencies if sent >= first_sent + WARM_UP_S), 0.95),
        'max_state_lag_s': round(max((lag for _, lag in state_lags), default=0.0), 1),
        'max_state_lag_after_warm_up_s': round(max(
            (lag for at, lag in state_lags if at >= first_sent + WARM_UP_S), default=0.0), 1),
        'max_rss_mb': round(rss[0], 1), 'latest_flushes': platform.writer.latest.flushes,
        'writer_commit_s': round(platform.writer.stats.commit_s, 1),
        'writer_listeners_s': round(platform.writer.stats.listeners_s, 1),
        'writer_insert_s': round(platform.writer.stats.insert_s, 1),
        'batches_copied_alone': platform.writer.stats.copied_alone,
        'state_flush_s': round(platform.writer.state.seconds, 1),
        'state_flushes_aside': platform.writer.state.aside_writes, 'archived_messages': archived,
        'hot_update_pct': hot,
        'writer_prepare_s': round(platform.writer.stats.prepare_s, 1),
        'writer_encode_s': round(platform.writer.stats.encode_s, 1),
        'writer_finish_s': round(platform.writer.stats.finish_s, 1),
        'gito_cpu_s': round(sum(process.cpu_times()[:2]) - cpu_at_ready, 1),
        'writer_backend_cpu_s': round(sum(pg_cpu_s.values()), 1),
        'writer_backend_cpu_split_s': pg_cpu_s,
        'duplicates_dropped': platform.writer.stats.duplicates,
        'rollups_at_low_priority': platform.storage_jobs.low_priority_backend is not None,
        'rollup_runs': platform.storage_jobs.rollup_runs,
        'rollup_steps_s': {step: round(seconds, 1) for step, seconds in platform.storage_jobs.rollup_steps_s.items()},
        'gc_s_by_generation': {str(generation): round(spent, 2) for generation, spent in enumerate(collector.spent)},
        'gc_runs_by_generation': {str(generation): runs for generation, runs in enumerate(collector.runs)},
    }), flush=True)


# Of the updates of the tables ingest updates in place, the share that was HOT (no index entries added, the old
# version pruned on its page): a low share means bloat and index growth (an old snapshot holding pruning back).
HOT_SHARE = """
SELECT relname, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables
WHERE relname IN ('devices', 'latest_values') ORDER BY relname"""


class CollectorClock:
    """Time the cyclic garbage collector spends, per generation (a `gc.callbacks` entry)."""

    def __init__(self) -> None:
        self.spent = [0.0, 0.0, 0.0]
        self.runs = [0, 0, 0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == 'start':
            self._started = time.perf_counter()
        else:
            self.spent[info['generation']] += time.perf_counter() - self._started
            self.runs[info['generation']] += 1


def seconds_over(latencies: list[tuple[float, float]], start: float, limit_s: float) -> str:
    """Of the seconds of publishing after `start`, how many had a p99 publish→commit over `limit_s` ("12/80"): a
    p99 over the whole run says how bad, this how often (a checkpoint or a rollup run lifts a few seconds)."""
    by_second: dict[int, list[float]] = {}
    for sent, latency in latencies:
        if sent >= start:
            by_second.setdefault(int(sent - start), []).append(latency)
    over = sum(1 for values in by_second.values() if sorted(values)[int(len(values) * 0.99)] > limit_s)
    return f'{over}/{len(by_second)}'


def percentile_ms(ordered: list[float], fraction: float) -> int | None:
    return round(1000 * ordered[int(len(ordered) * fraction)]) if ordered else None


def gito_run(args: argparse.Namespace, bench_url: str) -> dict[str, Any]:
    env = {**os.environ, 'DATABASE_URL': bench_url, 'MQTT_URL': args.mqtt_url, 'SECRET_KEY': 'bench-secret',
           'GITO_DATA_DIR': '/tmp/gito-bench', 'GITO_PORT': '18999', 'GITO_LOG_LEVEL': 'WARNING',
           'GITO_MQTT_SESSION_EXPIRY_S': '60'}
    child = subprocess.Popen([sys.executable, __file__, '--role', 'gito', '--database-url', bench_url,
                              '--mqtt-url', args.mqtt_url, '--devices', str(args.devices),
                              *(['--verbose'] if args.verbose else []), *(['--archive'] if args.archive else []),
                              *(['--latencies', args.latencies] if args.latencies else []),
                              *(['--amqtt'] if args.amqtt else [])],
                             env=env, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdin is not None
    while (line := child.stdout.readline()) and line.strip() != 'READY':
        pass
    started = time.monotonic()
    published = collect(run_publishers(args, rate=args.rate, seconds=args.seconds))
    child.stdin.write(f'{published["published"]}\n')
    child.stdin.flush()
    result = json.loads(child.communicate(timeout=180)[0].strip().splitlines()[-1])
    elapsed = published['seconds'] + result['drain_after_publish_s']
    return {**result, 'published': published['published'], 'publishers_cpu_s': round(published['cpu_s'], 1),
            'publish_rate_msg_s': round(
        published['published'] / published['seconds']), 'wall_s': round(time.monotonic() - started, 1),
        'sustained_msg_s': round(result['committed_messages'] / elapsed),
        'sustained_points_s': round(4 * result['committed_messages'] / elapsed),
        'not_committed_at_end': published['published'] - result['committed_messages']}


async def scratch_database(url: str, *, drop_only: bool = False) -> str:
    import asyncpg

    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)')
        if not drop_only:
            await admin.execute(f'CREATE DATABASE {BENCH_DB}')
    finally:
        await admin.close()
    return urlsplit(url)._replace(path=f'/{BENCH_DB}').geturl()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--devices', type=int, default=10_000)
    parser.add_argument('--rate', type=int, default=30_000, help='messages per second, all publishers together')
    parser.add_argument('--seconds', type=float, default=30)
    parser.add_argument('--qos', type=int, default=1, choices=(0, 1))
    parser.add_argument('--publishers', type=int, default=2, help='publisher processes')
    parser.add_argument('--ceiling-messages', type=int, default=200_000)
    parser.add_argument('--role', default='main', choices=('main', 'publisher', 'gito'))
    parser.add_argument('--database-url', default=os.environ.get('DATABASE_URL', ''))
    parser.add_argument('--mqtt-url', default=os.environ.get('MQTT_URL', 'mqtt://127.0.0.1:1883'))
    parser.add_argument('--messages', type=int, default=0)
    parser.add_argument('--index', type=int, default=0)
    parser.add_argument('--of', type=int, default=1)
    parser.add_argument('--topic', default='')
    parser.add_argument('--own-broker', action=argparse.BooleanOptionalAction, default=True,
                        help='start a tuned Mosquitto for the run (--no-own-broker: use MQTT_URL as it is)')
    parser.add_argument('--verbose', action='store_true', help='progress of the Gito child on stderr')
    parser.add_argument('--latencies', default='',
                        help='write every sampled (sent at, publish → commit s) pair to this JSON file, for tails')
    parser.add_argument('--archive', action='store_true', help="the bench tenant keeps a raw archive")
    parser.add_argument('--amqtt', action='store_true',
                        help='run against the embedded amqtt broker, as `gito serve` starts it without Mosquitto')
    args = parser.parse_args()
    if args.role == 'publisher':
        return publisher(args)
    if args.role == 'gito':
        import uvloop  # what `gito serve` runs on (uvicorn picks uvloop when it is installed)

        return uvloop.run(gito_child(args))
    if not args.database_url:
        raise SystemExit('Set DATABASE_URL to a PostgreSQL server the bench may create a scratch database on.')
    load = os.getloadavg()[0]
    if args.amqtt:
        amqtt = amqtt_broker(args)
        try:
            report(args, load)
        finally:
            asyncio.run(amqtt.stop())
        return
    broker = own_broker(args) if args.own_broker else None
    try:
        report(args, load)
    finally:
        if broker is not None:
            broker.terminate()
            broker.wait(timeout=10)


def amqtt_broker(args: argparse.Namespace) -> Any:
    """Gito's managed amqtt broker (its plugins check the password and every topic), one account for all."""
    import socket
    import tempfile

    from app.ingest.broker import BrokerCredential, ManagedBroker
    from app.services.credentials import mosquitto_hash

    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    broker = ManagedBroker(data_dir=Path(tempfile.mkdtemp(prefix='gito-bench-amqtt-')), host='127.0.0.1', port=port,
                           kind='amqtt')
    password = uuid.uuid4().hex
    asyncio.run(broker.start([BrokerCredential('bench', mosquitto_hash(password), None)]))
    args.broker_pid = broker.pid
    args.mqtt_url = f'mqtt://bench:{password}@127.0.0.1:{port}'
    return broker


def own_broker(args: argparse.Namespace) -> subprocess.Popen[bytes]:
    """A Mosquitto of the bench's own, configured like Gito's managed broker (no inflight cap, deep queues):
    the distribution's defaults (20 in flight, 1000 queued) drop QoS 1 messages under this load."""
    import socket
    import tempfile

    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    config = Path(tempfile.mkdtemp(prefix='gito-bench-mqtt-')) / 'mosquitto.conf'
    # No queue bound: an overloaded run's backlog is then still held when publishing ends (a bound would drop it
    # silently, and `not_committed_at_end` would count as backlog what the broker threw away).
    config.write_text('\n'.join(['allow_anonymous true', 'max_inflight_messages 0', 'max_queued_messages 0',
                                 'max_queued_bytes 0', 'persistence false', f'listener {port} 127.0.0.1', '']))
    process = subprocess.Popen(['mosquitto', '-c', str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    args.broker_pid = process.pid
    time.sleep(0.5)
    args.mqtt_url = f'mqtt://127.0.0.1:{port}'
    return process


def postgres_cpu_s() -> float:
    """CPU seconds of all PostgreSQL processes on the machine (backends, autovacuum, checkpointer, WAL writer): the
    living ones and, through the postmaster's children times, those that have exited (the run's own backends end
    with it). The writer's backends are one part; rollups, vacuum and checkpoints the rest."""
    import psutil

    spent = 0.0
    for process in psutil.process_iter(['name', 'cpu_times', 'ppid']):
        times = process.info['cpu_times']
        if process.info['name'] not in ('postgres', 'postmaster') or times is None:
            continue
        spent += times.user + times.system
        with contextlib.suppress(psutil.Error):
            if psutil.Process(process.info['ppid']).name() not in ('postgres', 'postmaster'):
                spent += times.children_user + times.children_system  # the postmaster: its exited backends
    return spent


def machine_share(before: Any, after: Any) -> dict[str, float]:
    """How the machine's CPU time went during Gito's run, in percent of all cores: `busy` near 100 means no headroom
    (latency then follows whatever else runs), `steal` is time the hypervisor gave to other guests."""
    spent = {field: getattr(after, field) - getattr(before, field) for field in after._fields
             if not field.startswith('guest')}  # guest time is counted in user time already
    total = sum(spent.values()) or 1.0
    idle = spent.get('idle', 0.0) + spent.get('iowait', 0.0)
    return {'busy': round(100 * (total - idle) / total, 1), 'steal': round(100 * spent.get('steal', 0.0) / total, 1),
            'iowait': round(100 * spent.get('iowait', 0.0) / total, 1)}


def report(args: argparse.Namespace, load: float) -> None:
    ceiling = broker_ceiling(args)
    bench_url = asyncio.run(scratch_database(args.database_url))
    import psutil

    broker = psutil.Process(args.broker_pid) if getattr(args, 'broker_pid', None) else None
    broker_cpu = sum(broker.cpu_times()[:2]) if broker else 0.0
    machine_before, postgres_before = psutil.cpu_times(), postgres_cpu_s()
    try:
        gito = gito_run(args, bench_url)
    finally:
        machine_after, postgres_after = psutil.cpu_times(), postgres_cpu_s()
        asyncio.run(scratch_database(args.database_url, drop_only=True))
    messages = max(1, gito['committed_messages'])
    gito['cpu_us_per_msg'] = {  # where the machine's two cores go, per message committed
        'gito': round(1e6 * gito['gito_cpu_s'] / messages),
        'postgres_writer': round(1e6 * (gito['writer_backend_cpu_s'] or 0) / messages),
        'broker': round(1e6 * (sum(broker.cpu_times()[:2]) - broker_cpu) / messages) if broker else None,
        'publishers': round(1e6 * gito['publishers_cpu_s'] / messages),
        'postgres_all': round(1e6 * (postgres_after - postgres_before) / messages),
    }
    gito['machine_cpu_pct'] = machine_share(machine_before, machine_after)
    print(json.dumps({
        'devices': args.devices, 'target_rate': args.rate, 'seconds': args.seconds, 'qos': args.qos,
        'load_before': round(load, 2), **ceiling, **gito,
        'ratio_to_broker_ceiling': round(gito['sustained_msg_s'] / ceiling['broker_delivery_ceiling_msg_s'], 2),
        'broker': 'embedded amqtt' if args.amqtt else 'own mosquitto (tuned)' if args.own_broker else args.mqtt_url,
    }, indent=2))


if __name__ == '__main__':
    main()
