"""The outbox commits with the alarm change, routes by severity, rule and transition, and digests storms."""

from __future__ import annotations

from uuid import uuid4

import orjson
import pytest

from app.models.notifications import ChannelCreate
from app.platform import Platform
from tests.conftest import NewTenant
from tests.notifications.conftest import Receiver, allow_loopback, enqueue, notice


async def test_rolled_back_alarm_change_leaves_no_delivery(platform: Platform, new_tenant: NewTenant) -> None:
    tenant = await new_tenant()
    await platform.notifications.channels.create(tenant.principal, ChannelCreate(
        name='Mail', kind='email', recipients=['a@example.com']))
    with pytest.raises(RuntimeError):
        async with platform.db.tenant(tenant.principal.tenant_id) as session:
            await platform.outbox.enqueue(session, notice(tenant.principal.tenant_id))
            raise RuntimeError('the alarm change failed')
    assert await platform.notifications.deliveries.list(tenant.principal) == []
    await enqueue(platform, notice(tenant.principal.tenant_id))
    assert len(await platform.notifications.deliveries.list(tenant.principal)) == 1


async def test_routing_by_severity_rule_and_transition(platform: Platform, new_tenant: NewTenant) -> None:
    tenant = await new_tenant()
    rule = uuid4()
    channels = platform.notifications.channels
    critical = (await channels.create(tenant.principal, ChannelCreate(
        name='Critical only', kind='email', recipients=['a@example.com'], severities=['critical']))).channel
    one_rule = (await channels.create(tenant.principal, ChannelCreate(
        name='One rule', kind='email', recipients=['a@example.com'], rule_ids=[rule], on_clear=True))).channel
    tid = tenant.principal.tenant_id

    await enqueue(platform, notice(tid, severity='critical'), notice(tid, severity='minor', rule_id=rule),
                  notice(tid, severity='critical', rule_id=rule, transition='cleared'),
                  notice(tid, severity='critical', transition='acknowledged'))

    deliveries = await platform.notifications.deliveries.list(tenant.principal)
    got = sorted((d.channel_name, d.transition, d.rule_id == rule) for d in deliveries)
    assert got == [('Critical only', 'raised', False), ('One rule', 'cleared', True), ('One rule', 'raised', True)]
    assert {critical.id, one_rule.id} == {d.channel_id for d in deliveries}


async def test_storm_of_one_rule_becomes_one_digest(
    platform: Platform, new_tenant: NewTenant, receiver: Receiver,
) -> None:
    tenant = await new_tenant()
    await allow_loopback(platform, tenant.principal)
    await platform.notifications.channels.create(tenant.principal, ChannelCreate(
        name='Hook', kind='webhook', url=receiver.url))
    tid, rule = tenant.principal.tenant_id, uuid4()
    storm = [notice(tid, rule_id=rule, device_name=f'Pump {n}') for n in range(8)]
    await enqueue(platform, *storm, notice(tid, rule_name='Door open', device_name='Gate'))

    await platform.notifications.dispatcher.run_once()

    assert len(receiver.requests) == 2
    events = sorted((orjson.loads(body) for _, body in receiver.requests), key=lambda e: e['type'])
    assert events[0]['type'] == 'alarm.digest'
    assert sorted(a['device_name'] for a in events[0]['data']['alarms']) == [f'Pump {n}' for n in range(8)]
    assert events[1]['type'] == 'alarm.raised' and events[1]['data']['device_name'] == 'Gate'
    statuses = {d.status for d in await platform.notifications.deliveries.list(tenant.principal)}
    assert statuses == {'sent'}


async def test_another_tenants_channel_and_delivery_are_not_found(platform: Platform, new_tenant: NewTenant) -> None:
    from app.services.errors import NotFound

    owner, other = await new_tenant(), await new_tenant()
    created = await platform.notifications.channels.create(owner.principal, ChannelCreate(
        name='Mail', kind='email', recipients=['a@example.com']))
    await enqueue(platform, notice(owner.principal.tenant_id))
    [delivery] = await platform.notifications.deliveries.list(owner.principal)

    assert await platform.notifications.channels.list(other.principal) == []
    assert await platform.notifications.deliveries.list(other.principal) == []
    for call in (platform.notifications.channels.get(other.principal, created.channel.id),
                 platform.notifications.channels.delete(other.principal, created.channel.id),
                 platform.notifications.deliveries.get(other.principal, delivery.id),
                 platform.notifications.deliveries.retry_now(other.principal, delivery.id),
                 platform.notifications.deliveries.send_test(other.principal, created.channel.id)):
        with pytest.raises(NotFound):
            await call
    # A notice naming the owner's tenant, enqueued in the other tenant's transaction, reaches no channel.
    async with platform.db.tenant(other.principal.tenant_id) as session:
        await platform.outbox.enqueue(session, notice(owner.principal.tenant_id))
    assert len(await platform.notifications.deliveries.list(owner.principal)) == 1


async def test_new_deliveries_wait_for_the_digest_hold(
    platform: Platform, new_tenant: NewTenant, receiver: Receiver,
) -> None:
    tenant = await new_tenant()
    await allow_loopback(platform, tenant.principal)
    await platform.notifications.channels.create(tenant.principal, ChannelCreate(
        name='Hook', kind='webhook', url=receiver.url))
    await enqueue(platform, notice(tenant.principal.tenant_id), hold_s=30)
    [delivery] = await platform.notifications.deliveries.list(tenant.principal)

    assert await platform.notifications.dispatcher.run_once(only=delivery.id) == 0
    assert receiver.requests == []
    assert (await platform.notifications.deliveries.get(tenant.principal, delivery.id)).status == 'pending'
