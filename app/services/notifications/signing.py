"""Secrets of channels: sealed at rest with a key derived from SECRET_KEY; Standard Webhooks signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet

SECRET_PREFIX = 'whsec_'  # noqa: S105 - the format's prefix, not a secret


class SecretBox:
    """Symmetric encryption of channel secrets (webhook signing secrets, Slack URLs) stored in the database."""

    def __init__(self, key_material: str) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(hashlib.sha256(key_material.encode()).digest()))

    def seal(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode('ascii')

    def open(self, sealed: str) -> str:
        return self._fernet.decrypt(sealed.encode('ascii')).decode()


def new_signing_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode('ascii')


def signature(secret: str, *, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,` + base64(HMAC-SHA256(secret bytes, f'{id}.{timestamp}.{body}')) per the Standard Webhooks spec."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f'{message_id}.{timestamp}.'.encode() + body
    return 'v1,' + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode('ascii')


def webhook_headers(secret: str, *, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        'content-type': 'application/json',
        'webhook-id': message_id,
        'webhook-timestamp': str(timestamp),
        'webhook-signature': signature(secret, message_id=message_id, timestamp=timestamp, body=body),
    }
