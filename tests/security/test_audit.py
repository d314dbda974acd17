"""The audit log: device and user changes with before/after, searchable for admins, CSV export."""

from __future__ import annotations

import asyncio
import csv
import io
from uuid import uuid4

from nicegui import ui
from nicegui.testing import User

from app.models.schemas import DeviceCreate, DeviceUpdate
from app.platform import Platform
from app.services.audit import AuditQuery
from tests.api.conftest import Api, SignIn
from tests.conftest import NewTenant
from tests.pages.conftest import MakeAccount, MakeDevice, sign_in


async def test_device_changes_are_recorded_with_before_and_after(platform: Platform,
                                                                 new_tenant: NewTenant) -> None:
    admin, other = (await new_tenant()).principal, (await new_tenant()).principal
    device, _ = await platform.devices.create(admin, DeviceCreate(name='Pump', type='water'))
    await platform.devices.update(admin, device.id, DeviceUpdate(name='Main pump'))
    await platform.devices.rotate_token(admin, device.id)
    await platform.devices.delete(admin, device.id)
    entries = await platform.audit.search(admin, AuditQuery(target=str(device.id)))
    assert [entry.action for entry in entries] == [
        'device.delete', 'device.rotate_token', 'device.update', 'device.create']
    assert {entry.actor_email for entry in entries} == {admin.email}
    update = entries[2]
    assert update.before is not None and update.before['name'] == 'Pump'
    assert update.after is not None and update.after['name'] == 'Main pump'
    assert entries[3].after == {'name': 'Pump', 'type': 'water', 'metadata': {}, 'offline_after_s': None}
    assert entries[0].before is not None and entries[0].before['name'] == 'Main pump'
    assert all('token' not in str(entry.after) for entry in entries)
    assert await platform.audit.search(other, AuditQuery(target=str(device.id))) == []  # not another tenant's
    assert await platform.audit.search(admin, AuditQuery(action='device.upd')) == [update]
    assert await platform.audit.search(admin, AuditQuery(actor='nobody@')) == []


async def test_audit_api_and_csv(api: Api, sign_in: SignIn) -> None:
    admin = await sign_in()
    created = await api.client.post('/api/v1/devices', json={'name': 'Valve'}, headers=admin.headers)
    device_id = created.json()['device']['id']
    response = await api.client.get('/api/v1/audit', params={'target': device_id}, headers=admin.headers)
    assert response.status_code == 200
    assert [(entry['action'], entry['after']['name']) for entry in response.json()] == [('device.create', 'Valve')]
    exported = await api.client.get('/api/v1/audit.csv', params={'action': 'device'}, headers=admin.headers)
    assert exported.headers['content-type'].startswith('text/csv')
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(row['action'], row['target_id']) for row in rows] == [('device.create', device_id)]


def shown_actions(user: User) -> list[str]:
    table = next(iter(user.find(marker='audit-table').elements))
    assert isinstance(table, ui.table)
    return [row['action'] for row in table.rows]


async def eventually_shown(user: User, actions: list[str]) -> None:
    for _ in range(50):
        if shown_actions(user) == actions:
            return
        await asyncio.sleep(0.05)
    assert shown_actions(user) == actions


async def test_audit_page_searches_and_exports(user: User, app_platform: Platform, make_account: MakeAccount,
                                               make_device: MakeDevice) -> None:
    admin = await make_account()
    await make_device(admin, 'Chiller')
    await app_platform.users.create(admin.principal, email=f'tech-{uuid4().hex[:8]}@example.com',
                                    password='long enough pw', role='technician')
    await sign_in(user, admin)
    await user.open('/audit')
    await user.should_see(marker='audit-table', retries=50)
    await eventually_shown(user, ['user.create', 'device.create'])
    user.find(marker='audit-action').type('user.')
    user.find(marker='audit-run').click()
    await eventually_shown(user, ['user.create'])
    user.find(marker='audit-export').click()
    exported = (await user.download.next(timeout=3)).text
    assert 'user.create' in exported and 'device.create' not in exported
