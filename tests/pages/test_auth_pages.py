"""Onboarding, sign-in and sign-out as a person sees them."""

from __future__ import annotations

from nicegui.testing import User

from app.platform import Platform
from tests.pages.conftest import MakeAccount, sign_in


async def test_empty_installation_is_onboarded_and_signed_in(fresh_install: str, user: User,
                                                            app_platform: Platform) -> None:
    await user.open('/')
    await user.should_see('Set up Gito')
    user.find(marker='organisation').type('Acme Water')
    user.find(marker='email').type('Admin@Acme.example')
    user.find(marker='password').type('a long enough password')
    user.find(marker='password-again').type('another password!!')
    user.find(marker='onboard').click()
    await user.should_see('The passwords do not match.')
    assert await app_platform.tenants.needs_onboarding()

    user.find(marker='password-again').clear().type('a long enough password')
    user.find(marker='onboard').click()
    await user.should_see(marker='device-grid', retries=50)
    await user.should_see('Acme Water')
    await user.should_see('admin@acme.example')
    await user.should_see('No devices yet.')
    assert not await app_platform.tenants.needs_onboarding()


async def test_onboarding_shows_the_services_message(fresh_install: str, user: User) -> None:
    await user.open('/onboarding')
    user.find(marker='organisation').type('Acme')
    user.find(marker='email').type('admin@acme.example')
    user.find(marker='password').type('short')
    user.find(marker='password-again').type('short')
    user.find(marker='onboard').click()
    await user.should_see('The password needs at least 10 characters.')


async def test_onboarding_is_refused_once_users_exist(user: User, make_account: MakeAccount) -> None:
    await make_account()
    await user.open('/onboarding')
    await user.should_see(marker='sign-in')
    await user.should_not_see('Set up Gito')


async def test_signed_out_visitor_is_sent_to_login(user: User, make_account: MakeAccount) -> None:
    await make_account()
    await user.open('/')
    await user.should_see(marker='sign-in')


async def test_wrong_password_shows_the_message(user: User, make_account: MakeAccount) -> None:
    account = await make_account()
    await user.open('/login')
    user.find(marker='email').type(account.email)
    user.find(marker='password').type('not the password')
    user.find(marker='sign-in').click()
    await user.should_see('Wrong e-mail address or password.')
    await user.should_not_see(marker='device-grid')


async def test_login_then_logout(user: User, make_account: MakeAccount) -> None:
    account = await make_account(role='operator')
    await sign_in(user, account)
    await user.should_see(account.tenant_name)
    await user.should_see(account.email)
    await user.should_see(marker='broker-status')
    user.find(marker='logout').click()
    await user.should_see(marker='sign-in', retries=50)
    await user.open('/')
    await user.should_see(marker='sign-in')
    await user.should_not_see(account.tenant_name)


async def test_the_header_follows_the_broker_link(user: User, make_account: MakeAccount,
                                                  app_platform: Platform) -> None:
    account = await make_account(role='viewer')
    await sign_in(user, account)
    link = app_platform.link
    was = link.connected
    try:
        link.connected = False
        await user.should_see('Broker offline', retries=30)
        link.connected = True
        await user.should_see('Broker connected', retries=30)
        await user.should_not_see('Broker offline')
    finally:
        link.connected = was
