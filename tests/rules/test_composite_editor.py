"""The rule editor builds composites of any number of sub-conditions, of any stream type, row by row."""

from __future__ import annotations

from nicegui import ui
from nicegui.testing import User

from app.platform import Platform
from tests.pages.conftest import MakeAccount, sign_in
from tests.rules.test_rules_page import error_of, set_value


async def test_add_remove_and_mix_sub_conditions_then_edit(user: User, app_platform: Platform,
                                                           make_account: MakeAccount) -> None:
    account = await make_account('operator')
    await sign_in(user, account)
    await user.open('/rules/new')
    user.find(marker='rule-name').type('Heating fault')
    set_value(user, 'condition-type', 'composite')
    set_value(user, 'composite-mode', 'weighted')
    set_value(user, 'composite-score', 3)
    # two rows to start with: a threshold and (changed to) a comparison
    user.find(marker='sub-0-threshold-key').type('temperature')
    user.find(marker='sub-0-threshold-value').type('80')
    set_value(user, 'sub-0-weight', 2)
    set_value(user, 'sub-1-kind', 'comparison')
    user.find(marker='sub-1-comparison-left').type('return_temp')
    user.find(marker='sub-1-comparison-right').type('supply_temp')
    set_value(user, 'sub-1-comparison-offset', 2)
    for _ in range(3):  # rows 2, 3 and 4; row 3 is removed again
        user.find(marker='add-sub').click()
    await user.should_see(marker='sub-4-kind')
    user.find(marker='sub-3-remove').click()
    await user.should_not_see(marker='sub-3-kind')
    set_value(user, 'sub-2-kind', 'range')
    user.find(marker='sub-2-range-key').type('pressure')
    set_value(user, 'sub-2-range-raise_at', 5)
    set_value(user, 'sub-2-range-clear_at', 4)
    set_value(user, 'sub-4-kind', 'rate')
    user.find(marker='save-rule').click()  # the rate row has no key yet
    assert 'at least 1 character' in await error_of(user, 'sub-4-rate-key')
    assert await app_platform.rules.all(account.principal) == []

    user.find(marker='sub-4-rate-key').type('level')
    set_value(user, 'sub-4-rate-per_minute', 10)
    user.find(marker='save-rule').click()
    await user.should_see(marker='new-rule', retries=50)
    (rule,) = await app_platform.rules.all(account.principal)
    condition = rule.condition.model_dump()
    assert [part['type'] for part in condition['conditions']] == ['threshold', 'comparison', 'range', 'rate']
    assert condition['conditions'][1] == {'type': 'comparison', 'left': 'return_temp', 'op': '>',
                                          'right': 'supply_temp', 'offset': 2.0}
    assert (condition['mode'], condition['weights'], condition['min_score']) == ('weighted', [2, 1, 1, 1], 3)
    await user.should_see('score ≥ 3 of (temperature > 80, return_temp > supply_temp + 2, pressure > 5')

    await user.open(f'/rules/{rule.id}')
    await user.should_see(marker='sub-3-kind')  # the four rows come back, in order
    await user.should_not_see(marker='sub-4-kind')
    (left,) = user.find(marker='sub-1-comparison-left').elements
    assert isinstance(left, ui.input) and left.value == 'return_temp'
    user.find(marker='sub-0-remove').click()
    set_value(user, 'composite-mode', 'or')
    user.find(marker='save-rule').click()
    await user.should_see(marker='new-rule', retries=50)
    (edited,) = await app_platform.rules.all(account.principal)
    assert [part.type for part in edited.condition.conditions] == ['comparison', 'range', 'rate']  # type: ignore[union-attr]


async def test_a_schedule_of_several_time_windows_in_a_chosen_zone(user: User, app_platform: Platform,
                                                                   make_account: MakeAccount) -> None:
    account = await make_account('operator')
    await sign_in(user, account)
    await user.open('/rules/new')
    user.find(marker='rule-name').type('Office hours heat')
    user.find(marker='threshold-key').type('temperature')
    user.find(marker='threshold-value').type('28')
    set_value(user, 'scheduled', True)
    set_value(user, 'timezone', 'Europe/Berlin')
    user.find(marker='add-window').click()
    await user.should_see(marker='schedule-1-days')
    set_value(user, 'schedule-1-days', [5, 6])
    set_value(user, 'schedule-1-start', '25:00')
    user.find(marker='save-rule').click()
    assert 'time' in (await error_of(user, 'schedule-1-start')).lower()
    set_value(user, 'schedule-1-start', '10:00')
    set_value(user, 'schedule-1-end', '14:00')
    user.find(marker='save-rule').click()
    await user.should_see(marker='new-rule', retries=50)
    (rule,) = await app_platform.rules.all(account.principal)
    assert rule.options.timezone == 'Europe/Berlin'
    assert [(w.days, str(w.start), str(w.end)) for w in rule.options.schedule] == [
        ([0, 1, 2, 3, 4], '08:00:00', '18:00:00'), ([5, 6], '10:00:00', '14:00:00')]

    await user.open(f'/rules/{rule.id}')  # both windows come back (editing no longer keeps only the first)
    await user.should_see(marker='schedule-1-days')
    user.find(marker='schedule-0-remove').click()
    user.find(marker='save-rule').click()
    await user.should_see(marker='new-rule', retries=50)
    (edited,) = await app_platform.rules.all(account.principal)
    assert [w.days for w in edited.options.schedule] == [[5, 6]]
