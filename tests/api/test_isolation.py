"""Another tenant's caller learns nothing about a device and changes nothing: 404 on every route."""

from datetime import UTC, datetime

import httpx

from tests.api.conftest import Api, DeviceMaker, SignIn
from tests.api.helpers import problem


async def test_every_device_route_is_404_for_another_tenant(
    api: Api, sign_in: SignIn, make_device: DeviceMaker,
) -> None:
    owner, stranger = await sign_in(), await sign_in()
    device, credentials = await make_device(owner, 'Private', metadata={'site': 'A'})
    posted = await api.client.post(httpx.URL(credentials['http_url']).path, json={'t': 1.5},
                                   headers={'Authorization': f'Bearer {credentials["token"]}'})
    assert posted.status_code == 202
    base = f'/api/v1/devices/{device["id"]}'
    calls = [
        ('GET', base, None), ('PATCH', base, {'name': 'Mine now'}), ('DELETE', base, None),
        ('POST', f'{base}/token', None), ('GET', f'{base}/telemetry', None), ('GET', f'{base}/telemetry/latest', None),
        ('GET', f'{base}/telemetry/aggregate', None),
    ]
    for method, url, body in calls:
        response = await api.client.request(method, url, json=body, headers=stranger.headers)
        assert problem(response, 404)['detail'] == f'Unknown device {device["id"]}.', (method, url)
    assert (await api.client.get('/api/v1/devices', headers=stranger.headers)).json() == []

    mine = await api.client.get(base, headers=owner.headers)
    assert mine.status_code == 200
    assert (mine.json()['name'], mine.json()['metadata']) == ('Private', {'site': 'A'})
    latest = await api.client.get(f'{base}/telemetry/latest', headers=owner.headers)
    assert [(value['key'], value['value']) for value in latest.json()] == [('t', 1.5)]
    again = await api.client.post(f'{base}/telemetry', json={'t': 2.5, 'ts': datetime.now(UTC).isoformat()},
                                  headers={'Authorization': f'Bearer {credentials["token"]}'})
    assert again.status_code == 202, 'the token must not have been rotated by the stranger'


async def test_a_user_token_is_not_a_device_token(api: Api, sign_in: SignIn, make_device: DeviceMaker) -> None:
    owner = await sign_in()
    device, _ = await make_device(owner)
    response = await api.client.post(f'/api/v1/devices/{device["id"]}/telemetry', json={'t': 1},
                                     headers=owner.headers)
    problem(response, 401)
