"""Signed webhooks and Slack messages reach loopback receivers; failures are retried with the same webhook-id."""

from __future__ import annotations

import asyncio

import orjson

from app.models.notifications import ChannelCreate
from app.platform import Platform
from tests.conftest import NewTenant
from tests.notifications.conftest import Receiver, allow_loopback, enqueue, notice, verify_standard_webhook


async def test_webhook_is_signed_with_the_secret_shown_at_creation(
    platform: Platform, new_tenant: NewTenant, receiver: Receiver,
) -> None:
    tenant = await new_tenant()
    await allow_loopback(platform, tenant.principal)
    created = await platform.notifications.channels.create(
        tenant.principal, ChannelCreate(name='Ops hook', kind='webhook', url=receiver.url))
    assert created.signing_secret is not None and created.signing_secret.startswith('whsec_')
    raised = notice(tenant.principal.tenant_id)
    await enqueue(platform, raised)

    assert await platform.notifications.dispatcher.run_once() >= 1

    assert len(receiver.requests) == 1
    headers, body = receiver.requests[0]
    assert verify_standard_webhook(created.signing_secret, headers, body)
    assert not verify_standard_webhook('whsec_' + 'A' * 44, headers, body)
    event = orjson.loads(body)
    assert event['type'] == 'alarm.raised'
    assert event['data']['device_name'] == 'Boiler 7'
    assert event['data']['link'].endswith(f'/alarms/{raised.alarm_id}')
    [delivery] = await platform.notifications.deliveries.list(tenant.principal)
    assert delivery.status == 'sent' and delivery.attempts == 1
    # The secret is never shown again.
    listed = await platform.notifications.channels.list(tenant.principal)
    assert created.signing_secret not in orjson.dumps([c.model_dump(mode='json') for c in listed]).decode()


async def test_receiver_failing_three_times_gets_one_success_with_the_same_webhook_id(
    fast_retries: Platform, new_tenant: NewTenant, receiver: Receiver,
) -> None:
    platform = fast_retries
    tenant = await new_tenant()
    await allow_loopback(platform, tenant.principal)
    created = await platform.notifications.channels.create(
        tenant.principal, ChannelCreate(name='Flaky', kind='webhook', url=receiver.url))
    receiver.script = [(500, {}), (503, {}), (502, {})]
    await enqueue(platform, notice(tenant.principal.tenant_id))
    [pending] = await platform.notifications.deliveries.list(tenant.principal)

    for _ in range(200):
        await platform.notifications.dispatcher.run_once(only=pending.id)
        if (await platform.notifications.deliveries.get(tenant.principal, pending.id)).status == 'sent':
            break

    delivery = await platform.notifications.deliveries.get(tenant.principal, pending.id)
    assert delivery.status == 'sent'
    assert len(receiver.requests) == 4
    assert len({headers['webhook-id'] for headers, _ in receiver.requests}) == 1
    assert all(verify_standard_webhook(created.signing_secret or '', h, b) for h, b in receiver.requests)
    assert [(a.ok, a.response_code) for a in delivery.attempt_log] == [
        (False, 500), (False, 503), (False, 502), (True, 200)]
    assert all(a.duration_ms >= 0 for a in delivery.attempt_log)
    assert delivery.attempt_log[0].error == 'HTTP 500 from receiver.'
    await platform.notifications.dispatcher.run_once(only=pending.id)
    assert len(receiver.requests) == 4  # sent once, never again


async def test_unreachable_receiver_is_a_visible_failed_delivery_then_dead_after_a_day(
    platform: Platform, new_tenant: NewTenant,
) -> None:
    from app.services.notifications.dispatcher import Backoff
    from tests.support import free_port

    tenant = await new_tenant()
    await allow_loopback(platform, tenant.principal)
    await platform.notifications.channels.create(
        tenant.principal, ChannelCreate(name='Gone', kind='webhook', url=f'http://127.0.0.1:{free_port()}/x'))
    await enqueue(platform, notice(tenant.principal.tenant_id))
    [pending] = await platform.notifications.deliveries.list(tenant.principal)
    await platform.notifications.dispatcher.run_once(only=pending.id)
    failed = await platform.notifications.deliveries.get(tenant.principal, pending.id)
    assert failed.status == 'failed' and failed.next_attempt_at is not None
    assert failed.last_error is not None and 'unreachable' in failed.last_error

    platform.notifications.dispatcher.backoff = Backoff(give_up_after_s=0)
    retried = await platform.notifications.deliveries.retry_now(tenant.principal, pending.id)
    assert retried.status == 'dead' and retried.attempts == 2


async def test_slack_payload_has_text_and_blocks_and_the_url_is_masked(
    platform: Platform, new_tenant: NewTenant, receiver: Receiver,
) -> None:
    tenant = await new_tenant()
    await allow_loopback(platform, tenant.principal)
    url = receiver.url + '/T000/B000/XXXXXXXXsecret'
    created = await platform.notifications.channels.create(
        tenant.principal, ChannelCreate(name='Slack', kind='slack', url=url))
    assert created.channel.url is not None and 'XXXXXXXXsecret' not in created.channel.url
    await enqueue(platform, notice(tenant.principal.tenant_id, severity='major', value=12))
    await platform.notifications.dispatcher.run_once()

    [(_headers, body)] = receiver.requests
    payload = orjson.loads(body)
    assert payload['text'] == '[MAJOR] Boiler too hot raised on Boiler 7'
    assert payload['blocks'][0]['type'] == 'header'
    fields = [f['text'] for f in payload['blocks'][1]['fields']]
    assert fields == ['*Severity:* major', '*Device:* Boiler 7', '*Rule:* Boiler too hot', '*Value:* 12']
    button = payload['blocks'][2]['elements'][0]
    assert '/alarms/' in button['url']


async def test_concurrent_dispatchers_send_a_delivery_once(
    platform: Platform, new_tenant: NewTenant, receiver: Receiver,
) -> None:
    tenant = await new_tenant()
    await allow_loopback(platform, tenant.principal)
    await platform.notifications.channels.create(
        tenant.principal, ChannelCreate(name='Hook', kind='webhook', url=receiver.url))
    await enqueue(platform, notice(tenant.principal.tenant_id))
    dispatcher = platform.notifications.dispatcher

    await asyncio.gather(*(dispatcher.run_once() for _ in range(4)))

    assert len(receiver.requests) == 1
    [delivery] = await platform.notifications.deliveries.list(tenant.principal)
    assert delivery.status == 'sent' and delivery.attempts == 1
