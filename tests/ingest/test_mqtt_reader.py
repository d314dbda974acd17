"""Gito's MQTT reader stops when it is cancelled, whatever else happens in the same moment."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from app.ingest.mqtt_consumer import parse_mqtt_url
from app.ingest.mqtt_reader import MqttReader
from app.ingest.mqtt_wire import ConnectOptions


async def test_a_reader_cancelled_as_its_link_closes_stops_instead_of_reconnecting(mqtt_url: str) -> None:
    """Python 3.11's `asyncio.wait_for` returns the awaited result when its task is cancelled in the same loop turn
    as that result arrives, dropping the cancellation: the reader then took the closed link for a broker gone away
    and reconnected, and whoever stopped it waited for ever (a CI run hung in a test's teardown that way)."""
    target = parse_mqtt_url(mqtt_url, client_id=f'gito-reader-{uuid.uuid4().hex[:8]}')
    connected = asyncio.Event()
    reader = MqttReader(
        target.host, target.port, ConnectOptions(client_id=target.client_id, clean_start=True,
                                                 username=target.username, password=target.password),
        ['gito-test/reader/+'], on_messages=lambda publishes, link: None,
        on_link=lambda up, reason: connected.set() if up else None, retry_s=0.1)
    task = asyncio.create_task(reader.run())
    await asyncio.wait_for(connected.wait(), 10)
    assert reader.link is not None
    reader.link.close()  # the link ends in the very turn the reader is told to stop
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
