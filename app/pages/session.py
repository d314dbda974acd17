"""Who is signed in: a server-side session whose token alone is kept in NiceGUI's per-browser storage.

Every page asks `signed_in(platform)`; sign-in and sign-out go through `sign_in` / `sign_out`. Sign-in always
creates a new session (NiceGUI's browser id is neither rotated nor revocable, so it is never the session);
each signed-in page re-checks its session every second and leaves for /login once it is revoked or expired.
"""

from __future__ import annotations

from fastapi.responses import RedirectResponse
from nicegui import app, ui

from app.models.schemas import Principal
from app.platform import Platform

KEY = 'session'
CHECK_EVERY_S = 1.0


def client_details() -> tuple[str, str]:
    try:
        request = ui.context.client.request
    except RuntimeError:
        return '', ''
    # the peer address; behind a proxy, uvicorn's --forwarded-allow-ips makes it the real client's
    ip = request.client.host if request.client else ''
    return ip, request.headers.get('user-agent', '')


def current_token() -> str | None:
    token = app.storage.user.get(KEY)
    return token if isinstance(token, str) else None


async def sign_in(platform: Platform, principal: Principal) -> None:
    """A new session for this browser; any earlier one of this browser is ended."""
    old = current_token()
    if old:
        await platform.sessions.revoke(old)
    ip, user_agent = client_details()
    app.storage.user.pop('principal', None)  # the pre-session format
    app.storage.user[KEY] = await platform.sessions.create(principal, ip=ip, user_agent=user_agent)


async def sign_out(platform: Platform) -> None:
    token = current_token()
    app.storage.user.pop(KEY, None)
    if token:
        await platform.sessions.revoke(token)


async def current_principal(platform: Platform) -> Principal | None:
    token = current_token()
    principal = await platform.sessions.resolve(token)
    if principal is None and token:
        app.storage.user.pop(KEY, None)
    return principal


def watch_session(platform: Platform, token: str) -> None:
    """Leave the page for /login within a second of the session ending (revoked, expired, user disabled).

    The timer starts once the browser connects: a timer made while an async page is still being built would
    make NiceGUI send the page before the rest of it exists.
    """
    client = ui.context.client
    started = False

    def start() -> None:
        nonlocal started
        if started:
            return
        started = True

        async def check() -> None:
            if await platform.sessions.resolve(token) is None:
                timer.deactivate()
                ui.navigate.to('/login')

        with client:
            timer = ui.timer(CHECK_EVERY_S, check)

    client.on_connect(start)


async def signed_in(platform: Platform) -> Principal | RedirectResponse:
    """The signed-in principal, or where to go instead: /onboarding on an empty install, else /login."""
    principal = await current_principal(platform)
    token = current_token()
    if principal is not None and token is not None:
        watch_session(platform, token)
        return principal
    if await platform.tenants.needs_onboarding():
        return RedirectResponse('/onboarding')
    return RedirectResponse('/login')
