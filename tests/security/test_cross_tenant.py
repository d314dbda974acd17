"""Cross-tenant suite generated from the OpenAPI document: every route with a path id, every method, called
by every role of another tenant with tenant A's ids, must never succeed. New routes are covered automatically.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from tests.api.conftest import Api, Caller, SignIn

METHODS = ('get', 'post', 'put', 'patch', 'delete')


@pytest.fixture
def generous_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-tenant API limit must not answer 429 in place of the handler."""
    monkeypatch.setenv('GITO_API_BURST', '100000')
    monkeypatch.setenv('GITO_INGEST_BURST', '100000')


def example(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> Any:
    """A minimal value the schema accepts: required fields only, simple values."""
    if '$ref' in schema:
        schema = components[schema['$ref'].rsplit('/', 1)[-1]]
    for key in ('anyOf', 'oneOf', 'allOf'):
        if key in schema:
            options = [option for option in schema[key] if option.get('type') != 'null']
            return example(options[0] if options else {}, components, depth + 1)
    if 'enum' in schema:
        return schema['enum'][0]
    if 'default' in schema:
        return schema['default']
    kind = schema.get('type')
    if kind == 'object' or 'properties' in schema:
        if depth > 4:
            return {}
        properties = schema.get('properties', {})
        return {name: example(properties.get(name, {}), components, depth + 1) for name in schema.get('required', [])}
    if kind == 'array':
        return []
    if kind == 'integer':
        return max(1, schema.get('minimum', 1))
    if kind == 'number':
        return max(1.0, schema.get('minimum', 1.0))
    if kind == 'boolean':
        return False
    if schema.get('format') == 'uuid':
        return str(uuid4())
    if schema.get('format') == 'date-time':
        return '2026-01-01T00:00:00Z'
    if schema.get('format') == 'email':
        return f'x{uuid4().hex[:6]}@example.com'
    return 'x' * max(1, schema.get('minLength', 1))


async def ids_of_tenant_a(api: Api, owner: Caller, paths: dict[str, Any]) -> dict[str, str]:
    """For each route prefix ('/api/v1/devices') the id of one of A's objects, read from A's own list."""
    found: dict[str, str] = {}
    for path in paths:
        if '{' not in path:
            continue
        collection = path[:path.index('{')].rstrip('/')
        if collection in found or 'get' not in paths.get(collection, {}):
            continue
        response = await api.client.get(collection, headers=owner.headers)
        body = response.json() if response.status_code == 200 else None
        if isinstance(body, list) and body and isinstance(body[0], dict) and 'id' in body[0]:
            found[collection] = str(body[0]['id'])
    return found


async def seed_tenant_a(api: Api, owner: Caller) -> None:
    devices = await api.client.post('/api/v1/devices', json={'name': 'A pump'}, headers=owner.headers)
    assert devices.status_code == 201
    device_id = devices.json()['device']['id']
    await api.client.post(f'/api/v1/devices/{device_id}/telemetry', json={'t': 1},
                          headers={'Authorization': f'Bearer {devices.json()["credentials"]["token"]}'})
    await api.client.post('/api/v1/users', headers=owner.headers, json={
        'email': f'a-{uuid4().hex[:6]}@example.com', 'password': 'long enough pw', 'role': 'viewer'})
    await api.client.post('/api/v1/tokens', json={'name': 'A script'}, headers=owner.headers)


def fill(path: str, collection_ids: dict[str, str]) -> str:
    collection = path[:path.index('{')].rstrip('/')
    known = collection_ids.get(collection, str(uuid4()))
    parts = []
    first = True
    for segment in path.split('/'):
        if segment.startswith('{'):
            parts.append(known if first else str(uuid4()))
            first = False
        else:
            parts.append(segment)
    return '/'.join(parts)


async def test_no_route_leaks_across_tenants(generous_limits: None, api: Api, sign_in: SignIn) -> None:
    owner = await sign_in('admin')
    await seed_tenant_a(api, owner)
    document = (await api.client.get('/api/openapi.json')).json()
    paths, components = document['paths'], document.get('components', {}).get('schemas', {})
    collection_ids = await ids_of_tenant_a(api, owner, paths)
    assert '/api/v1/devices' in collection_ids and '/api/v1/users' in collection_ids

    attackers = [await sign_in(role) for role in ('admin', 'operator', 'technician', 'viewer')]
    tried, leaks, own_successes = 0, [], 0
    for path, operations in sorted(paths.items()):
        if '{' not in path:
            continue
        url = fill(path, collection_ids)
        for method in METHODS:
            operation = operations.get(method)
            if operation is None:
                continue
            body_schema = operation.get('requestBody', {}).get('content', {}).get('application/json', {})
            body = example(body_schema.get('schema', {}), components) if body_schema else None
            if method == 'get':  # control: the owner reaches its own object, so the ids are real
                own = await api.client.get(url, headers=owner.headers)
                own_successes += own.is_success
            for attacker in attackers:
                response = await api.client.request(method.upper(), url, headers=attacker.headers, json=body)
                tried += 1
                if response.is_success:
                    leaks.append(f'{method.upper()} {url} → {response.status_code}')
    print(f'\ncross-tenant: {tried} requests tried, {len(leaks)} leaks found')
    assert tried >= 4 * 6 and own_successes >= 2
    assert leaks == []
    device_id = collection_ids['/api/v1/devices']
    assert (await api.client.get(f'/api/v1/devices/{device_id}', headers=owner.headers)).status_code == 200
