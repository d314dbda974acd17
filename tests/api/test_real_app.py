"""The API inside the whole app (pages included), as `gito serve` builds it."""

from nicegui.testing import User

from app.platform import Platform
from tests.api.helpers import problem


async def test_the_real_app_serves_api_probes_and_pages_side_by_side(user: User, app_platform: Platform) -> None:
    client = user.http_client
    assert (await client.get('/healthz')).json() == {'status': 'ok'}
    schema = (await client.get('/api/openapi.json')).json()
    assert '/api/v1/devices' in schema['paths']
    assert not any(path.startswith('/_nicegui') for path in schema['paths'])
    problem(await client.get('/api/v1/devices'), 401)
    page = await client.get('/no-such-page')
    assert page.status_code == 404 and page.headers['content-type'].startswith('text/html')
    assert app_platform.writer.healthy
