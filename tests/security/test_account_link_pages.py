"""Invitations and password resets as people meet them: the admin's users page, the link pages, the login page."""

from __future__ import annotations

from uuid import uuid4

from nicegui import ui
from nicegui.testing import User

from app.platform import Platform
from tests.notifications.conftest import Inbox
from tests.pages.conftest import Account, MakeAccount, sign_in
from tests.security.test_account_links import mail_to, token_in


async def test_admin_invites_without_smtp_and_the_invitee_joins_through_the_link(
        user: User, app_platform: Platform, make_account: MakeAccount) -> None:
    admin = await make_account()
    await sign_in(user, admin)
    await user.open('/users')
    invitee = f'new-{uuid4().hex[:8]}@example.com'
    user.find(marker='new-email').type(invitee)
    user.find(marker='invite-user').click()
    await user.should_see('the invitation was not e-mailed', retries=50)
    await user.should_see(marker=f'invite-{invitee}')
    [code] = user.find(marker='invite-link').elements
    assert isinstance(code, ui.code)
    link = code.content.strip().strip('`').strip()
    assert link.startswith(app_platform.base_url + '/invite/')

    await user.open('/logout')
    await user.open(link.removeprefix(app_platform.base_url))
    await user.should_see(f'as {invitee}')
    user.find(marker='display-name').type('Grace Hopper')
    user.find(marker='password').type('grace secret pw')
    user.find(marker='password-again').type('grace secret pw')
    user.find(marker='accept-invite').click()
    await user.should_see(marker='device-grid', retries=50)
    await user.should_see(invitee)

    await user.open('/logout')
    await user.open(link.removeprefix(app_platform.base_url))
    await user.should_see('expired or was already used')


async def test_forgotten_password_from_the_login_page(smtp_env: Inbox, user: User, app_platform: Platform,
                                                      make_account: MakeAccount) -> None:
    account = await make_account()
    await user.open('/login')
    user.find(marker='forgot-password').click()
    await user.should_see('Send link', retries=50)
    user.find(marker='email').type(account.email)
    user.find(marker='send-reset').click()
    await user.should_see('If an account exists for this address')
    [(_subject, plain)] = await mail_to(smtp_env, account.email)

    await user.open(f'/reset/{token_in(plain)}')
    await user.should_see(f'For {account.email}')
    user.find(marker='password').type('a fresh password')
    user.find(marker='password-again').type('a fresh password')
    user.find(marker='set-password').click()
    await user.should_see('Sign in', retries=50)
    await sign_in(user, Account(account.principal, account.email, 'a fresh password', account.tenant_name))
