"""Backtest of an unsaved rule over stored readings, with debounce honoured; and over the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.models.maintenance import MaintenanceCreate
from app.models.rules import RuleCreate
from app.services.rules.backtest import Backtester
from tests.api.conftest import Api, DeviceMaker, SignIn
from tests.rules.conftest import Rig
from tests.rules.test_rate_window_nodata import store


async def test_backtest_counts_alarms_per_device_for_24h_and_7d(rig: Rig) -> None:
    now = datetime.now(UTC)
    hot_cold = [(now - timedelta(days=3, minutes=m), 90.0 if m % 20 < 10 else 20.0) for m in range(0, 40)]
    recent = [(now - timedelta(hours=2, minutes=m), 95.0 if m < 3 else 20.0) for m in range(6)]
    await store(rig, 'temperature', hot_cold + recent)
    backtester = Backtester(rig.platform.db, rig.maintenance, clock=lambda: now)
    rule = RuleCreate.model_validate({'name': 'Hot', 'condition': {
        'type': 'threshold', 'key': 'temperature', 'op': '>', 'value': 80}})
    result = await backtester.run(rig.principal, rule)
    assert [(d.device_name, d.last_24h, d.last_7d) for d in result.devices] == [('Boiler', 1, 3)]
    assert (result.total_24h, result.total_7d, result.truncated) == (1, 3, False)
    patient = rule.model_copy(update={'options': rule.options.model_copy(update={'debounce_s': 5 * 60})})
    assert (await backtester.run(rig.principal, patient)).total_7d == 2  # the 3-minute spike is too short
    capped = await Backtester(rig.platform.db, rig.maintenance, max_readings=10, clock=lambda: now) \
        .run(rig.principal, rule)
    assert capped.truncated and capped.readings == 10


async def test_window_rules_are_replayed_as_the_scheduler_sees_them(rig: Rig) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    day3 = now - timedelta(days=3)
    # three warm readings a minute apart, then cool ones: avg over 10 min goes above 50, and below again
    warm = [(day3 + timedelta(minutes=m), 70.0) for m in range(3)] + \
        [(day3 + timedelta(minutes=m), 10.0) for m in range(3, 30)]
    recent = [(now - timedelta(hours=1), 80.0)]  # alone in its window: avg 80 until it leaves it
    await store(rig, 'temp', warm + recent)
    backtester = Backtester(rig.platform.db, rig.maintenance, clock=lambda: now)
    rule = RuleCreate.model_validate({'name': 'Warm', 'condition': {
        'type': 'window', 'key': 'temp', 'stat': 'avg', 'minutes': 10, 'op': '>', 'value': 50}})
    result = await backtester.run(rig.principal, rule)
    assert [(d.device_name, d.last_24h, d.last_7d) for d in result.devices] == [('Boiler', 1, 2)]
    few = RuleCreate.model_validate({'name': 'Few', 'condition': {
        'type': 'window', 'key': 'temp', 'stat': 'count', 'minutes': 10, 'op': '<', 'value': 1}})
    counted = await backtester.run(rig.principal, few)  # empty windows: after day 3's burst, after the last one
    assert counted.total_7d == 2 and counted.total_24h == 1


async def test_no_data_rules_raise_once_per_silence_and_respect_maintenance(rig: Rig) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=2)
    talk = [start + timedelta(minutes=m) for m in (0, 1, 2, 30, 31, 32)]  # silent from 2 to 30: one gap
    await store(rig, 'door', [(at, 1.0) for at in [*talk, now - timedelta(minutes=1)]])
    backtester = Backtester(rig.platform.db, rig.maintenance, clock=lambda: now)
    silent = RuleCreate.model_validate({'name': 'Silent', 'condition': {'type': 'no_data', 'minutes': 15}})
    result = await backtester.run(rig.principal, silent)
    # the 28-minute gap, and the long silence from 32 min until a minute ago; the last minute is too short
    assert (result.total_7d, result.total_24h) == (2, 0)
    await rig.maintenance.create(rig.principal, MaintenanceCreate(
        name='Door work', starts_at=start, ends_at=start + timedelta(minutes=25)))
    assert (await backtester.run(rig.principal, silent)).total_7d == 2  # held back, raised when the window ended
    await rig.maintenance.create(rig.principal, MaintenanceCreate(
        name='Longer', starts_at=start, ends_at=start + timedelta(minutes=31)))
    assert (await backtester.run(rig.principal, silent)).total_7d == 1  # the door spoke before it ended


async def test_backtest_over_the_api(api: Api, sign_in: SignIn, make_device: DeviceMaker) -> None:
    caller = await sign_in()
    await make_device(caller, 'Quiet one')
    response = await api.client.post('/api/v1/rules/backtest', headers=caller.headers, json={
        'name': 'Hot', 'condition': {'type': 'threshold', 'key': 'temperature', 'op': '>', 'value': 80}})
    assert response.status_code == 200, response.text
    assert response.json() == {'devices': [], 'total_24h': 0, 'total_7d': 0, 'readings': 0, 'truncated': False}
    assert (await api.client.get('/api/v1/rules', headers=caller.headers)).json() == []  # nothing was saved
