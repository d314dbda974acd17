"""Backtest of an unsaved rule over stored readings, with debounce honoured; and over the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.models.rules import RuleCreate
from app.services.errors import InvalidInput
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
    silent = RuleCreate.model_validate({'name': 'Silent', 'condition': {'type': 'no_data', 'minutes': 5}})
    with pytest.raises(InvalidInput) as raised:
        await backtester.run(rig.principal, silent)
    assert raised.value.field == 'condition'


async def test_backtest_over_the_api(api: Api, sign_in: SignIn, make_device: DeviceMaker) -> None:
    caller = await sign_in()
    await make_device(caller, 'Quiet one')
    response = await api.client.post('/api/v1/rules/backtest', headers=caller.headers, json={
        'name': 'Hot', 'condition': {'type': 'threshold', 'key': 'temperature', 'op': '>', 'value': 80}})
    assert response.status_code == 200, response.text
    assert response.json() == {'devices': [], 'total_24h': 0, 'total_7d': 0, 'readings': 0, 'truncated': False}
    assert (await api.client.get('/api/v1/rules', headers=caller.headers)).json() == []  # nothing was saved
