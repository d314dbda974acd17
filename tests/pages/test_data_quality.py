"""A device's data-quality panel as an operator reads it: duplicates, gaps, late messages and clock skew."""

from __future__ import annotations

import time

import orjson
from nicegui.testing import User

from app.platform import Platform
from tests.pages.conftest import MakeAccount, MakeDevice, broker_connected, publish, sign_in


async def test_gaps_duplicates_late_messages_and_skew_are_shown(
    user: User, app_platform: Platform, make_account: MakeAccount, make_device: MakeDevice,
) -> None:
    account = await make_account()
    device = await make_device(account, 'Counter')
    await broker_connected(app_platform)
    await sign_in(user, account)
    await user.open(f'/devices/{device.id}')
    await user.should_see('no seq sent')
    now_ms = int(time.time() * 1000)
    sent = [(1, -1000), (2, -500), (3, 0), (6, 8000), (5, 1500), (6, 8000)]  # 4 never comes, 6 twice, 5 late
    for seq, offset_ms in sent:
        await publish(app_platform, device, orjson.dumps({'level': float(seq), 'seq': seq, 'ts': now_ms + offset_ms}))
    with user.scope(marker='data-quality'):
        await user.should_see(marker='seq-gaps', content='4', retries=100)
    expected = {'messages-received': '6', 'readings-stored': '5', 'readings-duplicate': '1',
                'messages-out-of-order': '1', 'seq-missing': '1'}
    for marker, text in expected.items():
        label = next(iter(user.find(marker=marker).elements))
        assert getattr(label, 'text', '') == text, marker
    skew = getattr(next(iter(user.find(marker='clock-skew').elements)), 'text', '')
    last, largest = skew.split(' / ')
    assert 'ahead' in last, skew
    assert largest.startswith(('+7.', '+8.')), skew  # the clock was 8 s fast at worst, less the delivery time
