"""One page of a device's readings in (time, key) order from a cursor: the CSV export's pages and the API's raw pages.

A page is one ordered index range scan per key from the cursor on, merged (`UNION ALL` of per-key branches under
one `ORDER BY … LIMIT`: PostgreSQL's Merge Append), so a page reads about a page of rows, however long the range.
Up to MERGED_KEYS keys at once (a branch per key), of those the device has sent (`device_keys`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.services.storage.layout import POINTS_IN_USE_SQL, SERIES_OF
from app.services.storage.native_sql import DEVICE_KEY, POINTS_TABLE, ROWS_TABLE

MERGED_KEYS = 64
DEVICE_KEYS = f"""
SELECT {POINTS_IN_USE_SQL}, array(
    SELECT key_id FROM telemetry_series
    WHERE tenant_id = :tenant AND device_id = :device AND key_id = ANY(CAST(:keys AS integer[])))"""
COLUMNS = 't.ts, t.key_id, t.value, t.text_value, t.bool_value, t.json_value'
BRANCH = f"""(SELECT {COLUMNS} FROM telemetry t
 WHERE t.tenant_id = :tenant AND t.device_id = :device AND t.key_id = :key{{i}}
   AND t.ts >= :after_ts AND t.ts < :end ORDER BY t.ts LIMIT :branch_limit)"""
# Plain PostgreSQL: straight from the series' primary key range (see `storage/layout.py`): a branch per key of its
# rows in `telemetry_points` (readings that are not numbers, and numbers stored before `telemetry_rows` or at a
# timestamp whose row held other keys), and one of the device's rows of numbers, unnested (ordered by the index, then
# by key within a row: an incremental sort).
ROWS_BRANCH = f"""(SELECT t.ts, u.key_id, u.value, NULL::text AS text_value, NULL::boolean AS bool_value,
        NULL::jsonb AS json_value
 FROM {ROWS_TABLE} t CROSS JOIN LATERAL unnest(t.key_ids, t.vals) AS u(key_id, value)
 WHERE t.series_id = {SERIES_OF.format(key=DEVICE_KEY)}
   AND t.ts >= :after_ts AND t.ts < :end AND (t.ts, u.key_id) > (:after_ts, :after_key)
   AND u.key_id = ANY(CAST(:keys AS integer[]))
 ORDER BY t.ts, u.key_id LIMIT :limit)"""
POINTS_BRANCH = f"""(SELECT t.ts, CAST(:key{{i}} AS integer) AS key_id, t.value, t.text_value, t.bool_value,
        t.json_value
 FROM {POINTS_TABLE} t WHERE t.series_id = {SERIES_OF.format(key='CAST(:key{i} AS integer)')}
   AND t.ts >= :after_ts AND t.ts < :end ORDER BY t.ts LIMIT :branch_limit)"""


async def device_keys(session: AsyncSession, *, tenant_id: UUID, device_id: UUID,
                      key_ids: list[int]) -> tuple[bool, list[int]]:
    """The layout (True: plain PostgreSQL, `storage/layout.py`) and, of `key_ids`, in order, the keys the device has
    sent (its series); with TimescaleDB all of them (a row added through the view there has no series)."""
    points, sent = (await session.execute(text(DEVICE_KEYS), {
        'tenant': tenant_id, 'device': device_id, 'keys': key_ids})).one()
    return bool(points), sorted(sent if points else key_ids)


def merged_page_sql(key_count: int, *, points: bool) -> str:
    branch = POINTS_BRANCH if points else BRANCH
    branches = '\nUNION ALL\n'.join([branch.format(i=i) for i in range(key_count)] + ([ROWS_BRANCH] if points else []))
    return f"""SELECT * FROM ({branches}) t
WHERE (t.ts, t.key_id) > (:after_ts, :after_key) ORDER BY t.ts, t.key_id LIMIT :limit"""


async def merged_page(session: AsyncSession, *, tenant_id: UUID, device_id: UUID, key_ids: list[int],
                      after_ts: datetime, after_key: int, end: datetime, limit: int,
                      points: bool) -> list[Sequence[Any]]:
    """Rows `(ts, key_id, value, text_value, bool_value, json_value)` after the cursor `(after_ts, after_key)`
    (`after_key` -1: from `after_ts` on, inclusive) and before `end`, at most `limit`."""
    params: dict[str, object] = {'tenant': tenant_id, 'device': device_id, 'end': end, 'after_ts': after_ts,
                                 'after_key': after_key, 'limit': limit,
                                 'branch_limit': limit + 1}  # + the cursor's own row, dropped
    params.update({f'key{i}': key_id for i, key_id in enumerate(key_ids)})
    if points:
        params['keys'] = key_ids
    return list((await session.execute(text(merged_page_sql(len(key_ids), points=points)), params)).all())
