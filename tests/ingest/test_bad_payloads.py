"""A device sending garbage over MQTT: every bad payload is counted on it with a reason, nothing else is affected."""

from __future__ import annotations

import time

import orjson

from app.platform import Platform
from tests.conftest import NewTenant
from tests.ingest.test_mqtt_ingest import eventually, make_device, publish

BAD = [
    b'{"temperature": 21.5,',  # cut off
    b'{"temperature": NaN}',
    b'{"temperature": Infinity}',
    b'{"temperature": "' + b'x' * 300_000 + b'"}',  # over 256 KB
    b'{"cfg": ' + b'[' * 100 + b']' * 100 + b'}',  # deeply nested
    b'{"temperature": null}',  # wrong type
    b'[1, 2, 3]',  # not objects
    orjson.dumps({'temperature': 1.0, 'ts': int(time.time() * 1000) + 3_600_000}),  # an hour in the future
]


async def test_bad_payloads_are_counted_with_reasons_and_good_ones_still_stored(
    running_platform: Platform, new_tenant: NewTenant,
) -> None:
    platform = running_platform
    admin = (await new_tenant()).principal
    noisy, quiet = await make_device(platform, admin), await make_device(platform, admin)
    noisy_topic = f'{admin.tenant_id}/devices/{noisy.id}/telemetry'
    quiet_topic = f'{admin.tenant_id}/devices/{quiet.id}/telemetry'
    for index, payload in enumerate(BAD):
        await publish(platform, noisy_topic, payload)
        await publish(platform, quiet_topic, orjson.dumps({'level': float(index)}))
    await publish(platform, noisy_topic, b'{"temperature": 19.0}')
    device = await eventually(lambda: platform.devices.get(admin, noisy.id),
                              lambda d: d.messages_malformed == len(BAD) and d.readings_stored == 1, seconds=10)
    assert (device.messages_received, device.messages_malformed, device.readings_stored) == (len(BAD) + 1, len(BAD), 1)
    assert device.last_malformed_reason is not None and 'in the future' in device.last_malformed_reason
    latest = await platform.telemetry.latest(admin, noisy.id)
    assert [(value.key, value.value) for value in latest] == [('temperature', 19.0)]
    calm = await eventually(lambda: platform.devices.get(admin, quiet.id), lambda d: d.readings_stored == len(BAD))
    assert (calm.messages_malformed, calm.readings_stored) == (0, len(BAD))
    assert platform.writer.stats.failures == 0
