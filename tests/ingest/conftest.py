"""Ingest fixtures: a broker with deep queues, and `gito serve` as a child process."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import broker_process, free_port


@pytest.fixture
def deep_broker(mqtt_url: str, tmp_path: Path) -> Iterator[str]:
    """A Mosquitto configured like Gito's managed broker (deep queues, no in-flight cap): a default-configured one
    drops QoS 1 messages past 1,000 queued for an offline session, which is the broker losing them, not Gito."""
    if not shutil.which('mosquitto'):
        yield mqtt_url
        return
    port = free_port()
    config = tmp_path / 'mosquitto.conf'
    config.write_text('\n'.join(['allow_anonymous true', 'max_inflight_messages 0', 'max_queued_messages 1000000',
                                 'max_queued_bytes 0', 'persistence false', f'listener {port} 127.0.0.1', '']))
    with broker_process(['mosquitto', '-c', str(config)], port) as url:
        yield url
