"""Who is signed in, kept in NiceGUI's per-browser user storage.

Every page asks `signed_in(platform)`; sign-in and sign-out go through `sign_in` / `sign_out`. Keep all session
handling here so that server-side, revocable sessions can replace it in one place.
"""

from __future__ import annotations

from typing import get_args
from uuid import UUID

from fastapi.responses import RedirectResponse
from nicegui import app

from app.models.schemas import Principal, Role
from app.platform import Platform

KEY = 'principal'


def sign_in(principal: Principal) -> None:
    app.storage.user[KEY] = {
        'tenant_id': str(principal.tenant_id), 'user_id': str(principal.user_id or ''),
        'role': principal.role, 'email': principal.email,
    }


def sign_out() -> None:
    app.storage.user.pop(KEY, None)


def current_principal() -> Principal | None:
    stored = app.storage.user.get(KEY)
    if not isinstance(stored, dict):
        return None
    try:
        role = stored['role']
        if role not in get_args(Role):
            raise ValueError(role)
        user_id = stored.get('user_id') or ''
        return Principal(tenant_id=UUID(stored['tenant_id']), user_id=UUID(user_id) if user_id else None,
                         role=role, email=str(stored.get('email', '')))
    except (KeyError, ValueError, TypeError):
        sign_out()
        return None


async def signed_in(platform: Platform) -> Principal | RedirectResponse:
    """The signed-in principal, or where to go instead: /onboarding on an empty install, else /login."""
    principal = current_principal()
    if principal is not None:
        return principal
    if await platform.tenants.needs_onboarding():
        return RedirectResponse('/onboarding')
    return RedirectResponse('/login')
