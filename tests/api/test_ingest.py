"""Device HTTP ingest as a device would use it: its own token, one object or an array."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import text

from app.api import ingest as ingest_api
from app.ingest.payload import MAX_PAYLOAD_BYTES
from tests.api.conftest import Api, Caller, DeviceMaker, SignIn
from tests.api.helpers import eventually, problem


def device_auth(credentials: dict[str, Any]) -> dict[str, str]:
    return {'Authorization': f'Bearer {credentials["token"]}'}


async def latest(api: Api, caller: Caller, device: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    response = await api.client.get(f'/api/v1/devices/{device["id"]}/telemetry/latest', headers=caller.headers)
    assert response.status_code == 200
    return {value['key']: (value['ts'], value['value']) for value in response.json()}


async def device_state(api: Api, caller: Caller, device: dict[str, Any]) -> dict[str, Any]:
    response = await api.client.get(f'/api/v1/devices/{device["id"]}', headers=caller.headers)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_single_object_is_stored_before_the_answer(api: Api, sign_in: SignIn, make_device: DeviceMaker) -> None:
    caller = await sign_in()
    device, credentials = await make_device(caller)
    response = await api.client.post(f'/api/v1/devices/{device["id"]}/telemetry',
                                     json={'temperature': 21.5, 'humidity': 40}, headers=device_auth(credentials))
    assert response.status_code == 202
    assert response.json() == {'accepted': 1, 'points': 2}
    values = await latest(api, caller, device)
    assert {key: value for key, (_, value) in values.items()} == {'humidity': 40.0, 'temperature': 21.5}
    state = await device_state(api, caller, device)
    assert (state['status'], state['messages_received'], state['messages_malformed']) == ('online', 1, 0)


async def test_array_with_iso_and_millisecond_timestamps(api: Api, sign_in: SignIn, make_device: DeviceMaker) -> None:
    caller = await sign_in()
    device, credentials = await make_device(caller)
    first = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    second = first + timedelta(minutes=1)
    payload = [{'t': 1, 'ts': first.isoformat().replace('+00:00', 'Z'), 'seq': 1},
               {'t': 2, 'ts': int(second.timestamp() * 1000), 'seq': 2}]
    response = await api.client.post(f'/api/v1/devices/{device["id"]}/telemetry', json=payload,
                                     headers=device_auth(credentials))
    assert (response.status_code, response.json()) == (202, {'accepted': 2, 'points': 2})
    page = await api.client.get(f'/api/v1/devices/{device["id"]}/telemetry', headers=caller.headers)
    points = [(datetime.fromisoformat(p['ts']), p['value']) for p in page.json()['points']]
    assert points == [(first, 1.0), (second, 2.0)]
    state = await device_state(api, caller, device)
    assert state['messages_received'] == 2


async def test_text_bool_and_nested_values_keep_their_types(
    api: Api, sign_in: SignIn, make_device: DeviceMaker,
) -> None:
    caller = await sign_in()
    device, credentials = await make_device(caller)
    sent = {'label': 'hall', 'door_open': True, 'config': {'mode': 'eco', 'levels': [1, 2]}, 'history': [1, 'a'],
            'count': 3}
    response = await api.client.post(f'/api/v1/devices/{device["id"]}/telemetry', json=sent,
                                     headers=device_auth(credentials))
    assert response.status_code == 202
    values = {key: value for key, (_, value) in (await latest(api, caller, device)).items()}
    assert values == sent
    assert type(values['door_open']) is bool
    assert type(values['label']) is str
    assert type(values['count']) is float


async def test_bad_json_is_400_and_counted_on_the_device(api: Api, sign_in: SignIn, make_device: DeviceMaker) -> None:
    caller = await sign_in()
    device, credentials = await make_device(caller)
    response = await api.client.post(f'/api/v1/devices/{device["id"]}/telemetry', content=b'{"t": 21.5,',
                                     headers={**device_auth(credentials), 'Content-Type': 'application/json'})
    body = problem(response, 400)
    assert body['title'] == 'Invalid payload'
    assert body['detail'].startswith('not valid JSON')
    assert 'field' not in body
    state = await eventually(lambda: device_state(api, caller, device), lambda d: d['messages_malformed'] == 1)
    assert state['messages_malformed'] == 1
    assert state['last_malformed_reason'].startswith('not valid JSON')
    assert state['last_malformed_excerpt'] == '{"t": 21.5,'
    assert await latest(api, caller, device) == {}


async def test_future_timestamp_is_refused_naming_ts(api: Api, sign_in: SignIn, make_device: DeviceMaker) -> None:
    caller = await sign_in()
    device, credentials = await make_device(caller)
    future = int((datetime.now(UTC) + timedelta(minutes=30)).timestamp() * 1000)
    response = await api.client.post(f'/api/v1/devices/{device["id"]}/telemetry', json={'t': 1, 'ts': future},
                                     headers=device_auth(credentials))
    body = problem(response, 400)
    assert body['field'] == 'ts'
    assert 'in the future' in body['detail']
    state = await eventually(lambda: device_state(api, caller, device), lambda d: d['messages_malformed'] == 1)
    assert 'in the future' in state['last_malformed_reason']
    assert await latest(api, caller, device) == {}


async def test_bad_value_names_its_key_even_inside_an_array(
    api: Api, sign_in: SignIn, make_device: DeviceMaker,
) -> None:
    caller = await sign_in()
    device, credentials = await make_device(caller)
    response = await api.client.post(f'/api/v1/devices/{device["id"]}/telemetry',
                                     json=[{'ok': 1}, {'pressure': None}], headers=device_auth(credentials))
    body = problem(response, 400)
    assert body['field'] == 'pressure'
    assert body['detail'] == 'element 1: pressure: null is not a value'
    assert await latest(api, caller, device) == {}, 'nothing of a refused request is stored'


async def test_wrong_unknown_and_missing_tokens_get_the_same_401(
    api: Api, sign_in: SignIn, make_device: DeviceMaker,
) -> None:
    caller = await sign_in()
    device, credentials = await make_device(caller)
    other, _ = await make_device(caller, 'Other')
    url = f'/api/v1/devices/{device["id"]}/telemetry'
    answers = [
        await api.client.post(url, json={'t': 1}, headers={'Authorization': 'Bearer wrong-token'}),
        await api.client.post(url, json={'t': 1}),
        await api.client.post(url, json={'t': 1}, headers={'Authorization': f'Basic {credentials["token"]}'}),
        await api.client.post(f'/api/v1/devices/{other["id"]}/telemetry', json={'t': 1},
                              headers=device_auth(credentials)),
        await api.client.post('/api/v1/devices/00000000-0000-4000-8000-000000000000/telemetry', json={'t': 1},
                              headers=device_auth(credentials)),
    ]
    details = {problem(answer, 401)['detail'] for answer in answers}
    assert details == {'Unknown device or wrong device token.'}
    assert all(answer.headers['www-authenticate'] == 'Bearer' for answer in answers)
    assert await latest(api, caller, device) == {}


async def test_rotated_token_replaces_the_old_one(api: Api, sign_in: SignIn, make_device: DeviceMaker) -> None:
    caller = await sign_in()
    device, old = await make_device(caller)
    url = f'/api/v1/devices/{device["id"]}/telemetry'
    new = (await api.client.post(f'/api/v1/devices/{device["id"]}/token', headers=caller.headers)).json()
    problem(await api.client.post(url, json={'t': 1}, headers=device_auth(old)), 401)
    assert (await api.client.post(url, json={'t': 1}, headers=device_auth(new))).status_code == 202


async def test_oversize_body_is_413_and_counted(api: Api, sign_in: SignIn, make_device: DeviceMaker) -> None:
    caller = await sign_in()
    device, credentials = await make_device(caller)
    body = orjson.dumps({'blob': 'x' * MAX_PAYLOAD_BYTES})
    response = await api.client.post(f'/api/v1/devices/{device["id"]}/telemetry', content=body,
                                     headers={**device_auth(credentials), 'Content-Type': 'application/json'})
    assert str(MAX_PAYLOAD_BYTES) in problem(response, 413)['detail']
    state = await eventually(lambda: device_state(api, caller, device), lambda d: d['messages_malformed'] == 1)
    assert state['messages_malformed'] == 1


async def test_oversize_body_without_length_is_cut_off(api: Api, sign_in: SignIn, make_device: DeviceMaker) -> None:
    caller = await sign_in()
    device, credentials = await make_device(caller)
    sent = 0

    async def chunks() -> Any:
        nonlocal sent
        for _ in range(100):
            sent += 64 * 1024
            yield b' ' * (64 * 1024)

    response = await api.client.post(f'/api/v1/devices/{device["id"]}/telemetry', content=chunks(),
                                     headers=device_auth(credentials))
    problem(response, 413)
    assert 'content-length' not in response.request.headers
    assert await latest(api, caller, device) == {}


async def test_unhealthy_writer_answers_503_with_retry_after(
    api: Api, sign_in: SignIn, make_device: DeviceMaker,
) -> None:
    caller = await sign_in()
    device, credentials = await make_device(caller)
    api.platform.writer.healthy = False
    try:
        response = await api.client.post(f'/api/v1/devices/{device["id"]}/telemetry', json={'t': 1},
                                         headers=device_auth(credentials))
        ready = await api.client.get('/readyz')
    finally:
        api.platform.writer.healthy = True
    assert problem(response, 503)['title'] == 'Service unavailable'
    assert response.headers['retry-after'] == '5'
    assert ready.status_code == 503
    assert ready.json()['database'] is False
    assert await latest(api, caller, device) == {}


async def test_commit_timeout_answers_503(api: Api, sign_in: SignIn, make_device: DeviceMaker,
                                          monkeypatch: Any) -> None:
    caller = await sign_in()
    device, credentials = await make_device(caller)
    monkeypatch.setattr(ingest_api, 'COMMIT_TIMEOUT_S', 0.2)  # the module object: NiceGUI's reset drops `app`

    async def never_commits(_item: object) -> None:
        return None

    monkeypatch.setattr(api.platform.writer, 'submit', never_commits)
    response = await api.client.post(f'/api/v1/devices/{device["id"]}/telemetry', json={'t': 1},
                                     headers=device_auth(credentials))
    assert problem(response, 503)['detail'].startswith('Telemetry storage is unavailable')
    assert response.headers['retry-after'] == '5'


async def test_suspended_organisation_is_refused(api: Api, sign_in: SignIn, make_device: DeviceMaker) -> None:
    caller = await sign_in()
    device, credentials = await make_device(caller)
    async with api.platform.db.system() as session:  # no service suspends a tenant yet
        await session.execute(text("UPDATE tenants SET status = 'suspended' WHERE id = :id"),
                              {'id': caller.principal.tenant_id})
    api.platform.directory.invalidate(UUID(device['id']))
    response = await api.client.post(f'/api/v1/devices/{device["id"]}/telemetry', json={'t': 1},
                                     headers=device_auth(credentials))
    assert problem(response, 403)['detail'] == 'This organisation is suspended; telemetry is not accepted.'
    problem(await api.client.get('/api/v1/devices', headers=caller.headers), 401)
