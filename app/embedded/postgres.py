"""An embedded PostgreSQL (the `pgserver` package) in the data directory, when DATABASE_URL is unset.

initdb leaves `shared_buffers` at 128 MB. Every telemetry series inserts at the right edge of its part of the
primary key, and at 10,000 devices of four keys those pages alone are about 320 MB: with 128 MB they are read back
and written out again all the time (`bench/ingest.py`: the writer's PostgreSQL CPU 15 to 23% lower with 1 GB). So
Gito gives the embedded server an eighth of the machine's memory, between 128 MB and 1 GB, unless someone set
`shared_buffers` with ALTER SYSTEM already. The setting needs a restart: a server Gito has just initialised is
restarted at once (nobody else uses it yet); an older one takes it the next time it starts.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import psutil

log = logging.getLogger(__name__)

MIN_BUFFERS_MB = 128
MAX_BUFFERS_MB = 1024


class EmbeddedServer(Protocol):
    def cleanup(self) -> None: ...

    def psql(self, command: str) -> str: ...

    def get_uri(self, database: str | None = None) -> str: ...


def start_embedded_postgres(data_dir: Path) -> tuple[str, EmbeddedServer]:
    """Start (or reuse) the embedded server. Returns its URL and a handle whose `cleanup()` stops the server
    unless another Gito process (e.g. a CLI command) still uses it."""
    from pgserver.postgres_server import get_server

    pgdata = data_dir / 'postgres'
    pgdata.mkdir(parents=True, exist_ok=True)
    fresh = not (pgdata / 'PG_VERSION').exists()
    server: EmbeddedServer = get_server(pgdata, cleanup_mode='stop')
    if size_buffers(server):
        if fresh:
            server.cleanup()
            server = get_server(pgdata, cleanup_mode='stop')
        else:
            log.info('embedded postgresql takes its new shared_buffers when it next starts')
    url = server.get_uri(database='postgres')
    exists = server.psql("SELECT 1 FROM pg_database WHERE datname = 'gito';")
    if '1 row' not in exists:
        server.psql('CREATE DATABASE gito;')
    log.info('embedded postgresql ready', extra={'pgdata': str(pgdata)})
    return url.replace('/postgres?', '/gito?'), server


def buffers_mb(total_bytes: int) -> int:
    return max(MIN_BUFFERS_MB, min(MAX_BUFFERS_MB, total_bytes // 8 // 2**20))


def size_buffers(server: EmbeddedServer) -> bool:
    """Set `shared_buffers` by ALTER SYSTEM unless it was set that way before; True when it was set now."""
    chosen = server.psql("SELECT count(*) FROM pg_file_settings WHERE name = 'shared_buffers' "
                         "AND sourcefile LIKE '%postgresql.auto.conf';")
    if chosen.split('\n')[2].strip() != '0':
        return False
    megabytes = buffers_mb(psutil.virtual_memory().total)
    server.psql(f"ALTER SYSTEM SET shared_buffers = '{megabytes}MB';")
    log.info('embedded postgresql sized', extra={'shared_buffers_mb': megabytes})
    return True
