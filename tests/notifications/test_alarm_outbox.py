"""The real alarm service writes its notices through the outbox: a raised alarm reaches the webhook receiver."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from app.models.notifications import ChannelCreate
from app.models.rules import RuleCreate
from app.models.schemas import DeviceCreate
from app.platform import Platform
from app.services.alarms import Firing
from tests.conftest import NewTenant
from tests.notifications.conftest import Receiver, allow_loopback, verify_standard_webhook


async def test_raised_alarm_is_delivered_as_a_signed_webhook(
    platform: Platform, new_tenant: NewTenant, receiver: Receiver,
) -> None:
    tenant = await new_tenant()
    principal = tenant.principal
    await allow_loopback(platform, principal)
    created = await platform.notifications.channels.create(
        principal, ChannelCreate(name='Hook', kind='webhook', url=receiver.url))
    device, _ = await platform.devices.create(principal, DeviceCreate(name='Boiler 3'))
    rule = await platform.rules.create(principal, RuleCreate.model_validate({
        'name': 'Too hot', 'scope': {'kind': 'device', 'device_id': str(device.id)},
        'condition': {'type': 'threshold', 'key': 'temperature', 'op': '>', 'value': 80}}))
    platform.notifications.outbox.hold_s = 0

    await platform.alarms.apply(principal.tenant_id, [Firing(
        rule_id=rule.id, rule_name='Too hot', severity='major', threshold='temperature > 80', device_id=device.id,
        device_name='Boiler 3', action='raise', at=datetime.now(UTC), key='temperature', value=91.0)])
    await platform.notifications.dispatcher.run_once()

    [alarm] = await platform.alarms.find(principal)
    [(headers, body)] = receiver.requests
    assert verify_standard_webhook(created.signing_secret or '', headers, body)
    data = orjson.loads(body)['data']
    assert (data['alarm_id'], data['device_name'], data['value']) == (str(alarm.id), 'Boiler 3', 91.0)
    assert data['link'].endswith(f'/alarms/{alarm.id}')
