"""RFC 9457 problem+json for every error under /api; other paths keep NiceGUI's and FastAPI's own handling."""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.services.errors import DomainError

MEDIA_TYPE = 'application/problem+json'
API_PREFIX = '/api'
PROBE_PATHS = frozenset({'/healthz', '/readyz'})
RETRY_AFTER_S = 5
LOCATIONS = frozenset({'body', 'query', 'path', 'header', 'cookie'})

Handler = Callable[[Request, Any], Awaitable[Response]]
AnyHandler = Callable[[Request, Any], Response | Awaitable[Response]]


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """The body of every API error (RFC 9457)."""

    type: str = 'about:blank'
    title: str
    status: int
    detail: str
    field: str | None = None
    errors: list[FieldError] | None = None


class ProblemResponse(JSONResponse):
    media_type = MEDIA_TYPE


def problem_type(title: str) -> str:
    return 'urn:gito:problem:' + re.sub(r'[^a-z0-9]+', '-', title.lower()).strip('-')


def problem(
    status: int, *, title: str, detail: str, field: str | None = None,
    errors: Sequence[FieldError] = (), headers: Mapping[str, str] | None = None, typed: bool = True,
) -> ProblemResponse:
    body = Problem(type=problem_type(title) if typed else 'about:blank', title=title, status=status,
                   detail=detail, field=field, errors=list(errors) or None)
    return ProblemResponse(body.model_dump(exclude_none=True), status_code=status, headers=_headers(status, headers))


def _headers(status: int, extra: Mapping[str, str] | None) -> dict[str, str]:
    headers = dict(extra or {})
    if status == 401:
        headers.setdefault('WWW-Authenticate', 'Bearer')
    if status == 503:
        headers.setdefault('Retry-After', str(RETRY_AFTER_S))
    return headers


def is_api_path(request: Request) -> bool:
    path: str = request.scope.get('path', '')
    root = request.scope.get('root_path', '')
    if root and path.startswith(root):
        path = path[len(root):]
    return path == API_PREFIX or path.startswith(API_PREFIX + '/') or path in PROBE_PATHS


async def domain_problem(_request: Request, error: DomainError) -> Response:
    errors = [FieldError(field=error.field, message=error.message)] if error.field else []
    return problem(error.status, title=error.title, detail=error.message, field=error.field, errors=errors,
                   headers=getattr(error, 'headers', None))


def field_path(location: Sequence[str | int]) -> str:
    """`('body', 'name')` → `name`; `('query', 'start')` → `start`; `('body',)` → `body`."""
    parts = [str(part) for part in location]
    if len(parts) > 1 and parts[0] in LOCATIONS:
        parts = parts[1:]
    return '.'.join(parts) or 'body'


def _error_field(error: Mapping[str, Any]) -> str:
    if error.get('type') == 'json_invalid':  # located at a character offset of the body, not at a field
        return 'body'
    return field_path(error.get('loc', ()))


async def validation_problem(_request: Request, error: RequestValidationError) -> Response:
    errors = [FieldError(field=_error_field(item), message=str(item.get('msg', 'Invalid value.')))
              for item in error.errors()]
    detail = '; '.join(f'{item.field}: {item.message}' for item in errors) or 'The request is invalid.'
    field = errors[0].field if len(errors) == 1 else None
    return problem(422, title='Invalid input', detail=detail, field=field, errors=errors)


async def http_problem(_request: Request, error: StarletteHTTPException) -> Response:
    title = _phrase(error.status_code)
    detail = error.detail if isinstance(error.detail, str) and error.detail else title
    if error.status_code in (204, 304) or error.status_code < 200:
        return Response(status_code=error.status_code, headers=error.headers)
    return problem(error.status_code, title=title, detail=detail, headers=error.headers, typed=False)


async def server_problem(_request: Request, _error: Exception) -> Response:
    """No trace and no message of the exception: those go to the server log only."""
    return problem(500, title='Internal Server Error', typed=False,
                   detail='Something went wrong on our side. The error was logged; please try again later.')


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return 'Error'


@dataclass(frozen=True)
class ApiOnly:
    """An exception handler for /api paths that leaves every other path to the handler it replaced."""

    api: Handler
    fallback: AnyHandler | None

    async def __call__(self, request: Request, error: Exception) -> Response:
        if is_api_path(request):
            return await self.api(request, error)
        if self.fallback is None:
            raise error
        response = self.fallback(request, error)
        return await response if inspect.isawaitable(response) else response


def install_handler(app: FastAPI, key: int | type[Exception], handler: Handler) -> None:
    """Idempotent: building the app again wraps the original handler, not our previous wrapper."""
    current = app.exception_handlers.get(key)
    fallback = current.fallback if isinstance(current, ApiOnly) else current
    app.exception_handlers[key] = ApiOnly(api=handler, fallback=fallback)


def install_problem_handlers(app: FastAPI) -> None:
    """NiceGUI registers handlers for 404 (by status code, so it wins over an HTTPException handler) and for
    Exception (its error page for pages, a bare 500 elsewhere); both are wrapped so that they still serve pages."""
    install_handler(app, DomainError, domain_problem)
    install_handler(app, RequestValidationError, validation_problem)
    install_handler(app, StarletteHTTPException, http_problem)
    install_handler(app, 404, http_problem)
    install_handler(app, Exception, server_problem)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of the problem responses a route can give."""
    return {status: {'model': Problem, 'description': _phrase(status),
                     'content': {MEDIA_TYPE: {'schema': {'$ref': '#/components/schemas/Problem'}}}}
            for status in statuses}

