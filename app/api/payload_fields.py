"""Which field a payload rejection is about, read from the reason `app.ingest.payload` gives."""

from __future__ import annotations

import re

ELEMENT = re.compile(r'^element \d+: ')
VALUE_PROBLEM = re.compile(
    r'^(?P<key>.+): (null is not a value|text longer than .*|unsupported value type|.+ is not a finite number)$',
)


def reason_field(reason: str) -> str | None:
    """`ts`, `seq` or the offending key; None when the payload as a whole is wrong (not JSON, too many keys)."""
    text = ELEMENT.sub('', reason)
    if text.startswith('ts '):
        return 'ts'
    if text.startswith('seq '):
        return 'seq'
    match = VALUE_PROBLEM.match(text)
    return match.group('key') if match else None
