"""The rule editor: build a rule with forms, see a field's error, backtest before saving, save, edit."""

from __future__ import annotations

import asyncio

from nicegui import ui
from nicegui.elements.mixins.value_element import ValueElement
from nicegui.testing import User

from app.platform import Platform
from tests.pages.conftest import MakeAccount, sign_in


def set_value(user: User, marker: str, value: object) -> None:
    (element,) = user.find(marker=marker).elements
    assert isinstance(element, ValueElement)
    element.set_value(value)


async def error_of(user: User, marker: str) -> str:
    """The error message a field shows (waiting briefly for it to appear)."""
    (element,) = user.find(marker=marker).elements
    for _ in range(50):
        if element.props.get('error'):
            break
        await asyncio.sleep(0.05)
    return str(element.props.get('error-message'))


async def test_build_validate_backtest_and_save_a_range_rule(user: User, app_platform: Platform,
                                                             make_account: MakeAccount) -> None:
    account = await make_account('operator')
    await sign_in(user, account)
    await user.open('/rules')
    await user.should_see('No rules yet.')
    user.find(marker='new-rule').click()
    await user.should_see(marker='rule-name', retries=50)  # after the navigation
    user.find(marker='rule-name').type('Boiler pressure')
    set_value(user, 'condition-type', 'range')
    user.find(marker='range-key').type('pressure')
    set_value(user, 'range-raise', 5)
    set_value(user, 'range-clear', 9)
    user.find(marker='save-rule').click()
    clear_at = next(iter(user.find(marker='range-clear').elements))
    for _ in range(50):
        if clear_at.props.get('error'):
            break
        await asyncio.sleep(0.05)
    assert 'clear level must not be above' in str(clear_at.props.get('error-message')), clear_at.props
    assert await app_platform.rules.all(account.principal) == []

    set_value(user, 'range-clear', 4)
    user.find(marker='backtest').click()
    await user.should_see('Would have raised 0 alarms in the last 24 h and 0 in the last 7 d.')
    user.find(marker='save-rule').click()
    await user.should_see('pressure > 5 (clears at 4) · all devices', retries=50)  # back on the list
    await user.should_see('Boiler pressure')
    (rule,) = await app_platform.rules.all(account.principal)
    assert rule.condition.model_dump() == {'type': 'range', 'key': 'pressure', 'direction': 'high',
                                           'raise_at': 5.0, 'clear_at': 4.0}

    await user.open(f'/rules/{rule.id}')
    name = user.find(marker='rule-name').elements.pop()
    assert isinstance(name, ui.input) and name.value == 'Boiler pressure'
    name.set_value('Boiler overpressure')
    user.find(marker='save-rule').click()
    await user.should_see(marker='new-rule', retries=50)
    await user.should_see('Boiler overpressure')
    assert [r.name for r in await app_platform.rules.all(account.principal)] == ['Boiler overpressure']


async def test_technician_sees_rules_without_editing(user: User, make_account: MakeAccount) -> None:
    account = await make_account('technician')
    await sign_in(user, account)
    await user.open('/rules')
    await user.should_see('No rules yet.')
    await user.should_not_see(marker='new-rule')


async def test_a_window_rule_offers_no_noise_options_it_cannot_honour(user: User, app_platform: Platform,
                                                                      make_account: MakeAccount) -> None:
    account = await make_account('operator')
    await sign_in(user, account)
    await user.open('/rules/new')
    await user.should_see(marker='debounce', retries=50)
    await user.should_not_see(marker='scheduled-rule-note')
    set_value(user, 'debounce', 30)  # typed before switching the type: not sent for a window rule
    set_value(user, 'condition-type', 'window')
    await user.should_see(marker='scheduled-rule-note', retries=20)
    await user.should_not_see(marker='debounce')
    user.find(marker='rule-name').type('Hot on average')
    user.find(marker='window-key').type('temperature')
    set_value(user, 'window-value', 80)
    user.find(marker='save-rule').click()
    await user.should_see(marker='new-rule', retries=50)  # saved: back on the list
    (rule,) = await app_platform.rules.all(account.principal)
    assert rule.condition.type == 'window' and rule.options.debounce_s == 0
