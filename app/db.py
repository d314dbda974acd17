"""Engines, migrations and tenant-scoped sessions.

Two roles: the *owner* (the role in DATABASE_URL) runs migrations and the few explicit cross-tenant system
paths (onboarding, login look-up, device credential directory, presence sweep); the *app role* owns nothing,
cannot bypass row-level security, and serves every tenant request with `app.tenant_id` set per transaction.
The batch writer may switch to a third, the *ingest role*, which can only add telemetry rows
(`app/ingest/direct_copy.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import asyncpg
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.ingest.direct_copy import COPY_TARGETS, POINTS_TARGET, TELEMETRY_LAYOUT, ingest_role, quote_ident

log = logging.getLogger(__name__)

MIGRATION_LOCK_ID = 0x6710_0001
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / 'migrations'
APP_GRANTS = ('tenants', 'users', 'devices', 'telemetry_keys', 'telemetry', 'latest_values', 'sessions',
              'api_tokens', 'audit_log', 'notification_channels', 'notification_deliveries', 'notification_attempts',
              'notification_settings', 'rules', 'alarms', 'alarm_events',
              'maintenance_windows', 'ingest_keys', 'telemetry_1m', 'telemetry_1h', 'storage_settings',
              'account_links', 'raw_messages', 'raw_archive_settings', 'telemetry_series')
LAYOUT_GRANTS = ('telemetry_points', 'telemetry_rows')  # plain PostgreSQL only (`app/services/storage/native_sql.py`)
LAYOUT_READS = ('telemetry_rows_since',)  # plain PostgreSQL only, read by the batch writer
PROCESS_GRANTS = ('ingest_instances',)  # not tenant data: one row per running process (`app/ingest/state_mark.py`)


def async_url(url: str) -> str:
    """Accept the usual `postgresql://` spelling and pick the asyncpg driver."""
    parsed = make_url(url)
    if parsed.drivername in ('postgresql', 'postgres', 'postgresql+psycopg', 'postgresql+psycopg2'):
        parsed = parsed.set(drivername='postgresql+asyncpg')
    return parsed.render_as_string(hide_password=False)


def app_role_url(owner_url: str, *, role: str, password: str) -> str:
    return make_url(async_url(owner_url)).set(username=role, password=password).render_as_string(hide_password=False)


def redact(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@dataclass(frozen=True)
class Database:
    """The two engines of the process and their session factories."""

    owner: AsyncEngine
    app: AsyncEngine

    @classmethod
    def connect(cls, owner_url: str, *, role: str, password: str, pool_size: int = 10) -> Database:
        owner = create_async_engine(async_url(owner_url), pool_size=4, max_overflow=4, pool_pre_ping=True)
        app = create_async_engine(
            app_role_url(owner_url, role=role, password=password),
            pool_size=pool_size, max_overflow=10, pool_pre_ping=True,
        )
        return cls(owner=owner, app=app)

    @asynccontextmanager
    async def tenant(self, tenant_id: UUID) -> AsyncIterator[AsyncSession]:
        """One transaction as the app role, seeing only `tenant_id`'s rows."""
        async with AsyncSession(self.app, expire_on_commit=False) as session, session.begin():
            await session.execute(text("SELECT set_config('app.tenant_id', :tenant, true)"), {'tenant': str(tenant_id)})
            yield session

    @asynccontextmanager
    async def system(self) -> AsyncIterator[AsyncSession]:
        """One transaction as the owner: for the explicit cross-tenant paths only."""
        async with AsyncSession(self.owner, expire_on_commit=False) as session, session.begin():
            yield session

    def system_sessions(self) -> async_sessionmaker[AsyncSession]:
        return async_sessionmaker(self.owner, expire_on_commit=False)

    async def ping(self) -> None:
        async with self.app.connect() as connection:
            await connection.execute(text('SELECT 1'))

    async def dispose(self) -> None:
        await self.owner.dispose()
        await self.app.dispose()


def _upgrade(connection: Connection) -> None:
    config = AlembicConfig()
    config.set_main_option('script_location', str(MIGRATIONS_DIR))
    config.attributes['connection'] = connection
    command.upgrade(config, 'heads')  # feature branches of the schema may each add a head


async def migrate(owner_url: str, *, role: str, password: str) -> None:
    """Bring the schema to head and (re)create the app role; safe to run from several instances at once."""
    engine = create_async_engine(async_url(owner_url), pool_size=1)
    try:
        async with engine.connect() as connection:
            await connection.execute(text('SELECT pg_advisory_lock(:id)'), {'id': MIGRATION_LOCK_ID})
            try:
                await connection.commit()
                await _ensure_app_role(connection, role=role, password=password)
                await connection.commit()
                await connection.run_sync(_upgrade)
                await connection.commit()
                await _grant(connection, role=role)
                await connection.commit()
                await _ensure_ingest_role(connection, app_role=role)
                await connection.commit()
            finally:
                await connection.rollback()  # after a failure: the unlock must not hide the error
                await connection.execute(text('SELECT pg_advisory_unlock(:id)'), {'id': MIGRATION_LOCK_ID})
                await connection.commit()
    finally:
        await engine.dispose()
    log.info('database migrated', extra={'database': redact(owner_url)})


async def _ensure_app_role(connection: AsyncConnection, *, role: str, password: str) -> None:
    """NOINHERIT: the ingest role's privileges (on TimescaleDB, its schema and hypertable) are the app role's only
    after an explicit `SET ROLE`, as the batch writer does, never in the app's ordinary queries."""
    exists = await connection.scalar(text('SELECT 1 FROM pg_roles WHERE rolname = :role'), {'role': role})
    quoted = quote_ident(role)
    literal = password.replace("'", "''")
    if not exists:
        # Role creation races between instances and test databases sharing a cluster: tolerate the loser, which
        # PostgreSQL tells either that the role exists or, when both inserted at once, of the unique index.
        await connection.execute(text(f"""
            DO $$ BEGIN
                CREATE ROLE {quoted} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT
                    PASSWORD '{literal}';
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END $$"""))
    else:
        # The role is cluster-wide but the migration lock is per database: two databases migrating at once (test
        # workers, tenants of one server) race here, and PostgreSQL refuses the loser ("tuple concurrently
        # updated", internal_error). The winner set the same attributes and password (from the same secret).
        await connection.execute(text(f"""
            DO $$ BEGIN
                ALTER ROLE {quoted} LOGIN NOBYPASSRLS NOINHERIT PASSWORD '{literal}';
            EXCEPTION WHEN internal_error THEN NULL;
            END $$"""))


async def _grant(connection: AsyncConnection, *, role: str) -> None:
    quoted = quote_ident(role)
    database = await connection.scalar(text('SELECT current_database()'))
    await connection.execute(text(f'GRANT CONNECT ON DATABASE {quote_ident(str(database))} TO {quoted}'))
    await connection.execute(text(f'GRANT USAGE ON SCHEMA public TO {quoted}'))
    for table in (*APP_GRANTS, *PROCESS_GRANTS):
        await connection.execute(text(f'GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {quoted}'))
    layout = [(table, 'SELECT, INSERT, UPDATE, DELETE') for table in LAYOUT_GRANTS]
    for table, privileges in layout + [(table, 'SELECT') for table in LAYOUT_READS]:
        if await connection.scalar(text('SELECT to_regclass(:name) IS NOT NULL'), {'name': f'public.{table}'}):
            await connection.execute(text(f'GRANT {privileges} ON {table} TO {quoted}'))
    await connection.execute(text(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}'))


async def _ensure_ingest_role(connection: AsyncConnection, *, app_role: str) -> None:
    """Create (or keep) the ingest role where the server and the layout allow it (`app/ingest/direct_copy.py`)."""
    points = await connection.scalar(text(TELEMETRY_LAYOUT)) == 'p'
    role = quote_ident(ingest_role(app_role))
    app = quote_ident(app_role)
    # Roles are cluster-wide and test databases or instances migrate at once: a loser of the creation race hears
    # of the role or of the unique index; a loser of the membership grant of a concurrent update.
    await connection.execute(text(f"""
        DO $$ BEGIN
            BEGIN
                CREATE ROLE {role} NOLOGIN NOSUPERUSER BYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END;
            BEGIN
                GRANT {role} TO {app};
            EXCEPTION WHEN internal_error THEN NULL;
            END;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'no ingest role: %', SQLERRM;
        END $$"""))
    usable = await connection.scalar(text("""
        SELECT rolbypassrls AND pg_has_role(:app, oid, 'MEMBER') FROM pg_roles WHERE rolname = :role"""),
        {'app': app_role, 'role': ingest_role(app_role)})
    if not usable:
        log.warning('ingest copies through a staging table: the database owner may not create a BYPASSRLS role')
        return
    await connection.execute(text(f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}'))
    await connection.execute(text(f'GRANT USAGE ON SCHEMA public TO {role}'))
    schema, table, _ = COPY_TARGETS[points]
    if schema != 'public':
        await connection.execute(text(f'REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}'))
    await connection.execute(text(f'GRANT USAGE ON SCHEMA {schema} TO {role}'))
    await connection.execute(text(f'GRANT INSERT ON {schema}.{table} TO {role}'))
    if points:
        await connection.execute(text(f'GRANT INSERT ON {POINTS_TARGET[0]}.{POINTS_TARGET[1]} TO {role}'))


async def listen_for_ids(
    dsn: str, channel: str, on_id: Callable[[UUID], None], *, on_connect: Callable[[], None] | None = None,
) -> None:
    """LISTEN on `channel` (payload: a uuid) for as long as the task runs, reconnecting when the link drops.

    PostgreSQL NOTIFY reaches every instance and the CLI's changes too, with or without Redis. `on_connect`
    runs after each (re)connection, to catch up on what changed while nobody listened.
    """

    def received(_connection: object, _pid: int, _channel: str, payload: str) -> None:
        with contextlib.suppress(ValueError):
            on_id(UUID(payload))

    while True:
        try:
            connection = await asyncpg.connect(dsn, timeout=5)
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
            try:
                await connection.add_listener(channel, received)
                if on_connect is not None:
                    on_connect()
                await lost.wait()
            finally:
                with contextlib.suppress(Exception):
                    await connection.close()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning('notification listener reconnecting', extra={'channel': channel, 'error': type(error).__name__})
            await asyncio.sleep(2)
