from datetime import UTC, datetime, timedelta

import pytest

from app.ingest.payload import MAX_PAYLOAD_BYTES, PayloadError, decode, parse_ts

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_flat_object_becomes_one_reading_per_key() -> None:
    [message] = decode(b'{"temperature": 21.5, "on": true, "mode": "eco", "cfg": {"a": 1}, "seq": 7}', received_at=NOW)
    assert message.seq == 7
    assert message.ts == NOW
    assert message.readings == {'temperature': 21.5, 'on': True, 'mode': 'eco', 'cfg': {'a': 1}}
    assert list(message.readings) == ['temperature', 'on', 'mode', 'cfg']  # in the order sent


def test_integers_are_stored_as_numbers() -> None:
    [message] = decode(b'{"count": 3}', received_at=NOW)
    assert message.readings['count'] == 3.0 and isinstance(message.readings['count'], float)


@pytest.mark.parametrize(('raw', 'expected'), [
    ('1795000000000', datetime.fromtimestamp(1795000000, UTC)),
    ('"2026-11-22T11:59:00Z"', datetime(2026, 11, 22, 11, 59, tzinfo=UTC)),
    ('"2026-11-22T12:59:00+01:00"', datetime(2026, 11, 22, 11, 59, tzinfo=UTC)),
])
def test_timestamps_in_ms_or_iso(raw: str, expected: datetime) -> None:
    [message] = decode(f'{{"ts": {raw}, "v": 1}}'.encode(), received_at=NOW)
    assert message.ts == expected


def test_array_gives_several_messages() -> None:
    messages = decode(b'[{"v": 1, "ts": 1795000000000}, {"v": 2, "ts": 1795000001000}]', received_at=NOW)
    assert [m.readings for m in messages] == [{'v': 1.0}, {'v': 2.0}]


@pytest.mark.parametrize(('body', 'reason'), [
    (b'{"v": 1', 'not valid JSON'),
    (b'{"v": NaN}', 'not valid JSON'),
    (b'[1, 2]', 'must be a JSON object'),
    (b'"hello"', 'expected a JSON object'),
    (b'{}', 'no values'),
    (b'{"ts": 1795000000000}', 'no values'),
    (b'{"v": null}', 'null is not a value'),
    (b'{"v": 1, "ts": "yesterday"}', 'not ISO 8601'),
    (b'{"v": 1, "ts": 1795000000}', 'before 2000-01-01'),
    (b'{"v": 1, "seq": -1}', 'seq must be'),
    (b'{"v": 1, "seq": "1"}', 'seq must be'),
    (b'{"v": 1, "seq": true}', 'seq must be'),
    (b'{"v": 1, "seq": 1.0}', 'seq must be'),
    (b'{"v": 1, "seq": 9223372036854775808}', 'seq must be'),
    (b'{"v": 1, "ts": true}', 'ts must be'),
    (b'[]', 'empty array'),
    (b'[{"v": 1}, {"w": null}]', 'element 1: w: null'),
    (b'{"v": Infinity}', 'not valid JSON'),
    (b'{"v": 1e999}', 'not valid JSON'),
    (b'{"v": {"a": ' + b'[' * 40 + b']' * 40 + b'}}', 'v: nested deeper than 32 levels'),
    (b'{"v": ' + b'[' * 2000 + b']' * 2000 + b'}', 'not valid JSON'),
    (b'{"v": true, "ts": 1e30}', r'ts 1e\+30 is out of range'),
])
def test_bad_payloads_are_rejected_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        decode(body, received_at=NOW)


def test_future_timestamp_is_rejected() -> None:
    future = int((NOW + timedelta(hours=1)).timestamp() * 1000)
    with pytest.raises(PayloadError, match='3600 s in the future'):
        decode(f'{{"v": 1, "ts": {future}}}'.encode(), received_at=NOW)


def test_oversized_payload_is_rejected_before_parsing() -> None:
    body = b'{"v": "' + b'x' * MAX_PAYLOAD_BYTES + b'"}'
    with pytest.raises(PayloadError, match=r'the limit is 262144'):
        decode(body, received_at=NOW)


def test_mqtt_does_not_take_arrays_when_told_not_to() -> None:
    with pytest.raises(PayloadError, match=r'expected a JSON object of key to value$'):
        decode(b'[{"v": 1}]', received_at=NOW, allow_array=False)


def test_timestamps_of_other_decoders_are_checked_like_orjson_ones() -> None:
    """`parse_ts` takes what any JSON decoder gives: int subclasses other than bool, and floats that are not finite."""

    class Millis(int):
        pass

    assert parse_ts(Millis(1795000000000), NOW) == parse_ts(1795000000000, NOW)
    assert parse_ts(1795000000000.5, NOW) == datetime(2026, 11, 18, 11, 6, 40, 500, tzinfo=UTC)
    for bad, reason in ((float('nan'), 'finite'), (float('inf'), 'finite'), (False, 'ts must be'),
                        (10**30, 'out of range'), ([1], 'ts must be')):
        with pytest.raises(PayloadError, match=reason):
            parse_ts(bad, NOW)
