"""Errors under /api are problem+json; everything else keeps NiceGUI's own answers."""

from typing import Any

import httpx
import pytest
from nicegui import app as nicegui_app

from tests.api.conftest import Api, SignIn
from tests.api.helpers import problem


async def test_unknown_api_route_is_a_404_problem(api: Api) -> None:
    body = problem(await api.client.get('/api/v1/nothing-here'), 404)
    assert body == {'type': 'about:blank', 'title': 'Not Found', 'status': 404, 'detail': 'Not Found'}


async def test_wrong_method_is_a_405_problem(api: Api, sign_in: SignIn) -> None:
    caller = await sign_in()
    response = await api.client.put('/api/v1/devices', headers=caller.headers)
    assert problem(response, 405)['title'] == 'Method Not Allowed'
    assert 'GET' in response.headers['allow']


async def test_unknown_page_still_gets_nicegui_html(api: Api) -> None:
    response = await api.client.get('/no-such-page')
    assert response.status_code == 404
    assert response.headers['content-type'].startswith('text/html')
    assert 'problem' not in response.headers['content-type']


async def test_unexpected_error_gives_a_problem_without_internals(
    api: Api, sign_in: SignIn, monkeypatch: pytest.MonkeyPatch,
) -> None:
    caller = await sign_in()

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError('secret connection string postgresql://app:hunter2@db')

    monkeypatch.setattr(api.platform.devices, 'list', broken)
    transport = httpx.ASGITransport(app=nicegui_app, raise_app_exceptions=False)  # as a server would answer
    async with httpx.AsyncClient(transport=transport, base_url='http://test') as client:
        response = await client.get('/api/v1/devices', headers=caller.headers)
    body = problem(response, 500)
    assert body['title'] == 'Internal Server Error'
    assert 'hunter2' not in response.text and 'RuntimeError' not in response.text
