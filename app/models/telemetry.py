"""Decoded telemetry as it travels from a device's payload through the batch writer to the bus.

Named tuples, not models: ingest makes tens of thousands of them a second.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

Value = float | str | bool | dict[str, Any] | list[Any]


class Reading(NamedTuple):
    key: str
    value: Value


class Message(NamedTuple):
    """One decoded telemetry object: its readings share a timestamp. `ts_sent`: the device gave `ts`."""

    ts: datetime
    seq: int | None
    readings: tuple[Reading, ...]
    ts_sent: bool = False
