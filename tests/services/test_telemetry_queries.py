from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.ingest.payload import Message
from app.ingest.writer import Inbound
from app.models.schemas import DeviceCreate, DevicePublic, Principal
from app.platform import Platform
from app.services import telemetry as telemetry_service
from app.services.errors import InvalidInput
from tests.conftest import NewTenant
from tests.ingest.test_mqtt_ingest import eventually

START = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)


async def seeded(platform: Platform, principal: Principal, count: int) -> DevicePublic:
    """A device with `count` readings of `power` (value i at START + i s) and a text `mode`."""
    device, _ = await platform.devices.create(principal, DeviceCreate(name='Meter'))
    messages = [Message(ts=START + timedelta(seconds=i), seq=i, readings={'power': float(i)})
                for i in range(count)]
    messages.append(Message(ts=START, seq=None, readings={'mode': 'eco'}))
    await platform.writer.submit(Inbound(principal.tenant_id, device.id, messages, datetime.now(UTC)))
    await eventually(lambda: platform.telemetry.latest(principal, device.id), lambda values: len(values) == 2)
    return device


async def test_raw_pages_follow_the_cursor(running_platform: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    device = await seeded(running_platform, admin, 25)
    values: list[object] = []
    cursor = None
    pages = 0
    while True:
        page = await running_platform.telemetry.raw(admin, device.id, start=START, end=START + timedelta(hours=1),
                                                    keys=['power'], limit=10, cursor=cursor)
        values += [p.value for p in page.points]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert values == [float(i) for i in range(25)]
    assert pages == 3


@pytest.mark.parametrize('merged', [True, False], ids=['per-key-scans-merged', 'more-keys-than-merged'])
async def test_raw_pages_of_every_key_come_in_time_then_key_order(
    running_platform: Platform, new_tenant: NewTenant, monkeypatch: pytest.MonkeyPatch, merged: bool,
) -> None:
    if not merged:  # the plain query a device with more than MERGED_KEYS keys gets
        monkeypatch.setattr(telemetry_service, 'MERGED_KEYS', 0)
    admin = (await new_tenant()).principal
    device = await seeded(running_platform, admin, 25)
    seen: list[tuple[datetime, str, object]] = []
    cursor = None
    pages = 0
    while True:
        page = await running_platform.telemetry.raw(admin, device.id, start=START, end=START + timedelta(hours=1),
                                                    limit=7, cursor=cursor)
        seen += [(p.ts, p.key, p.value) for p in page.points]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 4  # 26 readings, 7 a page
    assert sorted(seen, key=lambda s: (s[0], s[1] != seen[0][1])) == seen  # in time order; at START both keys
    assert {(ts, key) for ts, key, _ in seen} == {(START + timedelta(seconds=i), 'power') for i in range(25)} | {
        (START, 'mode')}
    assert len(seen) == 26  # none twice across pages
    later = await running_platform.telemetry.raw(admin, device.id, start=START + timedelta(seconds=20),
                                                 end=START + timedelta(hours=1), cursor=None, limit=100)
    assert [p.value for p in later.points] == [float(i) for i in range(20, 25)]
    unknown = await running_platform.telemetry.raw(admin, device.id, start=START, end=START + timedelta(hours=1),
                                                   keys=['nothing'])
    assert unknown.points == [] and unknown.next_cursor is None


async def test_aggregate_buckets(running_platform: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    device = await seeded(running_platform, admin, 120)
    avg = await running_platform.telemetry.aggregate(admin, device.id, start=START, end=START + timedelta(minutes=2),
                                                     bucket_s=60, function='avg', keys=['power'])
    assert [(p.bucket, p.value) for p in avg] == [(START, 29.5), (START + timedelta(minutes=1), 89.5)]
    last = await running_platform.telemetry.aggregate(admin, device.id, start=START, end=START + timedelta(minutes=2),
                                                      bucket_s=60, function='last', keys=['power'])
    assert [p.value for p in last] == [59.0, 119.0]
    count = await running_platform.telemetry.aggregate(admin, device.id, start=START,
                                                       end=START + timedelta(minutes=2), bucket_s=60, function='count')
    assert [(p.key, p.value) for p in count] == [('mode', 1.0), ('power', 60.0), ('power', 60.0)]


async def test_chart_never_returns_more_than_the_cap(running_platform: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    device = await seeded(running_platform, admin, 3000)
    end = START + timedelta(hours=1)
    [series] = await running_platform.telemetry.chart(admin, device.id, start=START, end=end)
    assert series.key == 'power' and series.bucket_s == 2
    assert len(series.values) == 1500
    [raw] = await running_platform.telemetry.chart(admin, device.id, start=START, end=end, max_points=5000)
    assert raw.bucket_s == 0 and len(raw.values) == 3000


async def test_bad_ranges_name_the_field(platform: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    device, _ = await platform.devices.create(admin, DeviceCreate(name='X'))
    with pytest.raises(InvalidInput) as caught:
        await platform.telemetry.raw(admin, device.id, start=START, end=START)
    assert caught.value.field == 'end'
    with pytest.raises(InvalidInput) as caught:
        await platform.telemetry.raw(admin, device.id, start=START, end=START + timedelta(hours=1), cursor='@@')
    assert caught.value.field == 'cursor'


async def test_latest_for_many_devices_in_one_call(running_platform: Platform, new_tenant: NewTenant) -> None:
    admin, stranger = (await new_tenant()).principal, (await new_tenant()).principal
    first = await seeded(running_platform, admin, 3)
    second, _ = await running_platform.devices.create(admin, DeviceCreate(name='Silent'))
    latest = await running_platform.telemetry.latest_for_devices(admin, [first.id, second.id])
    assert {v.key: v.value for v in latest[first.id]} == {'mode': 'eco', 'power': 2.0}
    assert latest[second.id] == []
    assert await running_platform.telemetry.latest_for_devices(stranger, [first.id]) == {first.id: []}
