"""The composition root's runtime: engines, bus, services and background tasks of one Gito process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlmodel import col, select

from app.bus import EventBus, create_bus
from app.config import Settings
from app.db import Database, listen_for_ids
from app.embedded.postgres import EmbeddedServer
from app.ingest.broker import BrokerCredential, ExternalAuthFiles, ManagedBroker
from app.ingest.broker_drops import BrokerDropWatch
from app.ingest.directory import DeviceDirectory
from app.ingest.latest import load_sequences, recover_latest
from app.ingest.mqtt_consumer import LinkStatus, MqttConsumer, MqttTarget, parse_mqtt_url
from app.ingest.state_mark import StateMark
from app.ingest.writer import BatchWriter
from app.models.alarm_notice import AlarmNotifier
from app.models.tables import Device, Tenant
from app.services.account_links import AccountLinkService
from app.services.alarms import AlarmService
from app.services.api_tokens import ApiTokenService
from app.services.audit import AuditService
from app.services.audit_retention import AuditRetention
from app.services.auth import AuthService
from app.services.credentials import mosquitto_hash
from app.services.devices import DEVICE_CHANNEL, DeviceEndpoints, DeviceService
from app.services.ingest_keys import IngestKeys
from app.services.notifications import Notifications
from app.services.oidc import OidcService
from app.services.platform_admin import PlatformAdminService
from app.services.presence import PresenceService
from app.services.rate_limits import BucketLimit, SignInLimiter, create_limits
from app.services.raw_archive import RawArchive, RawArchivePolicy
from app.services.rules.backtest import Backtester
from app.services.rules.engine import RuleEngine
from app.services.rules.maintenance import MaintenanceService
from app.services.rules.scheduled import ScheduledRules
from app.services.rules.service import RULE_CHANNEL, RuleService
from app.services.sessions import SessionService
from app.services.storage.maintenance import StorageMaintenance
from app.services.storage.service import StorageService
from app.services.telemetry import TelemetryService
from app.services.telemetry_export import TelemetryExport
from app.services.tenants import TenantService
from app.services.users import UserService

log = logging.getLogger(__name__)
SERVICE_ACCOUNT = 'gito-service'


@dataclass(frozen=True)
class Resolved:
    """Settings with the embedded defaults filled in."""

    database_url: str
    mqtt_url: str | None  # None: the managed broker, started by the platform
    embedded_database: EmbeddedServer | None = None  # stopped by `gito serve` at shutdown


def tune_garbage_collector() -> None:
    """Ingest makes and drops hundreds of thousands of small objects a second, nearly all without cycles: with
    Python's default thresholds the cyclic collector runs hundreds of times a second and walks the whole young
    heap each time. Objects alive after start-up are frozen (never scanned again) and collections are rarer.

    The young generation is collected after 500,000 more tracked objects than were freed. At 50,000, an
    overloaded writer's queue (items, messages and readings waiting for their batch) crossed it about twice a
    second and every young collection walked that queue, 60 to 80 ms each: 15% of the process's CPU
    (`bench/ingest.py`, `gc_s_by_generation`); at 500,000 the queue's own bound keeps it from ever being reached."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(500_000, 20, 20)


def app_role_password(settings: Settings) -> str:
    return settings.derived_secret('database-app-role')


def service_mqtt_password(settings: Settings) -> str:
    return settings.derived_secret('mqtt-service-account')


class Platform:
    def __init__(self, settings: Settings, resolved: Resolved) -> None:
        self.settings = settings
        self.resolved = resolved
        self.db = Database.connect(resolved.database_url, role=settings.app_db_role,
                                   password=app_role_password(settings))
        self.bus: EventBus = create_bus(settings.redis_url)
        self.link = LinkStatus()
        self.mqtt_target = self._mqtt_target()
        public_host = settings.mqtt_public_host or _public_host(self.mqtt_target.host)
        http_host = _public_host(settings.host)
        self.base_url = settings.base_url or f'http://{http_host}:{settings.port}'
        self.tenants = TenantService(self.db)
        self.sessions = SessionService(self.db, self.bus, idle_s=settings.session_idle_s,
                                       max_s=settings.session_max_s)
        self.users = UserService(self.db, self.sessions)
        self.audit = AuditService(self.db)
        self.audit_retention = AuditRetention(self.db, default_days=settings.audit_retention_days)
        self.api_tokens = ApiTokenService(self.db)
        self.platform_admin = PlatformAdminService(self.db, self.sessions)
        self.limits = create_limits(settings.redis_url)
        self.oidc = OidcService(self.db, settings, redirect_uri=f'{self.base_url}/auth/oidc/callback',
                                secret=settings.derived_secret('oidc-login-state'))
        self.account_links = AccountLinkService(self.db, self.sessions, settings, base_url=self.base_url,
                                                limits=self.limits)
        self.api_limit = BucketLimit(rate=settings.api_rate, burst=settings.api_burst)
        self.ingest_limit = BucketLimit(rate=settings.ingest_rate, burst=settings.ingest_burst)
        self.auth = AuthService(self.db, secret_key=settings.resolved_secret_key(),
                                limiter=SignInLimiter(self.limits))
        self.devices = DeviceService(self.db, self.bus, DeviceEndpoints(
            mqtt_host=public_host, mqtt_port=self.mqtt_target.port,
            http_base_url=self.base_url,
        ))
        self.notifications = Notifications(self.db, settings, base_url=self.base_url)
        self.outbox: AlarmNotifier = self.notifications.outbox
        self.telemetry = TelemetryService(self.db)
        self.ingest_keys = IngestKeys(self.db)
        self.storage = StorageService(self.db)
        self.export = TelemetryExport(self.db)
        self.storage_jobs = StorageMaintenance(self.db, rollup_every_s=settings.rollup_every_s)
        self.directory = DeviceDirectory(self.db, self.bus)
        self.writer = BatchWriter(
            _plain_dsn(self.db), self.bus, max_rows=settings.ingest_batch_rows,
            max_delay_s=settings.ingest_batch_ms / 1000, direct_copy=settings.ingest_direct_copy,
        )
        self.state_mark = StateMark(_plain_dsn(self.db), self.writer.state.flushed_through)
        self.presence = PresenceService(self.db, self.bus, default_offline_after_s=settings.device_offline_after_s,
                                        state_current=self.state_mark.current)
        self.telemetry.unwritten = self.writer.unwritten_latest
        self.archive_policy = RawArchivePolicy(self.db, self.writer)
        self.raw_archive = RawArchive(self.db, self.writer, self.archive_policy)
        self.alarms = AlarmService(self.db, self.bus, notifier=self.outbox)
        self.rules = RuleService(self.db, self.bus, self.alarms)
        self.maintenance = MaintenanceService(self.db)
        self.rule_engine = RuleEngine(self.db, self.bus, self.rules, self.alarms, self.maintenance)
        self.writer.on_committed(self.rule_engine.on_committed)
        self.scheduled_rules = ScheduledRules(self.db, self.alarms, self.maintenance,
                                              every_s=settings.rules_every_s, state_current=self.state_mark.current)
        self.backtest = Backtester(self.db, self.maintenance)
        self.consumer = MqttConsumer(self.mqtt_target, self.directory, self.writer, self.link,
                                     session_expiry_s=settings.mqtt_session_expiry_s, shared=settings.ingest_shared)
        self.broker: ManagedBroker | None = None
        self._devices_dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.broker_drops: BrokerDropWatch | None = None  # an external broker's drops (`broker_drops.py`)
        self.started = False

    def _mqtt_target(self) -> MqttTarget:
        client_id = f'gito-{socket.gethostname()}-{self.settings.port}'
        if self.resolved.mqtt_url:
            return parse_mqtt_url(self.resolved.mqtt_url, client_id=client_id)
        return MqttTarget(host='127.0.0.1', port=self.settings.mqtt_port, username=SERVICE_ACCOUNT,
                          password=service_mqtt_password(self.settings), client_id=client_id)

    async def start(self) -> None:
        await self.bus.start()
        await self.directory.start()
        await recover_latest(self.db)  # latest values a crash left unwritten
        self.writer.restore_sequences(await load_sequences(self.db))
        await self.archive_policy.refresh()
        await self.writer.start()
        self.state_mark.start()
        if self.resolved.mqtt_url is None:
            await self._start_managed_broker()
        else:
            if self.settings.mqtt_auth_dir is not None:
                files = ExternalAuthFiles(self.settings.mqtt_auth_dir)
                await files.update_credentials(await self._broker_credentials())
                self._tasks.append(asyncio.create_task(self._sync_broker_credentials(files)))
            self.broker_drops = BrokerDropWatch(self.mqtt_target, mqtt5=self.consumer.mqtt5)
            self._tasks.append(asyncio.create_task(self.broker_drops.run()))
        self._tasks.append(asyncio.create_task(listen_for_ids(
            _plain_dsn(self.db), DEVICE_CHANNEL, self._device_changed, on_connect=self._devices_dirty.set)))
        self._tasks.append(asyncio.create_task(listen_for_ids(
            _plain_dsn(self.db), RULE_CHANNEL, self.rule_engine.invalidate,
            on_connect=self.rule_engine.invalidate_all)))
        self._tasks.append(asyncio.create_task(self.sessions.watch()))
        await self.consumer.start()
        await self.presence.start()
        await self.storage_jobs.start(loop=self.settings.storage_jobs)
        self.audit_retention.job.start()
        self.archive_policy.job.start()
        await self.scheduled_rules.start()
        self.notifications.start()
        self.started = True
        log.info('gito started', extra={'mqtt': f'{self.mqtt_target.host}:{self.mqtt_target.port}'})

    async def stop(self) -> None:
        await self.scheduled_rules.stop()
        await self.notifications.stop()
        await self.account_links.settle()
        await self.presence.stop()
        await self.storage_jobs.stop()
        await self.audit_retention.job.stop()
        await self.archive_policy.job.stop()
        await self.consumer.stop()
        await self.writer.stop()
        await self.state_mark.stop()
        await self.rule_engine.stop()  # writes the last batches' alarm changes
        await self.directory.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.broker is not None:
            await self.broker.stop()
        await self.bus.stop()
        await self.limits.close()
        await self.db.dispose()
        self.started = False

    async def _start_managed_broker(self) -> None:
        broker = ManagedBroker(data_dir=self.settings.data_dir, host=self.mqtt_target.host,
                               port=self.mqtt_target.port, kind=self.settings.mqtt_broker,
                               queue_messages=self.settings.mqtt_queue_messages, queue_mb=self.settings.mqtt_queue_mb)
        await broker.start(await self._broker_credentials())
        self.broker = broker
        self.consumer.mqtt5 = broker.kind_in_use == 'mosquitto'  # amqtt speaks MQTT 3.1.1 only
        self._tasks.append(asyncio.create_task(self._sync_broker_credentials(broker)))
        self._tasks.append(asyncio.create_task(self._watch_broker_queue(broker)))

    async def _watch_broker_queue(self, broker: ManagedBroker, every_s: float = 5.0) -> None:
        """Mosquitto drops what it queued for Gito past its bound without telling anyone but its log: say it loudly."""
        while True:
            await asyncio.sleep(every_s)
            overflows = broker.queue_overflows(self.mqtt_target.client_id)
            if overflows:
                self.link.queue_overflows += overflows
                log.error('mqtt broker is dropping messages queued for gito', extra={
                    'client_id': self.mqtt_target.client_id, 'queue_messages': self.settings.mqtt_queue_messages,
                    'queue_mb': self.settings.mqtt_queue_mb,
                    'hint': 'ingest is behind or away; raise GITO_MQTT_QUEUE_MESSAGES / GITO_MQTT_QUEUE_MB'})

    async def _broker_credentials(self) -> list[BrokerCredential]:
        """Gito's own account (full access) and one entry per device, limited to its own topic prefix."""
        credentials = [BrokerCredential(
            username=self.mqtt_target.username or SERVICE_ACCOUNT,
            mosquitto_hash=mosquitto_hash(self.mqtt_target.password or service_mqtt_password(self.settings)),
            topic_prefix=None,
        )]
        async with self.db.system() as session:
            rows = await session.execute(  # disabled devices and suspended tenants' devices cannot connect
                select(col(Device.id), col(Device.tenant_id), col(Device.mqtt_password_hash))
                .join(Tenant, col(Tenant.id) == col(Device.tenant_id))
                .where(col(Device.disabled).is_(False), col(Tenant.status) == 'active'))
            credentials += [
                BrokerCredential(username=str(device_id), mosquitto_hash=password_hash,
                                 topic_prefix=f'{tenant_id}/devices/{device_id}/')
                for device_id, tenant_id, password_hash in rows
            ]
        return credentials

    async def _sync_broker_credentials(self, broker: ManagedBroker | ExternalAuthFiles) -> None:
        """Rewrite the broker's password file when any process changes a device (coalesced)."""
        while True:
            await self._devices_dirty.wait()
            await asyncio.sleep(0.2)
            self._devices_dirty.clear()
            try:
                await broker.update_credentials(await self._broker_credentials())
            except Exception:
                log.exception('broker credential update failed')

    def _device_changed(self, device_id: UUID) -> None:
        self.directory.invalidate(device_id)
        self._devices_dirty.set()

    def background(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run a coroutine for the life of the platform; it is cancelled at stop."""
        self._tasks.append(asyncio.create_task(work))

    async def ready(self) -> dict[str, bool]:
        database = True
        try:
            await asyncio.wait_for(self.db.ping(), timeout=2)
        except Exception:
            database = False
        return {'database': database and self.writer.healthy, 'broker': self.link.connected}


def _public_host(host: str) -> str:
    if host in ('0.0.0.0', '::', ''):
        with contextlib.suppress(OSError):
            return socket.gethostname()
    return host


def _plain_dsn(db: Database) -> str:
    return db.app.url.set(drivername='postgresql').render_as_string(hide_password=False)
