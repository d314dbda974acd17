"""Password and token hashing.

Passwords are argon2id. Device tokens are 256-bit random strings, so a single SHA-256 is enough to store them
(no guessing attack on that entropy) and keeps HTTP ingest fast; the broker needs its own PBKDF2-SHA512 form
(Mosquitto's `$7$` password-file format), computed once when the token is issued.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
MOSQUITTO_ITERATIONS = 101


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def dummy_verify() -> None:
    """Spend the time of a real verification so unknown e-mail addresses cannot be told apart by timing."""
    verify_password(_DUMMY_HASH, 'not the password')


_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def new_device_token() -> str:
    return secrets.token_urlsafe(32)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(stored_sha256: str, token: str) -> bool:
    return hmac.compare_digest(stored_sha256, token_sha256(token))


def mosquitto_hash(password: str, *, salt: bytes | None = None) -> str:
    """Mosquitto 2.x `$7$` entry: PBKDF2-HMAC-SHA512, base64 salt and hash."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac('sha512', password.encode(), salt, MOSQUITTO_ITERATIONS)
    return f'$7${MOSQUITTO_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}'


def mosquitto_verify(entry: str, password: str) -> bool:
    try:
        _, kind, iterations, salt_b64, hash_b64 = entry.split('$')
        if kind != '7':
            return False
        digest = hashlib.pbkdf2_hmac('sha512', password.encode(), base64.b64decode(salt_b64), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(base64.b64encode(digest).decode(), hash_b64)
