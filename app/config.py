"""One settings object for the whole process, read from the environment (and `.env`)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file='.env', extra='ignore', populate_by_name=True)

    database_url: str | None = Field(default=None, validation_alias=AliasChoices('DATABASE_URL', 'database_url'))
    mqtt_url: str | None = Field(default=None, validation_alias=AliasChoices('MQTT_URL', 'mqtt_url'))
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices('REDIS_URL', 'redis_url'))
    secret_key: SecretStr | None = Field(default=None, validation_alias=AliasChoices('SECRET_KEY', 'secret_key'))

    smtp_host: str | None = Field(default=None, validation_alias=AliasChoices('SMTP_HOST', 'smtp_host'))
    smtp_port: int = Field(default=587, validation_alias=AliasChoices('SMTP_PORT', 'smtp_port'))
    smtp_user: str | None = Field(default=None, validation_alias=AliasChoices('SMTP_USER', 'smtp_user'))
    smtp_password: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices('SMTP_PASSWORD', 'smtp_password'),
    )
    smtp_from: str = Field(default='gito@localhost', validation_alias=AliasChoices('SMTP_FROM', 'smtp_from'))
    smtp_tls: Literal['none', 'starttls', 'tls'] = Field(
        default='starttls', validation_alias=AliasChoices('SMTP_TLS', 'smtp_tls'),
    )

    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir('gito')),
        validation_alias=AliasChoices('GITO_DATA_DIR', 'data_dir'),
    )
    host: str = Field(default='127.0.0.1', validation_alias=AliasChoices('GITO_HOST', 'host'))
    port: int = Field(default=8080, validation_alias=AliasChoices('GITO_PORT', 'port'))
    base_url: str | None = Field(default=None, validation_alias=AliasChoices('GITO_BASE_URL', 'base_url'))
    mqtt_port: int = Field(default=1883, validation_alias=AliasChoices('GITO_MQTT_PORT', 'mqtt_port'))
    mqtt_broker: Literal['auto', 'mosquitto', 'amqtt'] = Field(
        default='auto', validation_alias=AliasChoices('GITO_MQTT_BROKER', 'mqtt_broker'),
    )
    mqtt_queue_messages: int = Field(  # the managed Mosquitto's queue for Gito's session while Gito is behind or away
        default=2_000_000, ge=0, validation_alias=AliasChoices('GITO_MQTT_QUEUE_MESSAGES', 'mqtt_queue_messages'),
    )
    mqtt_queue_mb: int = Field(  # the same queue's bound in payload megabytes (0: none)
        default=256, ge=0, validation_alias=AliasChoices('GITO_MQTT_QUEUE_MB', 'mqtt_queue_mb'),
    )
    mqtt_public_host: str | None = Field(
        default=None, validation_alias=AliasChoices('GITO_MQTT_PUBLIC_HOST', 'mqtt_public_host'),
    )
    mqtt_auth_dir: Path | None = Field(
        default=None, validation_alias=AliasChoices('GITO_MQTT_AUTH_DIR', 'mqtt_auth_dir'),
    )
    app_db_role: str = Field(default='gito_app', validation_alias=AliasChoices('GITO_APP_DB_ROLE', 'app_db_role'))
    device_offline_after_s: int = Field(
        default=120, ge=5, validation_alias=AliasChoices('GITO_DEVICE_OFFLINE_AFTER_S', 'device_offline_after_s'),
    )
    rules_every_s: float = Field(  # how often window and no-data rules are evaluated
        default=10.0, ge=0.5, validation_alias=AliasChoices('GITO_RULES_EVERY_S', 'rules_every_s'),
    )
    storage_jobs: bool = Field(  # partitions ahead, rollups, retention (off only in tests that drive them)
        default=True, validation_alias=AliasChoices('GITO_STORAGE_JOBS', 'storage_jobs'),
    )
    rollup_every_s: float = Field(  # how often the rollups catch up with new telemetry (plain PostgreSQL)
        default=15.0, ge=0.5, validation_alias=AliasChoices('GITO_ROLLUP_EVERY_S', 'rollup_every_s'),
    )
    ingest_batch_rows: int = Field(
        default=10_000, ge=1, validation_alias=AliasChoices('GITO_INGEST_BATCH_ROWS', 'ingest_batch_rows'),
    )
    ingest_batch_ms: int = Field(
        default=50, ge=1, validation_alias=AliasChoices('GITO_INGEST_BATCH_MS', 'ingest_batch_ms'),
    )
    ingest_direct_copy: bool = Field(  # COPY straight into telemetry as the ingest role, where there is one
        default=True, validation_alias=AliasChoices('GITO_INGEST_DIRECT_COPY', 'ingest_direct_copy'),
    )
    ingest_shared: bool = Field(  # MQTT 5 shared subscription: several instances split the device stream
        default=False, validation_alias=AliasChoices('GITO_INGEST_SHARED', 'ingest_shared'),
    )
    mqtt_session_expiry_s: int = Field(  # how long the broker keeps Gito's session (and queues) while it is away
        default=86_400, ge=0, validation_alias=AliasChoices('GITO_MQTT_SESSION_EXPIRY_S', 'mqtt_session_expiry_s'),
    )
    session_idle_s: int = Field(
        default=8 * 3600, ge=60, validation_alias=AliasChoices('GITO_SESSION_IDLE_S', 'session_idle_s'),
    )
    session_max_s: int = Field(
        default=7 * 24 * 3600, ge=60, validation_alias=AliasChoices('GITO_SESSION_MAX_S', 'session_max_s'),
    )
    api_rate: float = Field(default=20, gt=0, validation_alias=AliasChoices('GITO_API_RATE', 'api_rate'))
    api_burst: int = Field(default=100, ge=1, validation_alias=AliasChoices('GITO_API_BURST', 'api_burst'))
    ingest_rate: float = Field(default=200, gt=0, validation_alias=AliasChoices('GITO_INGEST_RATE', 'ingest_rate'))
    ingest_burst: int = Field(default=1000, ge=1, validation_alias=AliasChoices('GITO_INGEST_BURST', 'ingest_burst'))
    audit_retention_days: int = Field(  # per tenant on the audit page; this is the default
        default=365, ge=7, le=3650, validation_alias=AliasChoices('GITO_AUDIT_RETENTION_DAYS', 'audit_retention_days'),
    )
    oidc_issuer: str | None = Field(  # single sign-on with OpenID Connect when set (with client id and secret)
        default=None, validation_alias=AliasChoices('GITO_OIDC_ISSUER', 'oidc_issuer'),
    )
    oidc_client_id: str | None = Field(
        default=None, validation_alias=AliasChoices('GITO_OIDC_CLIENT_ID', 'oidc_client_id'),
    )
    oidc_client_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices('GITO_OIDC_CLIENT_SECRET', 'oidc_client_secret'),
    )
    oidc_scopes: str = Field(default='openid email profile',
                             validation_alias=AliasChoices('GITO_OIDC_SCOPES', 'oidc_scopes'))
    oidc_tenant_claim: str = Field(  # its value: a tenant id or an organisation name
        default='gito_tenant', validation_alias=AliasChoices('GITO_OIDC_TENANT_CLAIM', 'oidc_tenant_claim'),
    )
    oidc_tenant: str | None = Field(  # the tenant (id or name) of users whose token has no tenant claim
        default=None, validation_alias=AliasChoices('GITO_OIDC_TENANT', 'oidc_tenant'),
    )
    oidc_role_claim: str = Field(  # a role name or a list (the highest known role counts)
        default='gito_role', validation_alias=AliasChoices('GITO_OIDC_ROLE_CLAIM', 'oidc_role_claim'),
    )
    oidc_default_role: Literal['admin', 'operator', 'technician', 'viewer'] = Field(
        default='viewer', validation_alias=AliasChoices('GITO_OIDC_DEFAULT_ROLE', 'oidc_default_role'),
    )
    oidc_button: str = Field(default='Sign in with single sign-on',
                             validation_alias=AliasChoices('GITO_OIDC_BUTTON', 'oidc_button'))
    log_level: str = Field(default='INFO', validation_alias=AliasChoices('GITO_LOG_LEVEL', 'log_level'))

    def resolved_secret_key(self) -> str:
        """SECRET_KEY, or a random key kept in the data directory so restarts keep sessions valid."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.data_dir / 'secret_key'
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.touch(mode=0o600)
        path.write_text(key)
        return key

    def derived_secret(self, purpose: str) -> str:
        """A stable secret for one purpose (database role, broker service account), derived from SECRET_KEY."""
        digest = hmac.new(self.resolved_secret_key().encode(), purpose.encode(), hashlib.sha256).hexdigest()
        return digest[:40]
