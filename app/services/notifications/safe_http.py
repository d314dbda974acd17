"""Outbound HTTP for Slack and webhooks that cannot be turned against the host's own network (SSRF).

The host is resolved here, every address is checked, and the request goes to the checked address itself
(the original name travels as Host header and TLS SNI), so a second DNS answer cannot rebind it.
Redirects are never followed; the answer body is read up to a cap.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from app.services.notifications.address_policy import METADATA_HOSTS, IPAddress, Network, blocked_reason

Resolver = Callable[[str, int], Awaitable[list[str]]]
TIMEOUT_S = 10.0
MAX_BODY = 1_000_000
LEGACY_IPV4_CHARS = frozenset('0123456789abcdefx.')


class BlockedTarget(Exception):
    """The URL may not be reached; the message says why (user-safe, no secrets)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    address: IPAddress


@dataclass(frozen=True)
class HttpResult:
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int
    body: bytes = b''


async def resolve_host(host: str, port: int) -> list[str]:
    """All addresses of `host` (the system resolver; it also reads decimal, octal and hex IPv4 forms)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class SafeHttpClient:
    def __init__(self, *, resolver: Resolver | None = None, timeout_s: float = TIMEOUT_S,
                 max_body: int = MAX_BODY) -> None:
        self._resolver = resolver
        self._timeout_s = timeout_s
        self._max_body = max_body

    async def check(self, url: str, allowed: Sequence[Network] = ()) -> Target:
        """Resolve and vet the URL's host once; raise BlockedTarget with the reason if it may not be reached."""
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in ('http', 'https'):
            raise BlockedTarget(f'Only http and https URLs are allowed, not {scheme or "none"!r}.')
        host = (parts.hostname or '').rstrip('.').lower()
        if not host:
            raise BlockedTarget('The URL has no host.')
        if host in METADATA_HOSTS or host.endswith('.internal'):
            raise BlockedTarget(f'{host} is a cloud metadata or internal name.')
        try:
            port = parts.port or (443 if scheme == 'https' else 80)
        except ValueError as error:
            raise BlockedTarget('The URL has an invalid port.') from error
        resolver = self._resolver or resolve_host
        try:
            literal = _literal(host)
            names = [literal] if literal else await resolver(host, port)
        except OSError as error:
            raise BlockedTarget(f'{host} could not be resolved.') from error
        if not names:
            raise BlockedTarget(f'{host} could not be resolved.')
        addresses = [ipaddress.ip_address(name.split('%')[0]) for name in names]
        for address in addresses:
            reason = blocked_reason(address, allowed)
            if reason is not None:
                raise BlockedTarget(f'Blocked: {host} resolves to {reason}.')
        return Target(scheme=scheme, host=host, port=port, address=addresses[0])

    async def post(self, url: str, *, content: bytes, headers: Mapping[str, str],
                   allowed: Sequence[Network] = ()) -> HttpResult:
        started = time.perf_counter()
        try:
            target = await self.check(url, allowed)
        except BlockedTarget as error:
            return HttpResult(ok=False, status_code=None, error=str(error), duration_ms=_ms(started))
        original = httpx.URL(url.strip())
        pinned = original.copy_with(host=str(target.address))
        netloc = original.netloc.decode('ascii').rsplit('@', 1)[-1]
        extensions = {'sni_hostname': target.host} if target.scheme == 'https' else {}
        try:
            async with httpx.AsyncClient(follow_redirects=False, trust_env=False, timeout=self._timeout_s) as client:
                request = client.build_request('POST', pinned, content=content,
                                               headers={**headers, 'Host': netloc}, extensions=extensions)
                response = await client.send(request, stream=True)
                try:
                    body = await self._read_capped(response)
                finally:
                    await response.aclose()
        except httpx.TimeoutException:
            return HttpResult(ok=False, status_code=None, error=f'Timed out after {self._timeout_s:g} s.',
                              duration_ms=_ms(started))
        except httpx.HTTPError as error:
            return HttpResult(ok=False, status_code=None, error=f'Receiver unreachable: {type(error).__name__}.',
                              duration_ms=_ms(started))
        return _result(response, body, started)

    async def _read_capped(self, response: httpx.Response) -> bytes:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= self._max_body:
                return bytes(body[:self._max_body])
        return bytes(body)


def _result(response: httpx.Response, body: bytes, started: float) -> HttpResult:
    code = response.status_code
    if 200 <= code < 300:
        return HttpResult(ok=True, status_code=code, error=None, duration_ms=_ms(started), body=body)
    if 300 <= code < 400:
        error = f'HTTP {code}: redirect not followed (to {response.headers.get("location", "?")[:200]}).'
    else:
        error = f'HTTP {code} from receiver.'
    return HttpResult(ok=False, status_code=code, error=error, duration_ms=_ms(started), body=body)


def _literal(host: str) -> str | None:
    """The address a literal host names, including the legacy IPv4 spellings (2130706433, 0x7f.1, 0177.0.0.1)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if host and set(host) <= LEGACY_IPV4_CHARS:
        try:
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
