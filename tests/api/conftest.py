"""The API on a running app (lifespan included) and signed-in callers of fresh tenants."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.models.schemas import Principal
from app.platform import Platform
from tests.conftest import NewTenant
from tests.support import simulated_app


@dataclass(frozen=True)
class Api:
    client: httpx.AsyncClient
    platform: Platform


@dataclass(frozen=True)
class Caller:
    principal: Principal
    headers: dict[str, str]


SignIn = Callable[..., Awaitable[Caller]]
DeviceMaker = Callable[..., Awaitable[tuple[dict[str, Any], dict[str, Any]]]]


@pytest.fixture
async def api(settings_env: None, caplog: pytest.LogCaptureFixture) -> AsyncIterator[Api]:
    from tests.api import api_app

    async with simulated_app(Path(__file__).parent / 'api_main.py') as user:
        platform = api_app.PLATFORM
        assert platform is not None
        for _ in range(200):
            if platform.started:
                break
            await asyncio.sleep(0.05)
        assert platform.started, 'the platform did not start'
        yield Api(user.http_client, platform)
    errors = [record for record in caplog.get_records('call') if record.levelname == 'ERROR']
    if errors:
        pytest.fail(f'unexpected ERROR logs: {[record.getMessage() for record in errors]}', pytrace=False)


@pytest.fixture
def sign_in(api: Api, new_tenant: NewTenant) -> SignIn:
    """Each call: a fresh tenant, its user (admin unless told) signed in through the API."""

    async def make(role: str = 'admin') -> Caller:
        tenant = await new_tenant(role=role)
        response = await api.client.post('/api/v1/auth/token',
                                         data={'username': tenant.email, 'password': tenant.password})
        assert response.status_code == 200, response.text
        return Caller(tenant.principal, {'Authorization': f'Bearer {response.json()["access_token"]}'})

    return make


@pytest.fixture
def make_device(api: Api) -> DeviceMaker:
    """Create a device through the API: (device, credentials) as JSON."""

    async def make(caller: Caller, name: str = 'Sensor', **fields: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        response = await api.client.post('/api/v1/devices', json={'name': name, **fields}, headers=caller.headers)
        assert response.status_code == 201, response.text
        body = response.json()
        return body['device'], body['credentials']

    return make
