"""Platform administration: a suspended tenant cannot sign in and its data is refused; delete removes all."""

from __future__ import annotations

import asyncio
from uuid import UUID

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from app.cli import cli
from app.models.schemas import DeviceCreate
from app.platform import Platform
from app.services.errors import AuthenticationFailed
from tests.api.conftest import Api, SignIn
from tests.conftest import NewTenant


async def ingest_status(api: Api, credentials: dict[str, str], *, expect: int) -> int:
    url = credentials['http_url']
    status = 0
    for _ in range(100):
        status = (await api.client.post(url[url.index('/api/'):], json={'t': 1.5},
                                        headers={'Authorization': f'Bearer {credentials["token"]}'})).status_code
        if status == expect:
            break
        await asyncio.sleep(0.05)
    return status


async def test_suspended_tenant_cannot_sign_in_and_its_ingest_is_refused(api: Api, sign_in: SignIn,
                                                                         new_tenant: NewTenant) -> None:
    platform = api.platform
    admin = await sign_in()
    created = await api.client.post('/api/v1/devices', json={'name': 'Meter'}, headers=admin.headers)
    credentials = created.json()['credentials']
    assert await ingest_status(api, credentials, expect=202) == 202
    member = await new_tenant()
    session_token = await platform.sessions.create(member.principal)

    await platform.platform_admin.set_status(admin.principal.tenant_id, 'suspended')
    await platform.platform_admin.set_status(member.principal.tenant_id, 'suspended')
    refused = await ingest_status(api, credentials, expect=403)
    assert refused == 403
    with pytest.raises(AuthenticationFailed, match=r'This organisation is suspended\.'):
        await platform.auth.authenticate(member.email, member.password)
    assert await platform.sessions.resolve(session_token) is None
    assert (await api.client.get('/api/v1/devices', headers=admin.headers)).status_code == 401

    await platform.platform_admin.set_status(member.principal.tenant_id, 'active')
    assert await platform.auth.authenticate(member.email, member.password, ip='10.1.1.1') == member.principal
    await platform.platform_admin.set_status(admin.principal.tenant_id, 'active')
    assert await ingest_status(api, credentials, expect=202) == 202


async def count(platform: Platform, table: str, tenant_id: UUID) -> int:
    async with platform.db.system() as session:
        column = 'id' if table == 'tenants' else 'tenant_id'
        return int((await session.execute(text(f'SELECT count(*) FROM {table} WHERE {column} = :t'),
                                          {'t': tenant_id})).scalar_one())


def run_cli(*args: str) -> tuple[int, str]:
    """`gito ...` in this process (on the test database the `platform` fixture's environment names)."""
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


async def test_cli_suspends_and_deletes_with_all_data(platform: Platform, new_tenant: NewTenant) -> None:
    doomed, kept = await new_tenant(), await new_tenant()
    for owner in (doomed, kept):
        device, _ = await platform.devices.create(owner.principal, DeviceCreate(name='Pump'))
        async with platform.db.system() as session:
            await session.execute(text(
                "INSERT INTO telemetry (tenant_id, device_id, key_id, ts, value) VALUES (:t, :d, 1, now(), 1)"),
                {'t': owner.principal.tenant_id, 'd': device.id})
        await platform.sessions.create(owner.principal)
    tenant = str(doomed.principal.tenant_id)
    assert await asyncio.to_thread(run_cli, 'tenant', 'suspend', tenant) == (0, f'tenant {tenant} suspended\n')
    with pytest.raises(AuthenticationFailed, match='suspended'):
        await platform.auth.authenticate(doomed.email, doomed.password)

    code, output = await asyncio.to_thread(run_cli, 'tenant', 'delete', tenant)
    assert code == 1 and '--yes' in output
    assert await count(platform, 'devices', doomed.principal.tenant_id) == 1
    assert (await asyncio.to_thread(run_cli, 'tenant', 'delete', tenant, '--yes'))[0] == 0
    tables = ('tenants', 'users', 'devices', 'telemetry', 'sessions', 'audit_log')
    assert [await count(platform, table, doomed.principal.tenant_id) for table in tables] == [0] * len(tables)
    assert [await count(platform, table, kept.principal.tenant_id) for table in tables] == [1, 1, 1, 1, 1, 1]
    assert (await asyncio.to_thread(run_cli, 'tenant', 'resume', tenant))[0] == 1  # gone
