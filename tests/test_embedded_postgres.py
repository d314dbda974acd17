"""The embedded PostgreSQL of `gito serve` without DATABASE_URL: sized for ingest at its first start."""

from __future__ import annotations

from pathlib import Path

import psutil

from app.embedded.postgres import (
    EmbeddedServer,
    alter_system_settings,
    buffers_mb,
    start_embedded_postgres,
    wal_buffers_mb,
)


def shown(server: EmbeddedServer, setting: str) -> str:
    return server.psql(f'SHOW {setting};').split('\n')[2].strip()


def configured(server: EmbeddedServer, setting: str) -> str:
    """What ALTER SYSTEM last set (it applies at the next start)."""
    return alter_system_settings(server)[setting][0]


def test_a_new_embedded_server_gets_an_eighth_of_memory_for_buffers_and_keeps_a_users_choices(tmp_path: Path) -> None:
    expected = buffers_mb(psutil.virtual_memory().total)
    own = 256 if wal_buffers_mb(expected) != wal_buffers_mb(256) else 1024  # WAL buffers other than memory's
    url, server = start_embedded_postgres(tmp_path)
    try:
        assert url.split('?')[0].endswith('/gito')
        assert shown(server, 'shared_buffers') == (f'{expected // 1024}GB' if expected % 1024 == 0 else f'{expected}MB')
        assert shown(server, 'wal_buffers') == f'{wal_buffers_mb(expected)}MB'
        server.psql("ALTER SYSTEM SET shared_buffers = '256MB';")  # an operator's own choices
        server.psql("ALTER SYSTEM SET wal_buffers = '8MB';")
    finally:
        server.cleanup()
    _, server = start_embedded_postgres(tmp_path)  # started again: the choices stand
    try:
        assert shown(server, 'shared_buffers') == '256MB'
        assert shown(server, 'wal_buffers') == '8MB'
        server.psql(f"ALTER SYSTEM SET shared_buffers = '{own}MB';")  # WAL buffers now left to Gito
        server.psql('ALTER SYSTEM RESET wal_buffers;')
    finally:
        server.cleanup()
    _, server = start_embedded_postgres(tmp_path)  # the WAL buffers follow the operator's buffers, not memory's
    try:
        assert configured(server, 'wal_buffers') == f'{wal_buffers_mb(own)}MB'
        assert configured(server, 'shared_buffers') == f'{own}MB'
    finally:
        server.cleanup()


def test_buffers_are_an_eighth_of_memory_between_128_mb_and_1_gb() -> None:
    assert [buffers_mb(gib * 2**30) for gib in (0, 1, 2, 4, 8, 24, 256)] == [128, 128, 256, 512, 1024, 1024, 1024]
    assert [wal_buffers_mb(mb) for mb in (128, 256, 512, 1024)] == [16, 32, 64, 128]
