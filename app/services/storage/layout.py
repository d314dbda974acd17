"""Which telemetry layout the database has, for the few queries that read rows in time order.

Most readers use the `telemetry` view and do not care. A query that wants a series' rows in time order with a
`LIMIT` (an export page, the newest row) must name the series on plain PostgreSQL: through the view's join the
planner cannot scan the primary key `(series_id, ts)` of `telemetry_points` (a key's series) or `telemetry_rows` (the
device's series, a message's numbers) in order, and sorts every row of the range instead (an export of 1M rows: 40 s
against 7). With TimescaleDB the view is a plain filter over the hypertable and is ordered as it is.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.services.storage.native_sql import ROWS_TABLE

POINTS_IN_USE_SQL = f"to_regclass('public.{ROWS_TABLE}') IS NOT NULL"  # an expression, for queries that need it too
POINTS_IN_USE = text(f'SELECT {POINTS_IN_USE_SQL}')
# The series of (:tenant, :device, a key id parameter), an InitPlan the planner then uses as an index bound.
SERIES_OF = "(SELECT id FROM telemetry_series WHERE tenant_id = :tenant AND device_id = :device AND key_id = {key})"


async def points_in_use(session: AsyncSession) -> bool:
    """Plain PostgreSQL (`telemetry_points` and `telemetry_rows` under the view), else TimescaleDB."""
    return bool(await session.scalar(POINTS_IN_USE))
