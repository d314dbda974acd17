"""Idempotency-Key on device HTTP ingest: a retried request is stored once; a key reused with another body is 422."""

from uuid import UUID, uuid4

import pytest

from app.services.ingest_keys import KeyInFlight
from tests.api.conftest import Api, DeviceMaker, SignIn
from tests.api.helpers import problem
from tests.api.test_ingest import device_auth


async def test_the_same_key_and_body_store_once_and_answer_the_same(
    api: Api, sign_in: SignIn, make_device: DeviceMaker,
) -> None:
    caller = await sign_in()
    device, credentials = await make_device(caller)
    url = f'/api/v1/devices/{device["id"]}/telemetry'
    headers = {**device_auth(credentials), 'Idempotency-Key': f'retry-{uuid4()}'}
    body = {'pressure': 1.5, 'flow': 0.25}  # no ts: without the key, a retry would be stored again
    first = await api.client.post(url, json=body, headers=headers)
    again = await api.client.post(url, json=body, headers=headers)
    assert (first.status_code, first.json()) == (202, {'accepted': 1, 'points': 2})
    assert (again.status_code, again.json()) == (202, {'accepted': 1, 'points': 2})
    assert again.headers.get('idempotent-replayed') == 'true' and 'idempotent-replayed' not in first.headers
    page = await api.client.get(f'{url}?keys=pressure', headers=caller.headers)
    assert [point['value'] for point in page.json()['points']] == [1.5]
    other = await api.client.post(url, json={'pressure': 9.9}, headers={**device_auth(credentials),
                                                                         'Idempotency-Key': f'new-{uuid4()}'})
    assert other.status_code == 202  # a new key is a new request


async def test_a_key_reused_with_another_body_is_422_and_stores_nothing(
    api: Api, sign_in: SignIn, make_device: DeviceMaker,
) -> None:
    caller = await sign_in()
    device, credentials = await make_device(caller)
    url = f'/api/v1/devices/{device["id"]}/telemetry'
    headers = {**device_auth(credentials), 'Idempotency-Key': 'batch-7'}
    assert (await api.client.post(url, json={'flow': 1.0}, headers=headers)).status_code == 202
    reused = await api.client.post(url, json={'flow': 2.0}, headers=headers)
    assert reused.status_code == 422
    assert problem(reused, 422)['errors'][0]['field'] == 'Idempotency-Key'
    page = await api.client.get(f'{url}?keys=flow', headers=caller.headers)
    assert [point['value'] for point in page.json()['points']] == [1.0]
    blank = await api.client.post(url, json={'flow': 3.0}, headers={**device_auth(credentials),
                                                                     'Idempotency-Key': '   '})
    assert blank.status_code == 422


async def test_keys_are_per_device(api: Api, sign_in: SignIn, make_device: DeviceMaker) -> None:
    caller = await sign_in()
    (one, one_credentials), (two, two_credentials) = await make_device(caller), await make_device(caller)
    for device, credentials in ((one, one_credentials), (two, two_credentials)):
        response = await api.client.post(f'/api/v1/devices/{device["id"]}/telemetry', json={'v': 1.0},
                                         headers={**device_auth(credentials), 'Idempotency-Key': 'shared-name'})
        assert response.status_code == 202 and 'idempotent-replayed' not in response.headers


async def test_a_repeat_while_the_first_is_in_flight_is_409(
    api: Api, sign_in: SignIn, make_device: DeviceMaker,
) -> None:
    caller = await sign_in()
    device, _ = await make_device(caller)
    keys = api.platform.ingest_keys
    tenant, device_id = caller.principal.tenant_id, UUID(device['id'])
    claim = await keys.claim(tenant, device_id, 'in-flight', body=b'{"a": 1}', accepted=1, points=1)
    assert claim.outcome == 'new'
    with pytest.raises(KeyInFlight):
        await keys.claim(tenant, device_id, 'in-flight', body=b'{"a": 1}', accepted=1, points=1)
    await keys.release(tenant, device_id, 'in-flight')  # the store failed: the device may retry with the key
    assert (await keys.claim(tenant, device_id, 'in-flight', body=b'{"a": 1}', accepted=1, points=1)).outcome == 'new'
