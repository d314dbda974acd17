"""An embedded PostgreSQL (the `pgserver` package) in the data directory, when DATABASE_URL is unset."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)


class EmbeddedServer(Protocol):
    def cleanup(self) -> None: ...


def start_embedded_postgres(data_dir: Path) -> tuple[str, EmbeddedServer]:
    """Start (or reuse) the embedded server. Returns its URL and a handle whose `cleanup()` stops the server
    unless another Gito process (e.g. a CLI command) still uses it."""
    from pgserver.postgres_server import get_server

    pgdata = data_dir / 'postgres'
    pgdata.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode='stop')
    url: str = server.get_uri(database='postgres')
    exists = server.psql("SELECT 1 FROM pg_database WHERE datname = 'gito';")
    if '1 row' not in exists:
        server.psql('CREATE DATABASE gito;')
    log.info('embedded postgresql ready', extra={'pgdata': str(pgdata)})
    return url.replace('/postgres?', '/gito?'), server
