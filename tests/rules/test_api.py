"""Rules and alarms over REST, with readings sent through device HTTP ingest (the batch writer path)."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api, Caller, DeviceMaker, SignIn
from tests.ingest.test_mqtt_ingest import eventually

HOT = {'type': 'threshold', 'key': 'temperature', 'op': '>', 'value': 80}


async def send(api: Api, device: dict[str, Any], credentials: dict[str, Any], payload: dict[str, Any]) -> None:
    response = await api.client.post(f'/api/v1/devices/{device["id"]}/telemetry', json=payload,
                                     headers={'Authorization': f'Bearer {credentials["token"]}'})
    assert response.status_code in (200, 202), response.text


async def alarms(api: Api, caller: Caller, **params: str) -> list[dict[str, Any]]:
    response = await api.client.get('/api/v1/alarms', params=params, headers=caller.headers)
    assert response.status_code == 200, response.text
    return list(response.json())


async def test_rule_crud_alarm_lifecycle_and_isolation(api: Api, sign_in: SignIn, make_device: DeviceMaker) -> None:
    admin = await sign_in()
    device, credentials = await make_device(admin, 'Boiler')
    bad = await api.client.post('/api/v1/rules', headers=admin.headers, json={
        'name': 'Bad', 'condition': {'type': 'range', 'key': 'p', 'raise_at': 5, 'clear_at': 9}})
    assert bad.status_code == 422
    created = await api.client.post('/api/v1/rules', headers=admin.headers, json={
        'name': 'Too hot', 'severity': 'critical', 'condition': HOT,
        'scope': {'kind': 'device', 'device_id': device['id']}})
    assert created.status_code == 201, created.text
    rule = created.json()
    assert (await api.client.get(f'/api/v1/rules/{rule["id"]}', headers=admin.headers)).json()['name'] == 'Too hot'

    await send(api, device, credentials, {'temperature': 70})
    await send(api, device, credentials, {'temperature': 95})
    found = await eventually(lambda: alarms(api, admin, status='open'), lambda rows: len(rows) == 1)
    assert [(a['rule_name'], a['severity'], a['status'], a['value']) for a in found] == \
        [('Too hot', 'critical', 'active', '95')]
    alarm_id = found[0]['id']
    assert await alarms(api, admin, severity='minor') == []
    assert len(await alarms(api, admin, device_id=device['id'])) == 1

    stranger = await sign_in()
    assert (await api.client.get(f'/api/v1/alarms/{alarm_id}', headers=stranger.headers)).status_code == 404
    assert (await api.client.get(f'/api/v1/rules/{rule["id"]}', headers=stranger.headers)).status_code == 404
    assert (await api.client.post(f'/api/v1/alarms/{alarm_id}/acknowledge', json={'note': 'x'},
                                  headers=stranger.headers)).status_code == 404
    assert await alarms(api, stranger) == []

    ack = await api.client.post(f'/api/v1/alarms/{alarm_id}/acknowledge', json={'note': 'Looking'},
                                headers=admin.headers)
    assert ack.json()['status'] == 'acknowledged'
    again = await api.client.post(f'/api/v1/alarms/{alarm_id}/acknowledge', json={}, headers=admin.headers)
    assert again.status_code == 409
    comment = await api.client.post(f'/api/v1/alarms/{alarm_id}/comments', json={'text': 'Pump noisy'},
                                    headers=admin.headers)
    assert comment.status_code == 200
    assign = await api.client.post(f'/api/v1/alarms/{alarm_id}/assign',
                                   json={'user_id': str(stranger.principal.user_id)}, headers=admin.headers)
    assert assign.status_code == 422  # a user of another tenant
    mine = await api.client.post(f'/api/v1/alarms/{alarm_id}/assign', json={'user_id': str(admin.principal.user_id)},
                                 headers=admin.headers)
    assert mine.json()['assignee_id'] == str(admin.principal.user_id)
    assert [a['id'] for a in await alarms(api, admin, assignee='me')] == [alarm_id]
    assert await alarms(api, admin, assignee='none') == []
    bad = await api.client.get('/api/v1/alarms', params={'assignee': 'someone'}, headers=admin.headers)
    assert bad.status_code == 422 and 'assignee' in bad.text
    clear = await api.client.post(f'/api/v1/alarms/{alarm_id}/clear', json={'reason': 'Fixed'},
                                  headers=admin.headers)
    assert clear.json()['status'] == 'cleared'
    detail = (await api.client.get(f'/api/v1/alarms/{alarm_id}', headers=admin.headers)).json()
    assert [(e['kind'], e['note']) for e in detail['history']] == [
        ('raised', None), ('acknowledged', 'Looking'), ('commented', 'Pump noisy'), ('assigned', None),
        ('cleared', 'Fixed')]

    deleted = await api.client.delete(f'/api/v1/rules/{rule["id"]}', headers=admin.headers)
    assert deleted.status_code == 204
    assert (await api.client.get('/api/v1/rules', headers=admin.headers)).json() == []


async def test_viewer_reads_only_and_technician_acknowledges(api: Api, sign_in: SignIn,
                                                             make_device: DeviceMaker) -> None:
    viewer = await sign_in(role='viewer')
    response = await api.client.post('/api/v1/rules', headers=viewer.headers,
                                     json={'name': 'No', 'condition': HOT})
    assert response.status_code == 403
    technician = await sign_in(role='technician')
    response = await api.client.post('/api/v1/rules', headers=technician.headers,
                                     json={'name': 'No', 'condition': HOT})
    assert response.status_code == 403


async def test_noise_options_that_window_rules_cannot_honour_are_refused(api: Api, sign_in: SignIn) -> None:
    admin = await sign_in()
    window = {'type': 'window', 'stat': 'avg', 'key': 'temperature', 'minutes': 10, 'op': '>', 'value': 80}
    refused = await api.client.post('/api/v1/rules', headers=admin.headers, json={
        'name': 'Hot on average', 'condition': window, 'options': {'debounce_s': 60}})
    assert refused.status_code == 422
    assert refused.json()['errors'][0]['field'] == 'options.debounce_s'
    silent = await api.client.post('/api/v1/rules', headers=admin.headers, json={
        'name': 'Silent', 'condition': {'type': 'no_data', 'minutes': 15}, 'options': {'cooldown_s': 300}})
    assert (silent.status_code, silent.json()['errors'][0]['field']) == (422, 'options.cooldown_s')
    plain = await api.client.post('/api/v1/rules', headers=admin.headers, json={
        'name': 'Hot on average', 'condition': window})
    assert plain.status_code == 201, plain.text
