"""Decoded telemetry as it travels from a device's payload through the batch writer to the bus.

Named tuples, not models: ingest makes tens of thousands of them a second.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

Value = float | str | bool | dict[str, Any] | list[Any]


class Message(NamedTuple):
    """One decoded telemetry object: its readings (key → value, in the order sent) share a timestamp.
    `ts_sent`: the device gave `ts`. `readings` is the decoder's own dict, checked in place (no object per
    reading: a third of decoding); like the message, nobody may change it once decoded."""

    ts: datetime
    seq: int | None
    readings: dict[str, Value]
    ts_sent: bool = False
