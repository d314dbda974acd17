import jwt

from app.services.auth import TOKEN_TTL, WRONG_CREDENTIALS
from tests.api.conftest import Api, SignIn
from tests.api.helpers import problem
from tests.conftest import NewTenant


async def test_password_sign_in_gives_a_working_bearer_token(api: Api, new_tenant: NewTenant) -> None:
    tenant = await new_tenant()
    response = await api.client.post('/api/v1/auth/token',
                                     data={'username': tenant.email.upper(), 'password': tenant.password})
    assert response.status_code == 200
    body = response.json()
    assert body['token_type'] == 'bearer'
    assert body['expires_in'] == int(TOKEN_TTL.total_seconds())
    claims = jwt.decode(body['access_token'], options={'verify_signature': False})
    assert claims['tid'] == str(tenant.principal.tenant_id)
    devices = await api.client.get('/api/v1/devices', headers={'Authorization': f'Bearer {body["access_token"]}'})
    assert devices.status_code == 200
    assert devices.json() == []


async def test_wrong_password_and_unknown_user_get_the_same_401(api: Api, new_tenant: NewTenant) -> None:
    tenant = await new_tenant()
    wrong = await api.client.post('/api/v1/auth/token', data={'username': tenant.email, 'password': 'not it at all'})
    unknown = await api.client.post('/api/v1/auth/token',
                                    data={'username': 'nobody@example.com', 'password': tenant.password})
    first, second = problem(wrong, 401), problem(unknown, 401)
    assert first['detail'] == second['detail'] == WRONG_CREDENTIALS
    assert wrong.headers['www-authenticate'] == unknown.headers['www-authenticate'] == 'Bearer'
    assert tenant.password not in wrong.text


async def test_sign_in_without_a_password_names_the_field(api: Api) -> None:
    response = await api.client.post('/api/v1/auth/token', data={'username': 'someone@example.com'})
    body = problem(response, 422)
    assert body['field'] == 'password'
    assert body['errors'][0]['field'] == 'password'


async def test_missing_and_bad_tokens_are_refused_with_bearer_challenge(api: Api) -> None:
    for headers in ({}, {'Authorization': 'Bearer not-a-jwt'}, {'Authorization': 'Basic dXNlcjpwdw=='}):
        response = await api.client.get('/api/v1/devices', headers=headers)
        body = problem(response, 401)
        assert response.headers['www-authenticate'] == 'Bearer'
        assert body['title'] == 'Authentication failed'


async def test_token_signed_with_another_key_is_refused(api: Api, sign_in: SignIn) -> None:
    caller = await sign_in()
    forged = jwt.encode({'sub': str(caller.principal.user_id), 'tid': str(caller.principal.tenant_id),
                         'role': 'admin', 'exp': 4102444800}, 'another-secret-key-of-enough-length', algorithm='HS256')
    response = await api.client.get('/api/v1/devices', headers={'Authorization': f'Bearer {forged}'})
    assert problem(response, 401)['detail'] == 'Invalid or expired token.'


async def test_viewer_may_read_but_not_create(api: Api, sign_in: SignIn) -> None:
    viewer = await sign_in(role='viewer')
    assert (await api.client.get('/api/v1/devices', headers=viewer.headers)).status_code == 200
    response = await api.client.post('/api/v1/devices', json={'name': 'Nope'}, headers=viewer.headers)
    assert problem(response, 403)['detail'] == 'Your role can only view devices.'
