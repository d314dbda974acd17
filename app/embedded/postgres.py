"""An embedded PostgreSQL (the `pgserver` package) in the data directory, when DATABASE_URL is unset.

initdb leaves `shared_buffers` at 128 MB. Every telemetry series inserts at the right edge of its part of the
primary key, and at 10,000 devices of four keys those pages alone are about 320 MB: with 128 MB they are read back
and written out again all the time (`bench/ingest.py`: the writer's PostgreSQL CPU 15 to 23% lower with 1 GB). So
Gito gives the embedded server an eighth of the machine's memory, between 128 MB and 1 GB, unless someone set
`shared_buffers` with ALTER SYSTEM already. The setting needs a restart: a server Gito has just initialised is
restarted at once (nobody else uses it yet); an older one takes it the next time it starts.

`wal_buffers` likewise, an eighth of the `shared_buffers` that applies, an operator's own included (16 to 128 MB;
PostgreSQL's own default stops at 16 MB): when a checkpoint starts, the first change to each of those ~40,000 index
pages writes a full-page image, 200-250 MB of WAL within a second at 30,000 msg/s, and with 16 MB of WAL buffers the
writer's backend had to write WAL out itself 10,000-15,000 times in that second (`pg_stat_wal.wal_buffers_full`;
none with 128 MB). `bench/ingest.py --rate 30000`, three alternating pairs: p99 publish→commit 346 / 363 / 1,238 ms
with 128 MB against 553 / 429 / 1,363 ms with 16 MB.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import psutil

log = logging.getLogger(__name__)

MIN_BUFFERS_MB = 128
MAX_BUFFERS_MB = 1024
MIN_WAL_BUFFERS_MB = 16
MAX_WAL_BUFFERS_MB = 128


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
            log.info('embedded postgresql takes its new buffer sizes when it next starts')
    url = server.get_uri(database='postgres')
    exists = server.psql("SELECT 1 FROM pg_database WHERE datname = 'gito';")
    if '1 row' not in exists:
        server.psql('CREATE DATABASE gito;')
    log.info('embedded postgresql ready', extra={'pgdata': str(pgdata)})
    return url.replace('/postgres?', '/gito?'), server


def buffers_mb(total_bytes: int) -> int:
    return max(MIN_BUFFERS_MB, min(MAX_BUFFERS_MB, total_bytes // 8 // 2**20))


def wal_buffers_mb(shared_buffers_mb: int) -> int:
    return max(MIN_WAL_BUFFERS_MB, min(MAX_WAL_BUFFERS_MB, shared_buffers_mb // 8))


def size_buffers(server: EmbeddedServer) -> bool:
    """Set `shared_buffers` and `wal_buffers` by ALTER SYSTEM, each unless it was set that way before; True when
    one was set now (it takes a restart). `wal_buffers` follows the `shared_buffers` that will apply: an operator's
    own, where there is one."""
    settings = alter_system_settings(server)
    own = settings.get('shared_buffers')
    megabytes = buffers_mb(psutil.virtual_memory().total) if own is None else own[1] // 2**20
    chosen = {'shared_buffers': megabytes, 'wal_buffers': wal_buffers_mb(megabytes)}
    changed = {name: size for name, size in chosen.items() if name not in settings}
    for name, size in changed.items():
        server.psql(f"ALTER SYSTEM SET {name} = '{size}MB';")
    if changed:
        log.info('embedded postgresql sized', extra={f'{name}_mb': size for name, size in changed.items()})
    return bool(changed)


# The buffer settings ALTER SYSTEM last set, as written and in bytes (a number without a unit counts 8 kB blocks),
# one per line as `name=setting=bytes`: one psql call at start.
ALTER_SYSTEM_BUFFERS = """
SELECT DISTINCT ON (name) name || '=' || setting || '='
    || CASE WHEN setting ~ '^[0-9]+$' THEN setting::bigint * 8192 ELSE pg_size_bytes(setting) END
FROM pg_file_settings
WHERE name IN ('shared_buffers', 'wal_buffers') AND sourcefile LIKE '%postgresql.auto.conf'
ORDER BY name, seqno DESC;"""


def alter_system_settings(server: EmbeddedServer) -> dict[str, tuple[str, int]]:
    """`shared_buffers` and `wal_buffers` where ALTER SYSTEM set them: name → (setting as written, bytes)."""
    found: dict[str, tuple[str, int]] = {}
    for line in server.psql(ALTER_SYSTEM_BUFFERS).split('\n')[2:]:
        name, _, rest = line.strip().partition('=')
        setting, _, size = rest.rpartition('=')
        if setting and size.lstrip('-').isdigit():
            found[name] = (setting, int(size))
    return found
