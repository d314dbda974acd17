"""Debounce, auto-clear, cooldown, schedule windows and maintenance windows, driven by explicit reading times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from app.models.maintenance import MaintenanceCreate
from app.services.errors import Conflict, InvalidInput
from tests.rules.conftest import Rig

HOT = {'type': 'threshold', 'key': 'temperature', 'op': '>', 'value': 80}


async def test_debounce_raises_only_after_the_condition_held(rig: Rig) -> None:
    await rig.rule(condition=HOT, options={'debounce_s': 60})
    await rig.send(0, temperature=90)
    await rig.send(30, temperature=90)
    assert await rig.open_alarms() == []
    await rig.send(40, temperature=70)  # interrupted: the clock starts again
    await rig.send(50, temperature=90)
    await rig.send(100, temperature=90)
    assert await rig.open_alarms() == []
    await rig.send(110, temperature=90)
    assert await rig.open_alarms() == [('active', 1)]


async def test_auto_clear_after_n_false_readings_or_a_duration(rig: Rig) -> None:
    await rig.rule(name='By count', condition=HOT, options={'clear_after_readings': 3})
    await rig.rule(name='By time', condition=HOT, options={'clear_after_s': 120})
    await rig.send(0, temperature=90)
    await rig.send(10, temperature=70)
    await rig.send(20, temperature=70)
    assert sorted(await rig.statuses()) == ['active', 'active']
    await rig.send(30, temperature=70)  # third false reading
    by_name = {alarm.rule_name: alarm.status for alarm in await rig.alarms.find(rig.principal)}
    assert by_name == {'By count': 'cleared', 'By time': 'active'}
    await rig.send(130, temperature=70)  # false since 10 s: 120 s later
    assert await rig.statuses() == ['cleared', 'cleared']


async def test_auto_clear_off_keeps_the_alarm_open(rig: Rig) -> None:
    await rig.rule(condition=HOT, options={'auto_clear': False})
    await rig.send(0, temperature=90)
    await rig.send(10, temperature=20)
    assert await rig.statuses() == ['active']


async def test_cooldown_blocks_a_re_raise_soon_after_a_clear(rig: Rig) -> None:
    await rig.rule(condition=HOT, options={'cooldown_s': 300})
    await rig.send(0, temperature=90)
    await rig.send(10, temperature=70)
    await rig.send(100, temperature=95)  # 90 s after the clear
    assert await rig.statuses() == ['cleared']
    await rig.send(320, temperature=95)  # 310 s after the clear
    assert await rig.statuses() == ['active', 'cleared']


async def test_schedule_window_in_the_rules_time_zone(rig: Rig) -> None:
    # T0 is Monday 09:00 UTC = 10:00 in Berlin; the rule is active 10:30-18:00 Berlin time on weekdays.
    await rig.rule(condition=HOT, options={'timezone': 'Europe/Berlin', 'schedule': [
        {'days': [0, 1, 2, 3, 4], 'start': '10:30', 'end': '18:00'}]})
    await rig.send(0, temperature=90)
    await rig.send(29 * 60, temperature=90)
    assert await rig.statuses() == []
    await rig.send(31 * 60, temperature=90)
    assert await rig.statuses() == ['active']


async def test_overnight_window_wraps_midnight(rig: Rig) -> None:
    # Sunday 22:00 to 06:00 UTC: Monday 09:00 (T0) is outside, Sunday 23:00 inside.
    await rig.rule(condition=HOT, options={'schedule': [{'days': [6], 'start': '22:00', 'end': '06:00'}]})
    await rig.send(0, temperature=90)
    assert await rig.statuses() == []
    await rig.send(-10 * 3600, temperature=90)  # Sunday 23:00
    assert await rig.statuses() == ['active']


async def test_maintenance_window_suppresses_raising_for_chosen_devices(rig: Rig) -> None:
    from app.models.schemas import DeviceCreate

    now = datetime.now(UTC)
    other, _ = await rig.platform.devices.create(rig.principal, DeviceCreate(name='Pump', type='boiler'))
    await rig.maintenance.create(rig.principal, MaintenanceCreate(
        name='Service visit', starts_at=now, ends_at=now + timedelta(hours=1), device_ids=[rig.device.id]))
    await rig.rule(scope={'kind': 'all'}, condition=HOT)
    await rig.send(now + timedelta(minutes=1), temperature=90)
    await rig.send(now + timedelta(minutes=1), other, temperature=90)
    assert [alarm.device_name for alarm in await rig.alarms.find(rig.principal)] == ['Pump']
    await rig.send(now + timedelta(minutes=61), temperature=90)  # after the window
    assert sorted(alarm.device_name for alarm in await rig.alarms.find(rig.principal)) == ['Boiler', 'Pump']


async def test_ending_a_window_early_lets_rules_raise_again(rig: Rig) -> None:
    now = datetime.now(UTC)
    running = await rig.maintenance.create(rig.principal, MaintenanceCreate(
        name='Service visit', starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(hours=1)))
    planned = await rig.maintenance.create(rig.principal, MaintenanceCreate(
        name='Next week', starts_at=now + timedelta(days=7), ends_at=now + timedelta(days=7, hours=1)))
    await rig.rule(condition=HOT)
    await rig.send(datetime.now(UTC), temperature=90)
    assert await rig.statuses() == []
    ended = await rig.maintenance.end_now(rig.principal, running.id)
    assert ended.ends_at <= datetime.now(UTC)
    await rig.send(datetime.now(UTC), temperature=91)
    assert await rig.statuses() == ['active']
    with pytest.raises(Conflict, match='already over'):
        await rig.maintenance.end_now(rig.principal, running.id)
    with pytest.raises(Conflict, match='not started yet'):
        await rig.maintenance.end_now(rig.principal, planned.id)


async def test_windows_need_a_reason_known_devices_and_times_with_an_offset(rig: Rig, new_tenant: Any) -> None:
    now = datetime.now(UTC)
    stranger = (await new_tenant()).principal
    with pytest.raises(InvalidInput, match='Unknown device') as unknown:
        await rig.maintenance.create(stranger, MaintenanceCreate(
            name='Probe', starts_at=now, ends_at=now + timedelta(hours=1), device_ids=[rig.device.id]))
    assert unknown.value.field == 'device_ids'
    with pytest.raises(InvalidInput, match='Say why'):
        await rig.maintenance.create(rig.principal, MaintenanceCreate(
            name='  ', starts_at=now, ends_at=now + timedelta(hours=1)))
    with pytest.raises(ValidationError, match='timezone'):
        MaintenanceCreate(name='Naive', starts_at=datetime(2026, 12, 1, 10), ends_at=datetime(2026, 12, 1, 11))
    assert await rig.maintenance.recent(rig.principal) == []
