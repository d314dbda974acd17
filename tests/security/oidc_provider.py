"""A real OpenID Connect provider on loopback for the single sign-on tests: Authlib's authorization server
(authorization code grant with PKCE and the OpenID Connect extension, RS256 id_token) in a Flask app served by
werkzeug in a thread. Whoever the test puts in `next_user` "logs in" at the authorization endpoint at once.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, jsonify
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

from tests.support import free_port

CLIENT_ID, CLIENT_SECRET = 'gito-test-client', 'gito-test-client-secret'


@dataclass
class Client:
    redirect_uri: str
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_allowed_scope(self, scope: str) -> str:
        return ' '.join(word for word in (scope or '').split() if word in ('openid', 'email', 'profile'))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri == self.redirect_uri

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ('client_secret_basic', 'client_secret_post')

    def check_response_type(self, response_type: str) -> bool:
        return response_type == 'code'

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == 'authorization_code'


@dataclass
class Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    user: dict[str, Any]
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None

    def is_expired(self) -> bool:
        return time.time() - self.auth_time > 300


@dataclass
class Provider:
    issuer: str
    client: Client
    next_user: dict[str, Any] = field(default_factory=dict)  # claims of whoever logs in next
    codes: dict[str, Code] = field(default_factory=dict)
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={'kid': 'k1', 'use': 'sig'}))
    tamper: bool = False  # sign id_tokens with another key


def make_app(provider: Provider) -> Flask:
    app = Flask(__name__)
    wrong_key = RSAKey.generate_key(2048, parameters={'kid': 'k1', 'use': 'sig'})

    class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post']

        def save_authorization_code(self, code: str, request: Any) -> None:
            payload = request.payload
            provider.codes[code] = Code(
                code=code, client_id=request.client.client_id, redirect_uri=payload.redirect_uri, scope=request.scope,
                nonce=payload.data.get('nonce'), user=dict(request.user),
                code_challenge=payload.data.get('code_challenge'),
                code_challenge_method=payload.data.get('code_challenge_method'))

        def query_authorization_code(self, code: str, client: Client) -> Code | None:
            found = provider.codes.get(code)
            return found if found is not None and found.client_id == client.client_id else None

        def delete_authorization_code(self, authorization_code: Code) -> None:
            provider.codes.pop(authorization_code.code, None)

        def authenticate_user(self, authorization_code: Code) -> dict[str, Any]:
            return authorization_code.user

    class OpenID(OpenIDCode):  # type: ignore[misc]
        def resolve_client_private_key(self, client: Client) -> RSAKey:
            return wrong_key if provider.tamper else provider.key

        def get_client_algorithm(self, client: Client) -> str:
            return 'RS256'

        def get_encode_header(self, client: Client) -> dict[str, str]:
            return {'alg': 'RS256', 'kid': 'k1'}

        def get_client_claims(self, client: Client) -> dict[str, Any]:
            return {'iss': provider.issuer, 'aud': [client.client_id], 'exp': int(time.time()) + 300}

        def exists_nonce(self, nonce: str, request: Any) -> bool:
            return any(code.nonce == nonce for code in provider.codes.values())

        def generate_user_info(self, user: dict[str, Any], scope: str) -> UserInfo:
            return UserInfo(user)

    server = AuthorizationServer(app, query_client=lambda client_id: (
        provider.client if client_id == provider.client.client_id else None), save_token=lambda token, request: None)
    server.register_grant(CodeGrant, [OpenID(require_nonce=True), CodeChallenge(required=True)])

    @app.get('/.well-known/openid-configuration')
    def metadata() -> Any:
        return jsonify(issuer=provider.issuer, authorization_endpoint=f'{provider.issuer}/authorize',
                       token_endpoint=f'{provider.issuer}/token', jwks_uri=f'{provider.issuer}/jwks',
                       response_types_supported=['code'], subject_types_supported=['public'],
                       id_token_signing_alg_values_supported=['RS256'])

    @app.get('/jwks')
    def jwks() -> Any:
        return jsonify(keys=[provider.key.as_dict(private=False)])

    @app.get('/authorize')
    def authorize() -> Any:
        return server.create_authorization_response(grant_user=provider.next_user)

    @app.post('/token')
    def token() -> Any:
        return server.create_token_response()

    return app


@pytest.fixture
def oidc_provider(settings_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Provider]:
    """The provider running, and GITO_OIDC_* pointing the app at it (request before `platform`/`user`)."""
    port, app_port = free_port(), free_port()
    monkeypatch.setenv('AUTHLIB_INSECURE_TRANSPORT', '1')  # plain http on loopback
    monkeypatch.setenv('GITO_PORT', str(app_port))
    issuer = f'http://127.0.0.1:{port}'
    provider = Provider(issuer=issuer, client=Client(redirect_uri=f'http://127.0.0.1:{app_port}/auth/oidc/callback'))
    monkeypatch.setenv('GITO_OIDC_ISSUER', issuer)
    monkeypatch.setenv('GITO_OIDC_CLIENT_ID', CLIENT_ID)
    monkeypatch.setenv('GITO_OIDC_CLIENT_SECRET', CLIENT_SECRET)
    server = make_server('127.0.0.1', port, make_app(provider), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield provider
    server.shutdown()
    thread.join(timeout=5)
