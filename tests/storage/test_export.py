"""CSV export: right content in time order, streamed in bounded memory, from the API and the device page."""

from __future__ import annotations

import csv
import io
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest
from nicegui.testing import User
from sqlalchemy import text

from app.models.schemas import DeviceCreate
from app.platform import Platform
from app.services.errors import NotFound
from app.services.telemetry_export import TelemetryExport
from tests.api.conftest import Api, SignIn
from tests.api.helpers import problem
from tests.conftest import NewTenant
from tests.pages.conftest import MakeAccount, MakeDevice, sign_in
from tests.storage.conftest import new_device, store

LOAD = """
INSERT INTO telemetry (tenant_id, device_id, key_id, ts, value)
SELECT :tenant, :device, :key, CAST(:start AS timestamptz) + make_interval(secs => i), i
FROM generate_series(0, :count - 1) i"""


async def collect(chunks: object) -> list[bytes]:
    return [chunk async for chunk in chunks]  # type: ignore[attr-defined]


async def test_export_content_in_time_then_key_order(storage: Platform, new_tenant: NewTenant) -> None:
    admin, stranger = (await new_tenant()).principal, (await new_tenant()).principal
    device = await new_device(storage, admin)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    await store(storage, admin, device.id, [(t0 + timedelta(seconds=1), 'temp', 21.5)])  # temp: the lower key id
    await store(storage, admin, device.id, [(t0, 'mode', 'eco, "quiet"'), (t0, 'temp', 20.0),
                                            (t0 + timedelta(seconds=2), 'mode', 'off')])
    export = TelemetryExport(storage.db, page_rows=2)  # several pages, a page boundary inside a timestamp
    content = b''.join(await collect(await export.csv(admin, device.id, start=t0, end=t0 + timedelta(minutes=1))))
    rows = list(csv.reader(io.StringIO(content.decode())))
    assert rows == [['ts', 'key', 'value'], [t0.isoformat(), 'temp', '20.0'], [t0.isoformat(), 'mode', 'eco, "quiet"'],
                    [(t0 + timedelta(seconds=1)).isoformat(), 'temp', '21.5'],
                    [(t0 + timedelta(seconds=2)).isoformat(), 'mode', 'off']]
    only = b''.join(await collect(await export.csv(admin, device.id, start=t0, end=t0 + timedelta(minutes=1),
                                                   keys=['mode'])))
    assert only.decode().splitlines()[1:] == [f'{t0.isoformat()},mode,"eco, ""quiet"""',
                                              f'{(t0 + timedelta(seconds=2)).isoformat()},mode,off']
    with pytest.raises(NotFound):  # raised before the first byte, so the API can still answer 404
        await export.csv(stranger, device.id, start=t0, end=t0 + timedelta(minutes=1))


async def test_a_large_export_streams_in_bounded_memory(storage: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    device = await new_device(storage, admin)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    count = 120_000
    await store(storage, admin, device.id, [(start, 'power', -1.0)])  # creates the key
    async with storage.db.system() as session:
        key_id = await session.scalar(text("SELECT id FROM telemetry_keys WHERE tenant_id = :t AND name = 'power'"),
                                      {'t': admin.tenant_id})
        await session.execute(text(LOAD), {'tenant': admin.tenant_id, 'device': device.id, 'key': key_id,
                                           'start': start + timedelta(seconds=1), 'count': count})
    export = TelemetryExport(storage.db, page_rows=500)
    chunks = await export.csv(admin, device.id, start=start, end=start + timedelta(days=3))
    tracemalloc.start()
    try:
        lines, biggest, total = 0, 0, 0
        async for chunk in chunks:
            lines += chunk.count(b'\n')
            biggest = max(biggest, len(chunk))
            total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lines == count + 2  # header, the first reading, the loaded ones
    assert total > 4_000_000
    assert biggest < 40_000  # one page of 500 rows
    assert peak < total / 4, (peak, total)  # about a page in memory, never the whole export


async def test_export_from_the_api(api: Api, sign_in: SignIn) -> None:
    caller, stranger = await sign_in(), await sign_in()
    device, _ = await api.platform.devices.create(caller.principal, DeviceCreate(name='Meter'))
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    await store(api.platform, caller.principal, device.id,
                [(t0 + timedelta(seconds=i), 'v', float(i)) for i in range(3)])
    url = f'/api/v1/devices/{device.id}/telemetry/export.csv'
    params = {'start': t0.isoformat(), 'end': (t0 + timedelta(minutes=1)).isoformat()}
    response = await api.client.get(url, params=params, headers=caller.headers)
    assert response.status_code == 200 and response.headers['content-type'].startswith('text/csv')
    assert 'attachment' in response.headers['content-disposition']
    assert response.text.splitlines() == ['ts,key,value'] + [f'{(t0 + timedelta(seconds=i)).isoformat()},v,{i}.0'
                                                              for i in range(3)]
    problem(await api.client.get(url, params=params, headers=stranger.headers), 404)
    assert problem(await api.client.get(url, params={**params, 'end': params['start']}, headers=caller.headers),
                   422)['field'] == 'end'


async def test_download_button_on_the_device_page(user: User, make_account: MakeAccount, make_device: MakeDevice,
                                                  app_platform: Platform) -> None:
    account = await make_account()
    device = await make_device(account)
    await store(app_platform, account.principal, device.id, [(datetime.now(UTC) - timedelta(minutes=1), 'temp', 4.5)])
    await sign_in(user, account)
    await user.open(f'/devices/{device.id}')
    user.find(marker='download-csv').click()
    response = await user.download.next(timeout=10)
    assert response.status_code == 200
    lines = response.text.splitlines()
    assert lines[0] == 'ts,key,value' and lines[1].endswith(',temp,4.5')
