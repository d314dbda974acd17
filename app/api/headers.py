"""Security headers on every HTTP response (pages, API, static files) and safe flags on every cookie.

A plain ASGI middleware (no BaseHTTPMiddleware: it must not buffer streams or touch websockets). The
Content-Security-Policy allows what NiceGUI needs: its inline page script, Vue's runtime template compiler
('unsafe-eval'), inline styles, data:/blob: images and its websocket on the same host.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = '; '.join((
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self' ws: wss:",
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
# Swagger UI (/api/docs) loads its script and style from jsDelivr and its icon from fastapi.tiangolo.com.
DOCS_CSP = CSP.replace("script-src 'self'", "script-src 'self' https://cdn.jsdelivr.net") \
    .replace("style-src 'self'", "style-src 'self' https://cdn.jsdelivr.net") \
    .replace("img-src 'self'", "img-src 'self' https://fastapi.tiangolo.com")
DOCS_PREFIX = '/api/docs'
HEADERS = (
    (b'content-security-policy', CSP.encode()),  # first: DOCS_CSP replaces it
    (b'x-content-type-options', b'nosniff'),
    (b'referrer-policy', b'strict-origin-when-cross-origin'),
    (b'x-frame-options', b'DENY'),
)
HSTS = (b'strict-transport-security', b'max-age=31536000; includeSubDomains')


def harden_cookie(value: bytes, *, secure: bool) -> bytes:
    """Add HttpOnly, SameSite=Lax and (behind TLS) Secure unless the cookie already says so."""
    lower = value.lower()
    if b'httponly' not in lower:
        value += b'; HttpOnly'
    if b'samesite' not in lower:
        value += b'; SameSite=Lax'
    if secure and b'secure' not in lower.replace(b'samesite', b''):
        value += b'; Secure'
    return value


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, force_tls: bool = False) -> None:
        self.app = app
        self.force_tls = force_tls  # GITO_BASE_URL is https: a TLS proxy in front

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope['type'] != 'http':
            await self.app(scope, receive, send)
            return
        tls = self.force_tls or scope.get('scheme') == 'https'
        docs = str(scope.get('path', '')).startswith(DOCS_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message['type'] == 'http.response.start':
                present = {name.lower() for name, _ in message.get('headers', [])}
                headers = [(name, harden_cookie(value, secure=tls) if name.lower() == b'set-cookie' else value)
                           for name, value in message.get('headers', [])]
                headers += [header for header in HEADERS if header[0] not in present]
                if docs:
                    headers = [(name, DOCS_CSP.encode() if name == HEADERS[0][0] else value)
                               for name, value in headers]
                if tls:
                    headers.append(HSTS)
                message['headers'] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
