"""CSV export of a device's stored readings, streamed in keyset pages, each its own short transaction, so memory
stays bounded by one page and no transaction stays open for the length of a download, whatever the range.

Rows come ordered by time, then key, a page at a time (`telemetry_pages.py`: each page reads about a page of rows,
not the rest of the range). With more than MERGED_KEYS keys the export is ordered by key, then time (one key after
the other), for the same reason.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from app.db import Database
from app.models.schemas import Principal, Value
from app.services.telemetry import check_device, check_range, key_names, stored_value
from app.services.telemetry_pages import MERGED_KEYS, device_keys, merged_page

HEADER = ('ts', 'key', 'value')
PAGE_ROWS = 5000


def csv_value(value: Value) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, float | int):
        return repr(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(',', ':'), sort_keys=True)


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
            points, key_ids = await device_keys(session, tenant_id=principal.tenant_id, device_id=device_id,
                                                key_ids=list(names))
        return self._lines(principal, device_id, start=start, end=end, names=names, key_ids=key_ids, points=points)

    async def _lines(self, principal: Principal, device_id: UUID, *, start: datetime, end: datetime,
                     names: dict[int, str], key_ids: list[int], points: bool) -> AsyncIterator[bytes]:
        yield _encode([], names, header=True)
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
        async with self._db.tenant(principal.tenant_id) as session:
            return await merged_page(session, tenant_id=principal.tenant_id, device_id=device_id, key_ids=group,
                                     after_ts=after_ts, after_key=after_key, end=end, limit=self._page_rows,
                                     points=points)


def _encode(rows: Sequence[Sequence[Any]], names: dict[int, str], *, header: bool) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\n')
    if header:
        writer.writerow(HEADER)
    writer.writerows((row[0].isoformat(), names[row[1]], csv_value(stored_value(*row[2:]))) for row in rows)
    return out.getvalue().encode()
