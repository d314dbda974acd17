from uuid import uuid4

from tests.api.conftest import Api, DeviceMaker, SignIn
from tests.api.helpers import problem


async def test_create_read_update_delete(api: Api, sign_in: SignIn) -> None:
    caller = await sign_in()
    created = await api.client.post('/api/v1/devices', headers=caller.headers, json={
        'name': '  Boiler 1 ', 'type': 'boiler', 'metadata': {'site': 'North'}, 'offline_after_s': 60})
    assert created.status_code == 201
    device, credentials = created.json()['device'], created.json()['credentials']
    assert (device['name'], device['type'], device['status']) == ('Boiler 1', 'boiler', 'new')
    assert device['tenant_id'] == str(caller.principal.tenant_id)
    assert credentials['device_id'] == device['id'] and len(credentials['token']) >= 20
    assert credentials['http_url'].endswith(f'/api/v1/devices/{device["id"]}/telemetry')
    url = f'/api/v1/devices/{device["id"]}'

    read = await api.client.get(url, headers=caller.headers)
    assert read.status_code == 200 and read.json() == device
    assert credentials['token'] not in read.text

    patched = await api.client.patch(url, headers=caller.headers, json={'name': 'Boiler A', 'offline_after_s': None})
    assert patched.status_code == 200
    assert patched.json()['name'] == 'Boiler A'
    assert patched.json()['offline_after_s'] is None
    assert patched.json()['metadata'] == {'site': 'North'}

    deleted = await api.client.delete(url, headers=caller.headers)
    assert deleted.status_code == 204 and deleted.content == b''
    assert problem(await api.client.get(url, headers=caller.headers), 404)['field'] == 'device_id'
    assert (await api.client.get('/api/v1/devices', headers=caller.headers)).json() == []


async def test_list_searches_filters_and_pages(api: Api, sign_in: SignIn, make_device: DeviceMaker) -> None:
    caller = await sign_in()
    for name in ('Pump north', 'Chiller', 'Pump south'):
        await make_device(caller, name)

    async def names(**params: str | int) -> list[str]:
        response = await api.client.get('/api/v1/devices', headers=caller.headers, params=params)
        assert response.status_code == 200
        return [device['name'] for device in response.json()]

    assert await names() == ['Chiller', 'Pump north', 'Pump south']
    assert await names(search='PUMP') == ['Pump north', 'Pump south']
    assert await names(limit=1, offset=1) == ['Pump north']
    assert await names(status='new') == ['Chiller', 'Pump north', 'Pump south']
    assert await names(status='online') == []


async def test_rotating_the_token_returns_new_credentials(api: Api, sign_in: SignIn, make_device: DeviceMaker) -> None:
    caller = await sign_in()
    device, old = await make_device(caller)
    response = await api.client.post(f'/api/v1/devices/{device["id"]}/token', headers=caller.headers)
    assert response.status_code == 200
    new = response.json()
    assert new['device_id'] == device['id']
    assert new['token'] != old['token']
    assert new['token'] in new['curl']


async def test_empty_name_is_a_422_naming_the_field(api: Api, sign_in: SignIn) -> None:
    caller = await sign_in()
    response = await api.client.post('/api/v1/devices', json={'name': ''}, headers=caller.headers)
    body = problem(response, 422)
    assert body['field'] == 'name'
    assert body['errors'] == [{'field': 'name', 'message': 'String should have at least 1 character'}]


async def test_blank_name_rejected_by_the_service_names_the_field(api: Api, sign_in: SignIn) -> None:
    caller = await sign_in()
    response = await api.client.post('/api/v1/devices', json={'name': '   '}, headers=caller.headers)
    body = problem(response, 422)
    assert (body['field'], body['detail']) == ('name', 'A device needs a name.')


async def test_several_invalid_fields_are_all_named(api: Api, sign_in: SignIn, make_device: DeviceMaker) -> None:
    caller = await sign_in()
    device, _ = await make_device(caller)
    response = await api.client.patch(f'/api/v1/devices/{device["id"]}', headers=caller.headers,
                                      json={'offline_after_s': 1, 'colour': 'red'})
    body = problem(response, 422)
    assert 'field' not in body
    assert sorted(error['field'] for error in body['errors']) == ['colour', 'offline_after_s']
    unchanged = await api.client.get(f'/api/v1/devices/{device["id"]}', headers=caller.headers)
    assert unchanged.json()['offline_after_s'] is None


async def test_bad_query_and_path_values_name_the_parameter(api: Api, sign_in: SignIn) -> None:
    caller = await sign_in()
    assert problem(await api.client.get('/api/v1/devices?limit=0', headers=caller.headers), 422)['field'] == 'limit'
    assert problem(await api.client.get('/api/v1/devices?status=dead', headers=caller.headers), 422)['field'] == \
        'status'
    assert problem(await api.client.get('/api/v1/devices/not-a-uuid', headers=caller.headers), 422)['field'] == \
        'device_id'


async def test_malformed_json_body_is_a_422(api: Api, sign_in: SignIn) -> None:
    caller = await sign_in()
    response = await api.client.post('/api/v1/devices', content=b'{"name": ',
                                     headers={**caller.headers, 'Content-Type': 'application/json'})
    assert problem(response, 422)['errors'][0]['field'] == 'body'


async def test_unknown_device_is_a_404_problem(api: Api, sign_in: SignIn) -> None:
    caller = await sign_in()
    missing = uuid4()
    body = problem(await api.client.get(f'/api/v1/devices/{missing}', headers=caller.headers), 404)
    assert body['detail'] == f'Unknown device {missing}.'
    assert body['type'] == 'urn:gito:problem:not-found'
