"""CSV export of a device's stored readings, streamed in keyset pages, each its own short transaction, so memory
stays bounded by one page and no transaction stays open for the length of a download, whatever the range.

Rows come ordered by time, then key. A page is one ordered index range scan per key from the cursor on, merged
(`UNION ALL` of per-key branches under one `ORDER BY … LIMIT`: PostgreSQL's Merge Append), so every page reads
about a page of rows, not the rest of the range. With more than MERGED_KEYS keys the export is ordered by key,
then time (one key after the other), for the same reason.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import text

from app.db import Database
from app.models.schemas import Principal, Value
from app.services.storage.layout import SERIES_OF, points_in_use
from app.services.storage.native_sql import POINTS_TABLE
from app.services.telemetry import check_device, check_range, key_names, stored_value

HEADER = ('ts', 'key', 'value')
PAGE_ROWS = 5000
MERGED_KEYS = 64
COLUMNS = 't.ts, t.key_id, t.value, t.text_value, t.bool_value, t.json_value'
BRANCH = f"""(SELECT {COLUMNS} FROM telemetry t
 WHERE t.tenant_id = :tenant AND t.device_id = :device AND t.key_id = :key{{i}}
   AND t.ts >= :after_ts AND t.ts < :end ORDER BY t.ts LIMIT :branch_limit)"""
# Plain PostgreSQL: straight from the series' primary key range (see `storage/layout.py`).
POINTS_BRANCH = f"""(SELECT t.ts, CAST(:key{{i}} AS integer) AS key_id, t.value, t.text_value, t.bool_value,
        t.json_value
 FROM {POINTS_TABLE} t WHERE t.series_id = {SERIES_OF.format(key='CAST(:key{i} AS integer)')}
   AND t.ts >= :after_ts AND t.ts < :end ORDER BY t.ts LIMIT :branch_limit)"""


def csv_value(value: Value) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, float | int):
        return repr(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(',', ':'), sort_keys=True)


def merged_page_sql(key_count: int, *, points: bool) -> str:
    branch = POINTS_BRANCH if points else BRANCH
    branches = '\nUNION ALL\n'.join(branch.format(i=i) for i in range(key_count))
    return f"""SELECT * FROM ({branches}) t
WHERE (t.ts, t.key_id) > (:after_ts, :after_key) ORDER BY t.ts, t.key_id LIMIT :limit"""


class TelemetryExport:
    def __init__(self, db: Database, *, page_rows: int = PAGE_ROWS) -> None:
        self._db = db
        self._page_rows = page_rows

    async def csv(self, principal: Principal, device_id: UUID, *, start: datetime, end: datetime,
                  keys: Sequence[str] = ()) -> AsyncIterator[bytes]:
        """Check everything (range, device, keys) now, so errors are answered before the first byte; then the
        returned iterator yields the header and `ts,key,value` lines."""
        check_range(start, end)
        async with self._db.tenant(principal.tenant_id) as session:
            await check_device(session, principal, device_id)
            names = await key_names(session, principal, keys)
            points = await points_in_use(session)
        return self._lines(principal, device_id, start=start, end=end, names=names, points=points)

    async def _lines(self, principal: Principal, device_id: UUID, *, start: datetime, end: datetime,
                     names: dict[int, str], points: bool) -> AsyncIterator[bytes]:
        yield _encode([], names, header=True)
        key_ids = sorted(names)
        groups = [key_ids] if len(key_ids) <= MERGED_KEYS else [[key_id] for key_id in key_ids]
        for group in groups:
            if not group:
                continue
            after_ts, after_key = start, -1
            while True:
                rows = await self._page(principal, device_id, group, after_ts=after_ts, after_key=after_key, end=end,
                                        points=points)
                if rows:
                    yield _encode(rows, names, header=False)
                if len(rows) < self._page_rows:
                    break
                after_ts, after_key = rows[-1][0], rows[-1][1]

    async def _page(self, principal: Principal, device_id: UUID, group: list[int], *, after_ts: datetime,
                    after_key: int, end: datetime, points: bool) -> list[Sequence[Any]]:
        params: dict[str, object] = {'tenant': principal.tenant_id, 'device': device_id, 'end': end,
                                     'after_ts': after_ts, 'after_key': after_key, 'limit': self._page_rows,
                                     'branch_limit': self._page_rows + 1}  # + the cursor's own row, dropped
        params.update({f'key{i}': key_id for i, key_id in enumerate(group)})
        async with self._db.tenant(principal.tenant_id) as session:
            return list((await session.execute(text(merged_page_sql(len(group), points=points)), params)).all())


def _encode(rows: Sequence[Sequence[Any]], names: dict[int, str], *, header: bool) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\n')
    if header:
        writer.writerow(HEADER)
    writer.writerows((row[0].isoformat(), names[row[1]], csv_value(stored_value(*row[2:]))) for row in rows)
    return out.getvalue().encode()
