"""Rate limits: growing delay after failed sign-ins (no account enumeration), per-tenant API and ingest buckets;
the same behaviour in memory and in Redis."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest

from app.services.errors import TooManyRequests
from app.services.rate_limits import TOO_MANY_SIGN_INS, LimitStore, MemoryLimits, RedisLimits, SignInLimiter
from tests.api.conftest import Api, SignIn
from tests.conftest import NewTenant


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=['memory', 'redis'])
async def store(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[LimitStore]:
    limits: LimitStore = MemoryLimits() if request.param == 'memory' \
        else RedisLimits(redis_url, prefix=f'gito-test:{uuid4().hex}:')
    limits.clock = Clock()
    yield limits
    await limits.close()


async def test_sign_in_delay_grows_after_five_failures(store: LimitStore) -> None:
    clock = store.clock
    assert isinstance(clock, Clock)
    limiter = SignInLimiter(store)
    for _ in range(5):
        await limiter.check('victim@example.com', '10.0.0.1')
        await limiter.failed('victim@example.com', '10.0.0.1')
        clock.now += 1
    with pytest.raises(TooManyRequests) as refused:
        await limiter.check('victim@example.com', '10.0.0.2')  # another address: the account is locked
    assert refused.value.retry_after == 1  # 2 s after the fifth failure, 1 s of it gone
    with pytest.raises(TooManyRequests):
        await limiter.check('someone-else@example.com', '10.0.0.1')  # another account: the address is locked
    await limiter.check('someone-else@example.com', '10.0.0.9')
    clock.now += 1
    await limiter.check('victim@example.com', '10.0.0.1')
    await limiter.failed('victim@example.com', '10.0.0.1')
    with pytest.raises(TooManyRequests) as refused:
        await limiter.check('victim@example.com', '')
    assert refused.value.retry_after == 4  # doubled
    clock.now += 15 * 60 + 1  # the window passes
    await limiter.check('victim@example.com', '10.0.0.1')


async def test_token_bucket(store: LimitStore) -> None:
    clock = store.clock
    assert isinstance(clock, Clock)
    assert [await store.take('t1', rate=1, burst=3) for _ in range(3)] == [0, 0, 0]
    assert await store.take('t1', rate=1, burst=3) == pytest.approx(1)
    assert await store.take('t2', rate=1, burst=3) == 0  # buckets are per key
    clock.now += 1
    assert await store.take('t1', rate=1, burst=3) == 0


async def test_api_sign_in_brute_force_is_refused_without_enumeration(api: Api, new_tenant: NewTenant) -> None:
    tenant = await new_tenant()

    async def attempt(email: str, password: str) -> tuple[int, str, str | None]:
        response = await api.client.post('/api/v1/auth/token', data={'username': email, 'password': password})
        assert response.status_code != 200 or 'access_token' in response.json()
        detail = response.json().get('detail', 'signed in')
        return response.status_code, detail, response.headers.get('retry-after')

    unknown = await attempt('nobody@example.com', 'wrong password')
    wrong = await attempt(tenant.email, 'wrong password')
    assert unknown == wrong == (401, 'Wrong e-mail address or password.', None)
    for _ in range(3):
        assert (await attempt(tenant.email, 'wrong password'))[0] == 401
    locked = await attempt(tenant.email, tenant.password)  # even the right password now waits
    assert locked == (429, TOO_MANY_SIGN_INS, '2')
    assert await attempt('nobody@example.com', 'guess') == locked  # the address is locked, whatever the account
    api.platform.limits.clock = lambda: time.time() + 3
    assert (await attempt(tenant.email, tenant.password))[0] == 200


@pytest.fixture
def tight_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('GITO_API_RATE', '0.1')
    monkeypatch.setenv('GITO_API_BURST', '3')
    monkeypatch.setenv('GITO_INGEST_RATE', '0.1')
    monkeypatch.setenv('GITO_INGEST_BURST', '2')


async def test_per_tenant_api_and_ingest_limits(tight_limits: None, api: Api, sign_in: SignIn) -> None:
    busy, calm = await sign_in(), await sign_in()
    statuses = [(await api.client.get('/api/v1/devices', headers=busy.headers)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = await api.client.get('/api/v1/devices', headers=busy.headers)
    assert refused.status_code == 429 and int(refused.headers['retry-after']) >= 1
    assert refused.headers['content-type'].startswith('application/problem+json')
    assert (await api.client.get('/api/v1/devices', headers=calm.headers)).status_code == 200

    created = await api.client.post('/api/v1/devices', json={'name': 'Meter'}, headers=calm.headers)
    credentials = created.json()['credentials']
    url, device_auth = credentials['http_url'], {'Authorization': f'Bearer {credentials["token"]}'}
    path = url[url.index('/api/'):]
    ingested = [(await api.client.post(path, json={'t': 1}, headers=device_auth)).status_code for _ in range(3)]
    assert ingested == [202, 202, 429]
