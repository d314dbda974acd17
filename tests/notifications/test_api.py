"""The notifications REST API: channels, allow-list, deliveries, test messages and retry-now."""

from __future__ import annotations

from tests.api.conftest import Api, SignIn, api, sign_in  # noqa: F401 - fixtures reused from the API tests
from tests.api.helpers import problem
from tests.notifications.conftest import Receiver, verify_standard_webhook

BASE = '/api/v1/notifications'


async def test_missing_smtp_is_visible_through_the_api(api: Api, sign_in: SignIn) -> None:  # noqa: F811
    admin = await sign_in()
    created = await api.client.post(f'{BASE}/channels', headers=admin.headers, json={
        'name': 'Night shift', 'kind': 'email', 'recipients': ['night@example.com']})
    assert created.status_code == 201, created.text
    channel = created.json()['channel']
    assert created.json()['signing_secret'] is None

    tested = await api.client.post(f'{BASE}/channels/{channel["id"]}/test', headers=admin.headers)
    assert tested.status_code == 200, tested.text
    assert tested.json()['status'] == 'failed'

    failed = (await api.client.get(f'{BASE}/deliveries', params={'status': 'failed'}, headers=admin.headers)).json()
    assert [d['last_error'] for d in failed] == ['SMTP is not configured (SMTP_HOST unset)']
    detail = (await api.client.get(f'{BASE}/deliveries/{failed[0]["id"]}', headers=admin.headers)).json()
    assert detail['attempt_log'][0]['error'] == 'SMTP is not configured (SMTP_HOST unset)'
    assert (await api.client.get(f'{BASE}/deliveries', params={'status': 'sent'}, headers=admin.headers)).json() == []


async def test_webhook_blocked_until_allow_listed_then_retry_now_delivers(
    api: Api, sign_in: SignIn, receiver: Receiver,  # noqa: F811
) -> None:
    admin = await sign_in()
    created = (await api.client.post(f'{BASE}/channels', headers=admin.headers, json={
        'name': 'Hook', 'kind': 'webhook', 'url': receiver.url})).json()
    secret = created['signing_secret']
    assert secret.startswith('whsec_')
    assert secret not in (await api.client.get(f'{BASE}/channels', headers=admin.headers)).text

    tested = (await api.client.post(f'{BASE}/channels/{created["channel"]["id"]}/test', headers=admin.headers)).json()
    assert tested['status'] == 'failed' and tested['last_error'].startswith('Blocked: 127.0.0.1')
    assert receiver.requests == []

    allowed = await api.client.put(f'{BASE}/settings', headers=admin.headers, json={'allowed_cidrs': ['127.0.0.1']})
    assert allowed.json() == {'allowed_cidrs': ['127.0.0.1/32']}
    retried = (await api.client.post(f'{BASE}/deliveries/{tested["id"]}/retry', headers=admin.headers)).json()
    assert retried['status'] == 'sent' and retried['attempts'] == 2
    [(headers, body)] = receiver.requests
    assert verify_standard_webhook(secret, headers, body)


async def test_roles_and_tenant_isolation(api: Api, sign_in: SignIn) -> None:  # noqa: F811
    admin, stranger = await sign_in(), await sign_in()
    channel = (await api.client.post(f'{BASE}/channels', headers=admin.headers, json={
        'name': 'Mail', 'kind': 'email', 'recipients': ['a@example.com']})).json()['channel']
    delivery = (await api.client.post(f'{BASE}/channels/{channel["id"]}/test', headers=admin.headers)).json()

    for method, path in (('GET', f'/channels/{channel["id"]}'), ('DELETE', f'/channels/{channel["id"]}'),
                         ('POST', f'/channels/{channel["id"]}/test'), ('GET', f'/deliveries/{delivery["id"]}'),
                         ('POST', f'/deliveries/{delivery["id"]}/retry')):
        problem(await api.client.request(method, BASE + path, headers=stranger.headers), 404)
    assert (await api.client.get(f'{BASE}/deliveries', headers=stranger.headers)).json() == []

    viewer = await sign_in(role='viewer')
    problem(await api.client.get(f'{BASE}/channels', headers=viewer.headers), 403)
    bad = problem(await api.client.post(f'{BASE}/channels', headers=admin.headers, json={
        'name': 'Hook', 'kind': 'webhook', 'url': 'gopher://x'}), 422)
    assert 'http' in bad['detail']
    updated = await api.client.patch(f'{BASE}/channels/{channel["id"]}', headers=admin.headers,
                                     json={'enabled': False, 'severities': ['critical']})
    assert updated.json()['enabled'] is False and updated.json()['severities'] == ['critical']
    assert (await api.client.delete(f'{BASE}/channels/{channel["id"]}', headers=admin.headers)).status_code == 204
