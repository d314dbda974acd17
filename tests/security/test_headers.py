"""Security headers on pages and API answers; cookie flags."""

from __future__ import annotations

from nicegui.testing import User

from app.api.headers import harden_cookie
from tests.pages.conftest import MakeAccount


async def test_security_headers_on_a_page_and_an_api_answer(user: User, make_account: MakeAccount) -> None:
    await make_account()
    first = await user.http_client.get('/login')
    cookies = first.headers.get_list('set-cookie')
    assert cookies, 'NiceGUI sets its storage cookie'
    assert all('httponly' in cookie.lower() and 'samesite=lax' in cookie.lower() for cookie in cookies)
    assert all('secure' not in cookie.lower().replace('samesite', '') for cookie in cookies)  # plain http
    for path in ('/login', '/api/v1/devices', '/api/openapi.json'):
        response = await user.http_client.get(path)
        headers = response.headers
        assert "frame-ancestors 'none'" in headers['content-security-policy'], path
        assert "default-src 'self'" in headers['content-security-policy'], path
        assert headers['x-content-type-options'] == 'nosniff', path
        assert headers['x-frame-options'] == 'DENY', path
        assert headers['referrer-policy'] == 'strict-origin-when-cross-origin', path
        assert 'strict-transport-security' not in headers, path  # plain http here
    docs = await user.http_client.get('/api/docs')
    assert 'https://cdn.jsdelivr.net' in docs.headers['content-security-policy']


def test_cookie_flags_behind_tls() -> None:
    assert harden_cookie(b'session=abc; Path=/', secure=True) == b'session=abc; Path=/; HttpOnly; SameSite=Lax; Secure'
    assert harden_cookie(b'session=abc; path=/; httponly; samesite=lax', secure=False) \
        == b'session=abc; path=/; httponly; samesite=lax'
    assert harden_cookie(b's=1; HttpOnly; SameSite=Lax; Secure', secure=True) == b's=1; HttpOnly; SameSite=Lax; Secure'
