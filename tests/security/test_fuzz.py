"""A bounded schemathesis run against the app's own OpenAPI document: generated requests, signed in as an admin
of a seeded tenant, never get a 5xx. Part of the default suite: at most a few examples per operation."""

from __future__ import annotations

import time
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.core.result import Ok
from schemathesis.schemas import BaseSchema

from tests.api.conftest import Api, SignIn
from tests.security.test_cross_tenant import generous_limits, seed_tenant_a

__all__ = ['generous_limits']
PER_OPERATION = 2
MAX_REQUESTS = 120


def generate(schema: BaseSchema, *, per_operation: int) -> list[Any]:
    """Cases from every operation (Hypothesis draws them; nothing is sent here)."""
    cases: list[Any] = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        strategy = result.ok().as_strategy()

        @hypothesis.settings(max_examples=per_operation, database=None, deadline=None, phases=[Phase.generate],
                             suppress_health_check=list(HealthCheck))
        @hypothesis.given(strategy)
        def collect(case: Any) -> None:
            cases.append(case)

        collect()
    return cases


async def test_generated_requests_never_get_a_server_error(generous_limits: None, api: Api, sign_in: SignIn) -> None:
    admin = await sign_in('admin')
    await seed_tenant_a(api, admin)
    document = (await api.client.get('/api/openapi.json')).json()
    started = time.monotonic()
    cases = generate(schemathesis.openapi.from_dict(document), per_operation=PER_OPERATION)[:MAX_REQUESTS]
    server_errors = []
    for case in cases:
        sent = case.as_transport_kwargs(base_url=str(api.client.base_url), headers=admin.headers)
        body = sent.get('data')
        response = await api.client.request(
            sent['method'], sent['url'], headers=sent.get('headers'), params=sent.get('params'),
            json=sent.get('json'),
            content=body if isinstance(body, bytes | str) else None,
            data=body if isinstance(body, dict) else None)
        if response.status_code >= 500:
            server_errors.append(f'{case.method} {case.formatted_path} → {response.status_code}: {response.text[:200]}')
    print(f'\nschemathesis: {len(cases)} requests over {len(document["paths"])} paths in '
          f'{time.monotonic() - started:.1f} s, {len(server_errors)} server errors')
    assert len(cases) >= len(document['paths'])
    assert server_errors == []


async def test_values_the_database_cannot_store_are_field_errors(api: Api, sign_in: SignIn) -> None:
    admin = await sign_in('admin')
    created = await api.client.post('/api/v1/devices', headers=admin.headers,
                                    json={'name': 'Pump', 'metadata': {'site': {'room': 'B\u0000 12'}}})
    assert created.status_code == 422, created.text
    assert created.json()['field'] == 'metadata.site.room'
    searched = await api.client.get('/api/v1/devices', params={'search': 'a\x00b'}, headers=admin.headers)
    assert (searched.status_code, searched.json()['field']) == (422, 'search')
    assert (await api.client.get('/api/v1/devices', headers=admin.headers)).json() == []  # nothing was written
    early = await api.client.get('/api/v1/audit', params={'since': '0001-01-01T00:00:00+14:00'}, headers=admin.headers)
    assert (early.status_code, early.json()['field']) == (422, 'since'), early.text
    huge = await api.client.post('/api/v1/devices', headers=admin.headers,
                                 json={'name': 'Meter', 'metadata': {'serial': 2 ** 70}})
    assert huge.status_code == 201, huge.text
    assert huge.json()['device']['metadata'] == {'serial': 2 ** 70}  # beyond orjson: rendered all the same
