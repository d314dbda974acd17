"""Foundation figures: start-up time to ready, idle memory, and what the skeleton sustains under `gito simulate`.

    python bench/skeleton.py --devices 200 --interval 0.1 --seconds 30

Starts `gito serve` (DATABASE_URL from the environment, else the embedded PostgreSQL; the managed broker on a free
port unless MQTT_URL is set), waits for /readyz, samples the RSS at idle, then runs `gito simulate` against it and
counts what the devices' counters say was received and what PostgreSQL holds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
import psutil

GITO = [sys.executable, '-m', 'app.cli']


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return int(probe.getsockname()[1])


def rss_mb(process: psutil.Process) -> float:
    return float(process.memory_info().rss) / 2**20


async def counts(database_url: str, tenant_id: str) -> tuple[int, int]:
    connection = await asyncpg.connect(database_url)
    try:
        received = await connection.fetchval(
            'SELECT coalesce(sum(messages_received), 0) FROM devices WHERE tenant_id = $1', tenant_id)
        rows = await connection.fetchval('SELECT count(*) FROM telemetry WHERE tenant_id = $1', tenant_id)
        return int(received), int(rows)
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--devices', type=int, default=200)
    parser.add_argument('--interval', type=float, default=0.1)
    parser.add_argument('--seconds', type=float, default=30)
    parser.add_argument('--idle-seconds', type=float, default=10)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix='gito-bench-'))
    port, mqtt_port = free_port(), free_port()
    env = {**os.environ, 'GITO_DATA_DIR': str(data_dir), 'GITO_PORT': str(port), 'GITO_MQTT_PORT': str(mqtt_port),
           'SECRET_KEY': 'bench-secret', 'GITO_LOG_LEVEL': 'WARNING'}
    started = time.monotonic()
    server = subprocess.Popen([*GITO, 'serve'], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                if httpx.get(f'http://127.0.0.1:{port}/readyz', timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() - started > 120:
                raise SystemExit('gito serve did not become ready')
            time.sleep(0.05)
        ready_s = time.monotonic() - started
        process = psutil.Process(server.pid)
        time.sleep(args.idle_seconds)
        idle_rss = rss_mb(process)

        simulate = subprocess.run(
            [*GITO, 'simulate', '--devices', str(args.devices), '--interval', str(args.interval),
             '--seconds', str(args.seconds)], env=env, capture_output=True, text=True, timeout=args.seconds + 300)
        tenant = re.search(r'of tenant ([0-9a-f-]{36})', simulate.stderr)
        if simulate.returncode != 0 or tenant is None:
            raise SystemExit(f'gito simulate failed:\n{simulate.stderr[-2000:]}')
        published = json.loads(simulate.stdout.strip().splitlines()[-1])
        load_rss = rss_mb(process)
        time.sleep(2)  # let the last batches commit
        database_url = os.environ.get('DATABASE_URL') or _embedded_url(data_dir)
        received, rows = asyncio.run(counts(database_url, tenant.group(1)))
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(json.dumps({
        'startup_to_ready_s': round(ready_s, 2),
        'idle_rss_mb': round(idle_rss, 1),
        'devices': args.devices,
        'interval_s': args.interval,
        'seconds': args.seconds,
        'published': published['published'],
        'published_telemetry': published['telemetry'],
        'publish_errors': published['errors'],
        'published_per_s': published['rate'],
        'received_by_gito': received,
        'stored_points': rows,
        'stored_msgs_per_s': round(received / args.seconds, 1),
        'stored_points_per_s': round(rows / args.seconds, 1),
        'lost': published['telemetry'] - received,
        'rss_under_load_mb': round(load_rss, 1),
    }, indent=2))


def _embedded_url(data_dir: Path) -> str:
    return f'postgresql://postgres@/gito?host={data_dir / "postgres"}'


if __name__ == '__main__':
    main()
