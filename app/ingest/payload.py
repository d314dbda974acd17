"""Device payloads: flat JSON of key to value, optional `ts` (ms since epoch or ISO 8601) and `seq`.

Bad input is rejected with a reason a person can act on; nothing in a rejected payload is stored.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from app.models.telemetry import Message, Value

# Named tuples are built here without their generated __new__ (a Python-level lambda): that was a tenth of
# ingest's time.
_new = tuple.__new__

__all__ = ['Message', 'PayloadError', 'Value', 'decode', 'excerpt', 'parse_ts']

MAX_PAYLOAD_BYTES = 256 * 1024
MAX_KEYS = 1000
MAX_KEY_LENGTH = 100
MAX_TEXT_LENGTH = 4096
MAX_DEPTH = 32  # objects and arrays kept as JSON values
MAX_FUTURE = timedelta(minutes=10)
MIN_TS = datetime(2000, 1, 1, tzinfo=UTC)



class PayloadError(ValueError):
    """Why a payload was refused; `field` is `ts`, `seq` or the offending key when one is to blame."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(reason)
        self.field = field


def decode(body: bytes, *, received_at: datetime, allow_array: bool = True) -> list[Message]:
    if len(body) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f'payload is {len(body)} bytes; the limit is {MAX_PAYLOAD_BYTES}')
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise PayloadError(f'not valid JSON: {error}') from error
    if isinstance(document, list) and allow_array:
        if not document:
            raise PayloadError('empty array: send at least one object')
        if not all(isinstance(item, dict) for item in document):
            raise PayloadError('every element of the array must be a JSON object')
        return [_message(item, received_at, index) for index, item in enumerate(document)]
    if isinstance(document, dict):
        return [_message(document, received_at, None)]
    raise PayloadError('expected a JSON object of key to value' + (' or an array of them' if allow_array else ''))


def _message(document: dict[str, Any], received_at: datetime, index: int | None) -> Message:
    """The document becomes the message's readings once `ts` and `seq` are taken out and every value is checked."""
    where = '' if index is None else f'element {index}: '
    try:
        raw_ts = document.pop('ts', None)
        ts = parse_ts(raw_ts, received_at)
        seq = _seq(document.pop('seq', None))
        if not document:
            raise PayloadError('no values: send at least one key besides ts and seq')
        if len(document) > MAX_KEYS:
            raise PayloadError(f'{len(document)} keys; the limit is {MAX_KEYS}')
        _check_readings(document)
    except PayloadError as error:
        raise PayloadError(where + str(error), field=error.field) from error
    return _new(Message, (ts, seq, document, raw_ts is not None))


def parse_ts(raw: object, received_at: datetime) -> datetime:
    kind = type(raw)
    if kind is int or kind is float:  # the common case first (bool is a subclass of int, not int itself)
        if kind is float and not math.isfinite(raw):  # type: ignore[arg-type]
            raise PayloadError('ts must be a finite number', field='ts')
        try:
            ts = datetime.fromtimestamp(raw / 1000, UTC)  # type: ignore[operator]  # positional: a third cheaper
        except (OverflowError, OSError, ValueError) as error:
            raise PayloadError(f'ts {raw} is out of range', field='ts') from error
    elif raw is None:
        return received_at
    elif isinstance(raw, bool):
        raise PayloadError('ts must be milliseconds since the epoch or an ISO 8601 string', field='ts')
    elif isinstance(raw, int | float):  # subclasses of int or float from other decoders
        return parse_ts(int(raw) if isinstance(raw, int) else float(raw), received_at)
    elif isinstance(raw, str):
        try:
            ts = datetime.fromisoformat(raw.replace('Z', '+00:00') if raw.endswith('Z') else raw)
        except ValueError as error:
            raise PayloadError(f'ts {raw[:40]!r} is not ISO 8601', field='ts') from error
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=UTC)
    else:
        raise PayloadError('ts must be milliseconds since the epoch or an ISO 8601 string', field='ts')
    if ts > received_at + MAX_FUTURE:
        ahead = (ts - received_at).total_seconds()
        raise PayloadError(f'ts is {ahead:.0f} s in the future; check the device clock', field='ts')
    if ts < MIN_TS:
        raise PayloadError(
            f'ts {ts.isoformat()} is before 2000-01-01; is it in seconds instead of milliseconds?', field='ts',
        )
    return ts


def _seq(raw: object) -> int | None:
    if type(raw) is int and 0 <= raw < 2**63:  # the common case first
        return raw
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw < 2**63:
        raise PayloadError('seq must be a non-negative integer', field='seq')
    return raw


_GOOD_KEYS: set[str] = set()  # keys already found valid: most payloads repeat the same few


def _check_readings(document: dict[str, Any]) -> None:
    """Every key and value checked; integers become floats (in place: only values change, never the keys)."""
    good = _GOOD_KEYS
    for key, value in document.items():
        kind = type(value)
        if kind is float and key in good:  # the common case first, without a call
            if value - value != 0.0:  # inf or nan (orjson gives neither, but other decoders might)
                raise PayloadError(f'{key}: {value} is not a finite number', field=key)
        elif kind is int and key in good:
            document[key] = float(value)
        else:
            document[key] = _value(key, value)
            if len(good) < 10_000:
                good.add(key)


def _value(key: object, value: object) -> Value:
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise PayloadError(f'key {str(key)[:40]!r} must be a non-empty string of at most {MAX_KEY_LENGTH} characters')
    if value is None:
        raise PayloadError(f'{key}: null is not a value', field=key)
    if isinstance(value, bool | str):
        if isinstance(value, str) and len(value) > MAX_TEXT_LENGTH:
            raise PayloadError(f'{key}: text longer than {MAX_TEXT_LENGTH} characters', field=key)
        return value
    if isinstance(value, int | float):
        number = float(value)
        if not math.isfinite(number):
            raise PayloadError(f'{key}: {value} is not a finite number', field=key)
        return number
    if isinstance(value, dict | list):
        if _depth(value) > MAX_DEPTH:
            raise PayloadError(f'{key}: nested deeper than {MAX_DEPTH} levels', field=key)
        return value
    raise PayloadError(f'{key}: unsupported value type', field=key)


def _depth(value: object, level: int = 1) -> int:
    """How deep a JSON value nests (stops counting past the limit)."""
    if level > MAX_DEPTH:
        return level
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return max((_depth(child, level + 1) for child in children if isinstance(child, dict | list)), default=level)


def excerpt(body: bytes, limit: int = 200) -> str:
    text = body[:limit].decode('utf-8', errors='replace')
    return text + ('…' if len(body) > limit else '')
