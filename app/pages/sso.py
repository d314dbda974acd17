"""Single sign-on pages: off to the OpenID Connect provider, and back with a code to sign in."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from app.components.frame import TOUCH, bare_frame
from app.pages import session
from app.platform import Platform
from app.services.errors import DomainError

COOKIE = 'gito_oidc'
COOKIE_PATH = '/auth/oidc'


def failed(error: DomainError) -> None:
    with bare_frame('Single sign-on'):
        ui.label(str(error)).classes('text-negative').mark('sso-error')
        ui.link('Back to sign-in', '/login').classes(TOUCH)


def register(platform: Platform) -> None:
    @ui.page('/auth/oidc/login')
    async def sso_login() -> RedirectResponse | None:
        if not platform.oidc.enabled:
            return RedirectResponse('/login')
        try:
            url, pending = await platform.oidc.begin()
        except DomainError as error:
            failed(error)
            return None
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(COOKIE, pending, max_age=600, path=COOKIE_PATH, httponly=True, samesite='lax',
                            secure=platform.base_url.startswith('https://'))
        return response

    @ui.page('/auth/oidc/callback')
    async def sso_callback(request: Request, code: str = '', state: str = '') -> RedirectResponse | None:
        try:
            principal = await platform.oidc.complete(code=code, state=state, cookie=request.cookies.get(COOKIE),
                                                     ip=session.client_details()[0])
        except DomainError as error:
            failed(error)
            return None
        await session.sign_in(platform, principal)
        response = RedirectResponse('/', status_code=303)
        response.delete_cookie(COOKIE, path=COOKIE_PATH)
        return response
