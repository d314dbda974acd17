"""JSON logs on stderr: a constant message, with context from `extra=`."""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime

import orjson

_STANDARD = frozenset(vars(logging.LogRecord('', 0, '', 0, '', (), None)).keys()) | {'message', 'asctime'}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            'ts': datetime.fromtimestamp(record.created, UTC).isoformat(timespec='milliseconds'),
            'level': record.levelname.lower(),
            'logger': record.name,
            'msg': record.getMessage(),
        }
        entry.update({key: value for key, value in vars(record).items() if key not in _STANDARD})
        if record.exc_info:
            entry['exc'] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = 'INFO') -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ('uvicorn.access', 'amqtt', 'transitions'):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class Throttled:
    """One record per `every_s` for an event that can come in floods (a message per ignored or rejected payload):
    the events in between are only counted, and the next record says how many there were (`suppressed`). Each
    event is still counted where users look (per device, in the consumer's counters); the log gets a sample."""

    def __init__(self, logger: logging.Logger, level: int, message: str, *, every_s: float = 10.0) -> None:
        self._logger = logger
        self._level = level
        self._message = message
        self._every_s = every_s
        self._next = 0.0
        self._suppressed = 0

    def __call__(self, **extra: object) -> None:
        now = time.monotonic()
        if now < self._next:
            self._suppressed += 1
            return
        self._logger.log(self._level, self._message, extra={**extra, 'suppressed': self._suppressed})
        self._suppressed = 0
        self._next = now + self._every_s
