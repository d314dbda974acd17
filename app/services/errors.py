"""Domain errors: user-safe messages, mapped to problem+json by the API and to notifications by pages."""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    title = 'Bad request'

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(DomainError):
    status = 422
    title = 'Invalid input'


class NotFound(DomainError):
    status = 404
    title = 'Not found'


class Conflict(DomainError):
    status = 409
    title = 'Conflict'


class AuthenticationFailed(DomainError):
    status = 401
    title = 'Authentication failed'


class PermissionDenied(DomainError):
    status = 403
    title = 'Forbidden'


class Unavailable(DomainError):
    status = 503
    title = 'Service unavailable'


class TooManyRequests(DomainError):
    status = 429
    title = 'Too many requests'

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after + 0.999))
        self.headers = {'Retry-After': str(self.retry_after)}
