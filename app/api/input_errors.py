"""Values PostgreSQL cannot take are the client's mistake, not the server's: the NUL character (\\u0000) in text or
JSON, a date or number out of the range of its column. Such a request gets a 422 naming the field (found in the
query, path or JSON body) instead of a 500 from the database; its transaction has rolled back, nothing was written.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError

from app.api.problems import FieldError, problem, server_problem

log = logging.getLogger(__name__)
NUL_SQLSTATES = frozenset({'22P05', '22021'})  # untranslatable character; character not in repertoire
NUL_MESSAGE = 'Text must not contain the NUL character (\\u0000).'
RANGE_MESSAGE = 'A value is out of the range that can be stored (a date before year 1 or after 9999 in UTC?).'


def strings(value: Any, path: str = '') -> Iterator[tuple[str, str]]:
    """Every (dotted path, string) in a JSON value, keys included."""
    if isinstance(value, str):
        yield path or 'body', value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield (f'{path}.{key}' if path else str(key)), str(key)
            yield from strings(item, f'{path}.{key}' if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, f'{path}.{index}' if path else str(index))


def _overflows(text: str) -> bool:
    try:
        moment = datetime.fromisoformat(text.replace('Z', '+00:00'))
    except ValueError:
        return False
    try:
        moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    except OverflowError:
        return True
    return moment.year in (1, 9999)


async def _inputs(request: Request) -> list[tuple[str, str]]:
    found = [(name, value) for name, value in request.query_params.multi_items()]
    found += [(name, str(value)) for name, value in request.path_params.items()]
    with contextlib.suppress(ValueError, RuntimeError):
        found += list(strings(json.loads(await request.body())))
    return found


async def database_input_problem(request: Request, error: DBAPIError) -> Response:
    state = str(getattr(error.orig, 'sqlstate', None) or '')
    client_side = isinstance(getattr(error.orig, '__cause__', None), asyncpg.exceptions.DataError)
    if not (state.startswith('22') or client_side):
        log.error('database error', exc_info=error)
        return await server_problem(request, error)
    inputs = await _inputs(request)
    if state in NUL_SQLSTATES:
        message, field = NUL_MESSAGE, next((path for path, text in inputs if '\x00' in text), None)
    else:
        message, field = RANGE_MESSAGE, next((path for path, text in inputs if _overflows(text)), None)
    return problem(422, title='Invalid input', detail=message, field=field,
                   errors=[FieldError(field=field or 'body', message=message)])
