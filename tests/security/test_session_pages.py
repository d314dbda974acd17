"""Sessions as a person meets them: a new session at every sign-in, revoked pages leave within a second."""

from __future__ import annotations

import asyncio
import time

from nicegui import app
from nicegui.testing import User

from app.platform import Platform
from tests.pages.conftest import MakeAccount, sign_in


def stored_token(user: User) -> str:
    assert user.client is not None
    with user.client:
        token = app.storage.user.get('session')
    assert isinstance(token, str)
    return token


async def test_sign_in_rotates_the_session(user: User, app_platform: Platform, make_account: MakeAccount) -> None:
    account = await make_account()
    await sign_in(user, account)
    first = stored_token(user)
    await user.open('/logout')
    await user.should_see('Sign in', retries=50)
    await sign_in(user, account)
    second = stored_token(user)
    assert second != first
    assert await app_platform.sessions.resolve(first) is None
    assert await app_platform.sessions.resolve(second) == account.principal


async def test_revoking_closes_the_open_page_within_a_second(user: User, app_platform: Platform,
                                                             make_account: MakeAccount) -> None:
    account = await make_account()
    await sign_in(user, account)
    await asyncio.sleep(0.3)  # the page's watch timer starts once the browser connects
    started = time.monotonic()
    await app_platform.sessions.revoke(stored_token(user))
    await user.should_see('Sign in', retries=30)
    assert time.monotonic() - started < 1.6
    await user.open('/')
    await user.should_see('Sign in', retries=50)


async def test_disabling_a_user_signs_them_out(user: User, app_platform: Platform,
                                               make_account: MakeAccount) -> None:
    admin = await make_account()
    tech = await make_account('technician', tenant_of=admin)
    await sign_in(user, tech)
    await asyncio.sleep(0.3)
    await app_platform.users.set_disabled(admin.principal, tech.principal.user_id, True)  # type: ignore[arg-type]
    await user.should_see('Sign in', retries=30)


async def test_logout_everywhere_from_the_account_page(user: User, app_platform: Platform,
                                                       make_account: MakeAccount) -> None:
    account = await make_account()
    elsewhere = await app_platform.sessions.create(account.principal, user_agent='Other browser')
    await sign_in(user, account)
    await user.open('/account')
    await user.should_see('Other browser', retries=50)
    await user.should_see('this browser', retries=50)
    user.find(marker='logout-everywhere').click()
    await user.should_see('Sign in', retries=30)
    assert await app_platform.sessions.resolve(elsewhere) is None


async def test_change_password_needs_the_current_one_and_ends_other_sessions(
        user: User, app_platform: Platform, make_account: MakeAccount) -> None:
    account = await make_account('viewer')
    elsewhere = await app_platform.sessions.create(account.principal)
    await sign_in(user, account)
    await user.open('/account')
    await user.should_see(marker='current-password', retries=50)
    user.find(marker='current-password').type('not my password')
    user.find(marker='new-password').type('a brand new password')
    user.find(marker='new-password-again').type('a brand new password')
    user.find(marker='change-password').click()
    await user.should_see('The current password is wrong.', retries=30)
    user.find(marker='current-password').clear().type(account.password)
    user.find(marker='change-password').click()
    await user.should_see('Password changed', retries=30)
    assert await app_platform.sessions.resolve(elsewhere) is None
    assert await app_platform.sessions.resolve(stored_token(user)) is not None
    assert await app_platform.auth.authenticate(account.email, 'a brand new password')
