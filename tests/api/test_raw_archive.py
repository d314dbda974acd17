"""The raw archive as an admin and an operator use it: switched on per tenant, every payload kept as received
(MQTT and HTTP, accepted and rejected), listed newest first, exported as NDJSON, and replayed."""

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import text

from app.platform import Platform
from tests.api.conftest import Api, Caller, DeviceMaker, SignIn
from tests.api.helpers import eventually, problem
from tests.api.test_ingest import device_auth, device_state
from tests.ingest.test_mqtt_ingest import publish
from tests.rules.test_api import HOT, alarms, send


async def switch_on(api: Api, caller: Caller, days: int = 3) -> None:
    response = await api.client.put('/api/v1/storage/raw-archive', json={'enabled': True, 'days': days},
                                    headers=caller.headers)
    assert (response.status_code, response.json()) == (200, {'enabled': True, 'days': days})


async def archived(api: Api, caller: Caller, device: dict[str, Any], count: int) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]]:
        response = await api.client.get(f'/api/v1/devices/{device["id"]}/raw', headers=caller.headers)
        assert response.status_code == 200, response.text
        body: list[dict[str, Any]] = response.json()
        return body

    return await eventually(probe, lambda messages: len(messages) >= count, seconds=10)


async def stored_rows(platform: Platform, device: dict[str, Any]) -> int:
    async with platform.db.system() as session:
        return int(await session.scalar(text('SELECT count(*) FROM telemetry WHERE device_id = :d'),
                                        {'d': device['id']}) or 0)


async def test_archive_keeps_every_payload_as_received_only_for_tenants_that_switch_it_on(
    api: Api, sign_in: SignIn, make_device: DeviceMaker,
) -> None:
    admin, other = await sign_in(), await sign_in()
    assert (await api.client.get('/api/v1/storage/raw-archive', headers=admin.headers)).json() == \
        {'enabled': False, 'days': 7}
    await switch_on(api, admin)
    device, credentials = await make_device(admin)
    quiet, quiet_credentials = await make_device(other)
    topic = f'{admin.principal.tenant_id}/devices/{device["id"]}'
    await publish(api.platform, f'{topic}/telemetry', b'{"temperature": 21.5}')
    await publish(api.platform, f'{topic}/telemetry', b'{"temperature": NaN}')
    await publish(api.platform, f'{topic}/telemetry', b'\xff\xfe not json')
    await publish(api.platform, f'{topic}/status', b'online')
    await archived(api, admin, device, 4)  # the broker acknowledged them, Gito may not have them yet: HTTP after
    response = await api.client.post(f'/api/v1/devices/{device["id"]}/telemetry', content=b'{"humidity": 40}',
                                     headers={**device_auth(credentials), 'Content-Type': 'application/json'})
    assert response.status_code == 202
    response = await api.client.post(f'/api/v1/devices/{quiet["id"]}/telemetry', json={'humidity': 1},
                                     headers=device_auth(quiet_credentials))
    assert response.status_code == 202

    messages = await archived(api, admin, device, 5)
    assert [(m['transport'], m['kind'], m['accepted'], m['payload']) for m in messages] == [
        ('http', 'telemetry', True, '{"humidity": 40}'),
        ('mqtt', 'status', True, 'online'),
        ('mqtt', 'telemetry', False, '\ufffd\ufffd not json'),
        ('mqtt', 'telemetry', False, '{"temperature": NaN}'),
        ('mqtt', 'telemetry', True, '{"temperature": 21.5}'),
    ]
    assert messages[3]['reason'].startswith('not valid JSON')
    assert messages[2]['size'] == len(b'\xff\xfe not json')
    assert [m['received_at'] for m in messages] == sorted((m['received_at'] for m in messages), reverse=True)
    older = await api.client.get(f'/api/v1/devices/{device["id"]}/raw',
                                 params={'before': messages[1]['received_at'], 'limit': 2}, headers=admin.headers)
    assert [m['payload'] for m in older.json()] == ['\ufffd\ufffd not json', '{"temperature": NaN}']

    assert (await api.client.get(f'/api/v1/devices/{quiet["id"]}/raw', headers=other.headers)).json() == []
    stranger = await api.client.get(f'/api/v1/devices/{device["id"]}/raw', headers=other.headers)
    assert problem(stranger, 404)['field'] == 'device_id'

    start = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    export = await api.client.get(f'/api/v1/devices/{device["id"]}/raw/export.ndjson', params={'start': start},
                                  headers=admin.headers)
    assert export.status_code == 200
    assert export.headers['content-type'].startswith('application/x-ndjson')
    lines = [orjson.loads(line) for line in export.content.splitlines()]
    assert [line.get('payload') for line in lines] == [
        '{"temperature": 21.5}', '{"temperature": NaN}', None, 'online', '{"humidity": 40}']
    assert lines[2]['payload_base64'] == '//4gbm90IGpzb24='


async def test_replay_restores_deleted_readings_once_and_leaves_the_counters_honest(
    api: Api, sign_in: SignIn, make_device: DeviceMaker,
) -> None:
    admin = await sign_in()
    await switch_on(api, admin)
    device, credentials = await make_device(admin)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    for index in range(5):
        response = await api.client.post(
            f'/api/v1/devices/{device["id"]}/telemetry', headers=device_auth(credentials),
            json=[{'level': float(index), 'seq': index, 'ts': now_ms - 60_000 + index},
                  {'flow': 1.0, 'seq': 100 + index}])
        assert response.status_code == 202
    await archived(api, admin, device, 5)
    assert await stored_rows(api.platform, device) == 10
    async with api.platform.db.system() as session:
        await session.execute(text("DELETE FROM telemetry WHERE device_id = :d AND key_id IN "
                                   "(SELECT id FROM telemetry_keys WHERE name = 'level')"), {'d': device['id']})
    before = await device_state(api, admin, device)
    window = {'start': (datetime.now(UTC) - timedelta(hours=1)).isoformat(), 'end': datetime.now(UTC).isoformat()}

    replay = await api.client.post(f'/api/v1/devices/{device["id"]}/raw/replay', json=window, headers=admin.headers)
    assert replay.status_code == 200, replay.text
    assert replay.json() == {'messages': 5, 'replayed': 5, 'readings': 10, 'rejected': 0, 'truncated': False}
    assert await stored_rows(api.platform, device) == 10
    again = await api.client.post(f'/api/v1/devices/{device["id"]}/raw/replay', json=window, headers=admin.headers)
    assert again.json()['replayed'] == 5
    assert await stored_rows(api.platform, device) == 10  # nothing twice

    after = await eventually(lambda: device_state(api, admin, device),
                             lambda state: state['readings_duplicate'] == before['readings_duplicate'] + 15)
    assert after['messages_received'] == before['messages_received']  # replays are not new messages
    assert after['readings_stored'] == before['readings_stored'] + 5
    assert after['readings_duplicate'] == before['readings_duplicate'] + 15
    assert (await api.client.get(f'/api/v1/devices/{device["id"]}/raw', headers=admin.headers)).json()[0]['transport'] \
        == 'http'  # a replay is not archived again
    assert len(await archived(api, admin, device, 5)) == 5


async def test_roles_and_bad_input(api: Api, sign_in: SignIn, make_device: DeviceMaker) -> None:
    admin, viewer = await sign_in(), await sign_in(role='viewer')
    operator = await sign_in(role='operator')
    refused = await api.client.put('/api/v1/storage/raw-archive', json={'enabled': True, 'days': 7},
                                   headers=operator.headers)
    assert problem(refused, 403)
    too_long = await api.client.put('/api/v1/storage/raw-archive', json={'enabled': True, 'days': 400},
                                    headers=admin.headers)
    assert problem(too_long, 422)['field'] == 'days'
    device, _ = await make_device(admin)
    window = {'start': datetime.now(UTC).isoformat(), 'end': (datetime.now(UTC) - timedelta(hours=1)).isoformat()}
    backwards = await api.client.post(f'/api/v1/devices/{device["id"]}/raw/replay', json=window,
                                      headers=admin.headers)
    assert problem(backwards, 422)['field'] == 'end'
    naive = await api.client.post(f'/api/v1/devices/{device["id"]}/raw/replay', json={
        'start': '2026-01-01T00:00:00', 'end': '2026-01-02T00:00:00'}, headers=admin.headers)
    assert [error['field'] for error in problem(naive, 422)['errors']] == ['start', 'end']
    viewer_replay = await api.client.post(f'/api/v1/devices/{device["id"]}/raw/replay', headers=viewer.headers,
                                          json={'start': '2026-01-01T00:00:00Z', 'end': '2026-01-02T00:00:00Z'})
    assert problem(viewer_replay, 403)  # another tenant's viewer: refused before the device is even looked up


async def test_a_rule_made_later_sees_replayed_readings(api: Api, sign_in: SignIn, make_device: DeviceMaker) -> None:
    admin = await sign_in()
    await switch_on(api, admin)
    device, credentials = await make_device(admin, 'Boiler')
    await send(api, device, credentials, {'temperature': 95})  # before any rule: no alarm
    await archived(api, admin, device, 1)
    created = await api.client.post('/api/v1/rules', headers=admin.headers, json={
        'name': 'Too hot', 'condition': HOT, 'scope': {'kind': 'device', 'device_id': device['id']}})
    assert created.status_code == 201, created.text
    assert await alarms(api, admin, status='open') == []
    window = {'start': (datetime.now(UTC) - timedelta(hours=1)).isoformat(), 'end': datetime.now(UTC).isoformat()}
    replay = await api.client.post(f'/api/v1/devices/{device["id"]}/raw/replay', json=window, headers=admin.headers)
    assert replay.json()['replayed'] == 1
    found = await eventually(lambda: alarms(api, admin, status='open'), lambda rows: len(rows) == 1, seconds=5)
    assert [(alarm['rule_name'], alarm['value']) for alarm in found] == [('Too hot', '95')]
