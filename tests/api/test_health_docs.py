from tests.api.conftest import Api
from tests.api.helpers import eventually


async def test_healthz_answers_ok(api: Api) -> None:
    response = await api.client.get('/healthz')
    assert response.status_code == 200
    assert response.json() == {'status': 'ok'}


async def test_readyz_reports_database_and_broker(api: Api) -> None:
    response = await eventually(lambda: api.client.get('/readyz'), lambda r: r.status_code == 200, seconds=5)
    assert response.status_code == 200
    assert response.json() == {'database': True, 'broker': True}


async def test_readyz_is_503_when_the_broker_is_gone(api: Api) -> None:
    await eventually(lambda: api.client.get('/readyz'), lambda r: r.status_code == 200, seconds=5)
    api.platform.link.connected = False
    try:
        response = await api.client.get('/readyz')
    finally:
        api.platform.link.connected = True
    assert response.status_code == 503
    assert response.json() == {'database': True, 'broker': False}


async def test_swagger_ui_is_served(api: Api) -> None:
    response = await api.client.get('/api/docs')
    assert response.status_code == 200
    assert response.headers['content-type'].startswith('text/html')
    assert 'swagger-ui' in response.text
    assert '/api/openapi.json' in response.text
    assert '/api/docs/oauth2-redirect' in response.text
    redirect = await api.client.get('/api/docs/oauth2-redirect')
    assert redirect.status_code == 200 and 'oauth2' in redirect.text.lower()


async def test_openapi_lists_the_api_and_its_sign_in(api: Api) -> None:
    response = await api.client.get('/api/openapi.json')
    assert response.status_code == 200
    schema = response.json()
    paths = schema['paths']
    assert set(paths) == {
        '/api/v1/auth/token', '/api/v1/devices', '/api/v1/devices/{device_id}', '/api/v1/devices/{device_id}/token',
        '/api/v1/devices/{device_id}/telemetry', '/api/v1/devices/{device_id}/telemetry/latest',
        '/api/v1/devices/{device_id}/telemetry/aggregate', '/api/v1/devices/{device_id}/telemetry/export.csv',
        '/api/v1/storage/retention', '/api/v1/storage/usage', '/healthz', '/readyz',
        '/api/v1/storage/raw-archive', '/api/v1/devices/{device_id}/raw',
        '/api/v1/devices/{device_id}/raw/export.ndjson', '/api/v1/devices/{device_id}/raw/replay',
        '/api/v1/users', '/api/v1/users/{user_id}', '/api/v1/tokens', '/api/v1/tokens/{token_id}',
        '/api/v1/audit', '/api/v1/audit.csv',
        '/api/v1/notifications/channels', '/api/v1/notifications/channels/{channel_id}',
        '/api/v1/notifications/channels/{channel_id}/test', '/api/v1/notifications/settings',
        '/api/v1/notifications/deliveries', '/api/v1/notifications/deliveries/{delivery_id}',
        '/api/v1/notifications/deliveries/{delivery_id}/retry',
        '/api/v1/rules', '/api/v1/rules/{rule_id}', '/api/v1/rules/backtest', '/api/v1/maintenance-windows',
        '/api/v1/maintenance-windows/{window_id}', '/api/v1/maintenance-windows/{window_id}/end',
        '/api/v1/alarms', '/api/v1/alarms/{alarm_id}',
        '/api/v1/alarms/{alarm_id}/acknowledge', '/api/v1/alarms/{alarm_id}/clear',
        '/api/v1/alarms/{alarm_id}/comments', '/api/v1/alarms/{alarm_id}/assign',
        '/api/v1/invites', '/api/v1/invites/{invite_id}', '/api/v1/auth/password-reset',
        '/api/v1/devices/{device_id}/disable', '/api/v1/devices/{device_id}/enable', '/api/v1/audit/retention',
        '/api/v1/users/{user_id}/sessions', '/api/v1/users/{user_id}/sessions/{session_id}',
    }
    assert set(paths['/api/v1/devices/{device_id}']) == {'get', 'patch', 'delete'}
    assert set(paths['/api/v1/devices/{device_id}/telemetry']) == {'get', 'post'}
    schemes = schema['components']['securitySchemes']
    assert schemes['UserToken']['flows']['password']['tokenUrl'] == '/api/v1/auth/token'
    assert schemes['DeviceToken'] == {'type': 'http', 'scheme': 'bearer', 'description': schemes['DeviceToken'][
        'description']}
    assert paths['/api/v1/devices']['get']['security'] == [{'UserToken': []}]
    assert paths['/api/v1/devices/{device_id}/telemetry']['post']['security'] == [{'DeviceToken': []}]
    assert 'Problem' in schema['components']['schemas']
