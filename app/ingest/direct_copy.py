"""Telemetry rows copied straight into `telemetry_points` by a role that may insert there and do nothing else.

PostgreSQL refuses `COPY FROM` into a table whose row-level security applies to the user, so the app role copies
into a staging table and moves the rows with `INSERT … SELECT`. That costs about a third of the writer backend's
CPU (`bench/ingest.py`), for a check that is a tautology on this path: the writer sets `app.tenant_id` from the
same device directory entry that gave the rows their tenant.

The *ingest role* (`<app role>_ingest`) is NOLOGIN and BYPASSRLS, holds INSERT on `telemetry_points` and no other
privilege (not even SELECT), and the app role may `SET ROLE` to it. So the writer switches to it for one COPY
per batch and back. Through it one can add rows for any tenant and read none: no more than the app role can
already do by setting `app.tenant_id`, and nothing of what the tenant wall guards (one tenant reading another's
data) opens. Only a superuser may create a BYPASSRLS role: on a server where the owner is not one (a managed
database), or with the TimescaleDB layout (no `telemetry_points` there, and COPY cannot target the `telemetry`
view), the role is not made or not usable and the writer keeps the staging path.

A batch that needs nothing else in its transaction (no raw archive, no idempotency key, no latest values written
with it) goes in through `DirectCopier`: a connection of its own that took the ingest role for good, where the COPY
is a transaction by itself. That is one round trip to PostgreSQL where BEGIN, SAVEPOINT, SET ROLE, COPY, SET ROLE,
RELEASE and COMMIT were seven, and each of those waited for the event loop, busy decoding the next messages.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection

import asyncpg

from app.ingest.copy_rows import POINT_COLUMNS, joined


def ingest_role(app_role: str) -> str:
    return f'{app_role}_ingest'


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# 'p': plain PostgreSQL (`telemetry_points` partitioned); no row: TimescaleDB (`telemetry` a view over a hypertable)
TELEMETRY_LAYOUT = "SELECT relkind::text FROM pg_class WHERE oid = to_regclass('public.telemetry_points')"
USABLE = f"""
SELECT r.rolname FROM pg_roles r
WHERE r.rolname = $1 AND r.rolbypassrls AND pg_has_role(current_user, r.oid, 'MEMBER')
  AND has_table_privilege(r.rolname, to_regclass('public.telemetry_points'), 'INSERT') AND ({TELEMETRY_LAYOUT}) = 'p'"""


async def usable_role(connection: asyncpg.Connection) -> str | None:
    """The ingest role this connection may switch to for a direct COPY, or None (then: the staging path)."""
    name: str | None = await connection.fetchval(USABLE, ingest_role(await connection.fetchval('SELECT current_user')))
    return name


ROLE_GONE = (asyncpg.InsufficientPrivilegeError, asyncpg.InvalidParameterValueError, asyncpg.FeatureNotSupportedError)


class RoleUnusable(Exception):
    """The ingest role was changed, dropped or lost its grant: copy through the staging table instead."""


class DirectCopier:
    """One COPY per batch, in autocommit, on a connection that switched to the ingest role for good."""

    def __init__(self, dsn: str, role: str) -> None:
        self._dsn = dsn
        self.role = role
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
            await connection.copy_to_table('telemetry_points', schema_name='public', source=joined(copies),
                                           columns=POINT_COLUMNS, format='binary')
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
