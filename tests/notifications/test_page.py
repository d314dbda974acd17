"""The notifications page: create a signed webhook channel, see its secret once, test it, allow-list, retry."""

from __future__ import annotations

from nicegui import ui
from nicegui.testing import User

from tests.notifications.conftest import Receiver, verify_standard_webhook
from tests.pages.conftest import MakeAccount, make_account, sign_in  # noqa: F401 - fixture reused


async def test_webhook_channel_from_the_page_to_a_verified_delivery(
    user: User, make_account: MakeAccount, receiver: Receiver,  # noqa: F811
) -> None:
    await sign_in(user, await make_account())
    user.find(marker='nav-notifications').click()
    await user.should_see('Notification channels')
    await user.should_see('No channel yet: alarms notify nobody.')
    user.find(marker='add-channel').click()
    user.find(marker='channel-name').type('Ops webhook')
    kind = next(iter(user.find(marker='channel-kind').elements))
    with user:
        assert isinstance(kind, ui.select)
        kind.value = 'webhook'
    user.find(marker='channel-url').type(receiver.url)
    user.find(marker='channel-save').click()
    await user.should_see('it will not be shown again', retries=30)
    secret_label = next(iter(user.find(marker='signing-secret').elements))
    assert isinstance(secret_label, ui.label) and secret_label.text.startswith('whsec_')
    secret = secret_label.text
    user.find(marker='secret-done').click()
    await user.should_not_see(marker='signing-secret')
    await user.should_see('Ops webhook')
    await user.should_not_see(secret)

    user.find(marker='test-Ops webhook').click()
    await user.should_see('Test message failed: Blocked: 127.0.0.1', retries=30)
    await user.should_see(marker='delivery-error')
    assert receiver.requests == []

    user.find('Private network targets').click()
    user.find(marker='allowed-cidrs').type('127.0.0.0/8')
    user.find(marker='save-cidrs').click()
    await user.should_see('Saved', retries=30)
    user.find(marker='retry-now').click()
    await user.should_see('sent', retries=50)
    await user.should_not_see(marker='retry-now', retries=50)
    [(headers, body)] = receiver.requests
    assert verify_standard_webhook(secret, headers, body)


async def test_viewer_has_no_notifications_entry(user: User, make_account: MakeAccount) -> None:  # noqa: F811
    await sign_in(user, await make_account('viewer'))
    await user.should_not_see(marker='nav-notifications')
    await user.open('/notifications')
    await user.should_see('Only admins and operators can see notifications.')


async def test_routing_of_a_channel_is_changed_on_the_page_and_attempts_are_listed(
    user: User, make_account: MakeAccount,  # noqa: F811
) -> None:
    from app.models.rules import RuleCreate
    from tests import support

    account = await make_account()
    platform = support.PLATFORM
    assert platform is not None
    rule = await platform.rules.create(account.principal, RuleCreate.model_validate({
        'name': 'Boiler too hot', 'condition': {'type': 'threshold', 'key': 't', 'op': '>', 'value': 80}}))
    await sign_in(user, account)
    await user.open('/notifications')
    user.find(marker='add-channel').click()
    user.find(marker='channel-name').type('Night shift')
    user.find(marker='channel-recipients').type('night@example.com')
    user.find(marker='channel-save').click()
    await user.should_see(marker='route-Night shift', retries=50)
    assert routing(user).endswith('info · every rule · on raise')

    user.find(marker='route-Night shift').click()
    await user.should_see(marker='routing-save')
    for marker, value in (('channel-rules', [str(rule.id)]), ('channel-severities', ['critical', 'major']),
                          ('channel-on-clear', True)):
        (element,) = user.find(marker=marker).elements
        with user:
            element.value = value  # type: ignore[attr-defined]
    user.find(marker='routing-save').click()
    await user.should_see('Routing saved', retries=50)
    await user.should_see('critical, major · Boiler too hot · on raise, clear', retries=50)
    (channel,) = await platform.notifications.channels.list(account.principal)
    assert (channel.rule_ids, channel.on_clear, channel.on_acknowledge) == ([rule.id], True, False)

    user.find(marker='test-Night shift').click()
    await user.should_see('Test message failed: SMTP is not configured', retries=50)
    await user.should_see(marker='delivery-attempts', retries=50)  # the list reloads after the notice
    user.find(marker='delivery-attempts').click()
    await user.should_see(marker='attempt-row', retries=50)
    (attempt,) = user.find(marker='attempt-row').elements
    assert isinstance(attempt, ui.label)
    assert ' · no response · ' in attempt.text and 'failed: SMTP is not configured' in attempt.text


def routing(user: User) -> str:
    (label,) = user.find(marker='routing-of-Night shift').elements
    assert isinstance(label, ui.label)
    return str(label.text)
