"""Telemetry rows copied straight into their table by a role that may insert there and do nothing else.

PostgreSQL refuses `COPY FROM` into a table whose row-level security applies to the user, so the app role copies
into a staging table and moves the rows with `INSERT … SELECT`. That costs about a third of the writer backend's
CPU (`bench/ingest.py`), for a check that is a tautology on this path: the writer sets `app.tenant_id` from the
same device directory entry that gave the rows their tenant.

The *ingest role* (`<app role>_ingest`) is NOLOGIN and BYPASSRLS, holds INSERT on `telemetry_rows` and
`telemetry_points` (with
TimescaleDB: USAGE on `gito_ts` and INSERT on its hypertable, which carries no row-level security there) and no
other privilege (not even SELECT), and the app role (NOINHERIT) may `SET ROLE` to it. So the writer switches to it
for one COPY per batch and back. Through it one can add rows for any tenant and read none: no more than the app
role can already do by setting `app.tenant_id`, and nothing of what the tenant wall guards (one tenant reading
another's data) opens. Only a superuser may create a BYPASSRLS role: on a server where the owner is not one (a
managed database) the role is not made or not usable and the writer keeps the staging path.

A batch that needs nothing else in its transaction (no raw archive, no idempotency key, no latest values written
with it) goes in through `DirectCopier`: a connection of its own that took the ingest role for good, where the COPY
is a transaction by itself. That is one round trip to PostgreSQL where BEGIN, SAVEPOINT, SET ROLE, COPY, SET ROLE,
RELEASE and COMMIT were seven, and each of those waited for the event loop, busy decoding the next messages.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection

import asyncpg

from app.ingest.copy_rows import COLUMNS, POINT_COLUMNS, ROW_COLUMNS, joined

log = logging.getLogger(__name__)


def ingest_role(app_role: str) -> str:
    return f'{app_role}_ingest'


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# 'p': plain PostgreSQL (`telemetry_rows` and `telemetry_points` partitioned); no row: TimescaleDB (`telemetry` a
# view over a hypertable)
TELEMETRY_LAYOUT = "SELECT relkind::text FROM pg_class WHERE oid = to_regclass('public.telemetry_rows')"
# Where a direct COPY goes, per layout (True: plain PostgreSQL): `telemetry_rows` (a message's numbers in the device's
# series), or the TimescaleDB hypertable with device and key (it has no row-level security: the views in `public`
# wall tenants off). On plain PostgreSQL readings that are not numbers go to `POINTS_TARGET`.
COPY_TARGETS: dict[bool, tuple[str, str, tuple[str, ...]]] = {
    True: ('public', 'telemetry_rows', ROW_COLUMNS), False: ('gito_ts', 'telemetry', COLUMNS)}
POINTS_TARGET = ('public', 'telemetry_points', POINT_COLUMNS)
# From the catalog: `to_regclass` would need USAGE on `gito_ts`, which the app role does not have.
_TARGET_NAMES = ', '.join(f"('{schema}', '{table}')" for schema, table, _ in COPY_TARGETS.values())
COPY_RELATION = f"""(SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE (n.nspname, c.relname) IN ({_TARGET_NAMES}) LIMIT 1)"""
TS_SCHEMA = f"(SELECT oid FROM pg_namespace WHERE nspname = '{COPY_TARGETS[False][0]}')"
USABLE = f"""
SELECT r.rolname FROM pg_roles r
WHERE r.rolname = $1 AND r.rolbypassrls AND pg_has_role(current_user, r.oid, 'MEMBER')
  AND has_table_privilege(r.rolname, {COPY_RELATION}, 'INSERT')
  AND ({TS_SCHEMA} IS NULL OR has_schema_privilege(r.rolname, {TS_SCHEMA}, 'USAGE'))
  AND (to_regclass('public.{POINTS_TARGET[1]}') IS NULL
       OR has_table_privilege(r.rolname, 'public.{POINTS_TARGET[1]}', 'INSERT'))"""


async def usable_role(connection: asyncpg.Connection) -> str | None:
    """The ingest role this connection may switch to for a direct COPY, or None (then: the staging path)."""
    try:
        name: str | None = await connection.fetchval(
            USABLE, ingest_role(await connection.fetchval('SELECT current_user')))
    except asyncpg.PostgresError as error:  # the staging path works without the role: never hold ingest up for it
        log.warning('ingest role not usable, copying through the staging table', extra={'error': str(error)})
        return None
    return name


ROLE_GONE = (asyncpg.InsufficientPrivilegeError, asyncpg.InvalidParameterValueError, asyncpg.FeatureNotSupportedError)


class RoleUnusable(Exception):
    """The ingest role was changed, dropped or lost its grant: copy through the staging table instead."""


class DirectCopier:
    """One COPY per batch, in autocommit, on a connection that switched to the ingest role for good (batches of
    numbers only, on plain PostgreSQL: one with other readings copies into two tables, in a transaction)."""

    def __init__(self, dsn: str, role: str, *, points: bool = True) -> None:
        self._dsn = dsn
        self.role = role
        self._schema, self._table, self._columns = COPY_TARGETS[points]
        self._connection: asyncpg.Connection | None = None

    async def copy(self, copies: Collection[bytearray]) -> bool:
        """Every tenant's rows committed together; False, with nothing written, when a row is a duplicate."""
        connection = self._connection
        if connection is None or connection.is_closed():
            connection = await asyncpg.connect(self._dsn, timeout=5)
            try:
                await connection.execute(f'SET ROLE {quote_ident(self.role)}')
            except ROLE_GONE as error:
                await connection.close()
                raise RoleUnusable(str(error)) from error
            self._connection = connection
        try:
            await connection.copy_to_table(self._table, schema_name=self._schema, source=joined(copies),
                                           columns=self._columns, format='binary')
        except asyncpg.UniqueViolationError:
            return False
        except ROLE_GONE as error:
            await self.close()
            raise RoleUnusable(str(error)) from error
        return True

    def terminate(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.terminate()
        self._connection = None

    async def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
        self._connection = None
