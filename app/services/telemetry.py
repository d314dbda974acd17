"""Reading stored telemetry: latest values, raw pages, buckets, and chart series capped in points."""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.models.schemas import (
    AggregateFunction,
    AggregatePoint,
    LatestValuePublic,
    Principal,
    Series,
    TelemetryPage,
    TelemetryPoint,
    Value,
)
from app.services.errors import InvalidInput, NotFound
from app.services.telemetry_pages import MERGED_KEYS, device_keys, merged_page
from app.services.telemetry_sources import (
    ORIGIN,
    Source,
    dense_raw_plan,
    plan,
    rolled_sql,
    rolled_until_sql,
    rollup_for_bucket,
    tail_sql,
)

MAX_PAGE = 10_000
CHART_POINTS = 2_000
TAIL_WINDOW = timedelta(days=1)  # how far back raw rows fill in for a rollup that has not caught up
_VALUE_COLUMNS = 'value, text_value, bool_value, json_value'
_AGGREGATES: dict[str, str] = {
    'avg': 'avg(t.value)', 'min': 'min(t.value)', 'max': 'max(t.value)',
    'last': 'last_value', 'count': 'count(*)::double precision',
}


def stored_value(value: float | None, text_value: str | None, bool_value: bool | None, json_value: Any) -> Value:
    if value is not None:
        return value
    if bool_value is not None:
        return bool_value
    if text_value is not None:
        return text_value
    return json_value  # type: ignore[no-any-return]


Held = dict[UUID, dict[str, tuple[datetime, Any]]]  # per device, key → (ts, value)
# Latest values this process holds and has not yet written, of committed batches, for a tenant's devices, waiting
# at most the seconds given for a batch of theirs being committed (`BatchWriter.unwritten_latest`).
Unwritten = Callable[[UUID, list[UUID], float], Awaitable[Held]]


async def _nothing_unwritten(_tenant: UUID, _devices: list[UUID], _wait_s: float) -> Held:
    return {}


def _with_unwritten(stored: list[LatestValuePublic], unwritten: dict[str, tuple[datetime, Any]],
                    ) -> list[LatestValuePublic]:
    """Stored latest values with the unwritten ones merged over them (newest timestamp per key), by key name."""
    if not unwritten:
        return stored
    values = {value.key: value for value in stored}
    for key, (ts, value) in unwritten.items():
        held = values.get(key)
        if held is None or held.ts < ts:
            values[key] = LatestValuePublic(key=key, ts=ts, value=value)
    return sorted(values.values(), key=lambda value: value.key)


class TelemetryService:
    def __init__(self, db: Database) -> None:
        self._db = db
        # `latest_values` stands up to a flush interval behind under load (`app/ingest/state_flush.py`): the batch
        # writer's unwritten values are merged over it (newest timestamp wins); other instances' show once written
        self.unwritten: Unwritten = _nothing_unwritten

    async def _merged(self, tenant_id: UUID, device_ids: list[UUID],
                      stored: Callable[[], Awaitable[dict[UUID, list[LatestValuePublic]]]],
                      ) -> dict[UUID, list[LatestValuePublic]]:
        """Stored latest values with what this process holds unwritten merged over them: read before and after the
        table (a flush finishing meanwhile moves values from one to the other), after waiting for a batch of these
        devices being committed (up to a second: the reader sees a value once its history holds it)."""
        before = await self.unwritten(tenant_id, device_ids, 1.0)
        values = await stored()
        after = await self.unwritten(tenant_id, device_ids, 0.0)
        return {device_id: _with_unwritten(_with_unwritten(held, before.get(device_id, {})), after.get(device_id, {}))
                for device_id, held in values.items()}

    async def latest(self, principal: Principal, device_id: UUID) -> list[LatestValuePublic]:
        async with self._db.tenant(principal.tenant_id) as session:
            await check_device(session, principal, device_id)  # before waiting on anything of the device's
        merged = await self._merged(principal.tenant_id, [device_id],
                                    lambda: self._stored_latest_of(principal, [device_id]))
        return merged[device_id]

    async def latest_for_devices(
        self, principal: Principal, device_ids: Sequence[UUID],
    ) -> dict[UUID, list[LatestValuePublic]]:
        """Latest values of many devices in one query (the fleet page, its own devices); unknown or foreign ids give
        nothing."""
        if not device_ids:
            return {}
        return await self._merged(principal.tenant_id, list(device_ids),
                                  lambda: self._stored_latest_of(principal, device_ids))

    async def _stored_latest_of(self, principal: Principal, device_ids: Sequence[UUID],
                                ) -> dict[UUID, list[LatestValuePublic]]:
        result: dict[UUID, list[LatestValuePublic]] = {device_id: [] for device_id in device_ids}
        async with self._db.tenant(principal.tenant_id) as session:
            rows = await session.execute(text(f"""
                SELECT l.device_id, k.name, l.ts, l.{_VALUE_COLUMNS.replace(', ', ', l.')}
                FROM latest_values l JOIN telemetry_keys k ON k.id = l.key_id
                WHERE l.tenant_id = :tenant AND l.device_id = ANY(CAST(:devices AS uuid[]))
                ORDER BY l.device_id, k.name"""),
                {'tenant': principal.tenant_id, 'devices': list(device_ids)})
            for row in rows:
                result[row[0]].append(LatestValuePublic(key=row[1], ts=row[2], value=stored_value(*row[3:])))
        return result

    async def keys(self, principal: Principal, device_id: UUID) -> list[str]:
        return [value.key for value in await self.latest(principal, device_id)]

    async def raw(
        self, principal: Principal, device_id: UUID, *, start: datetime, end: datetime,
        keys: Sequence[str] = (), limit: int = 1000, cursor: str | None = None,
    ) -> TelemetryPage:
        check_range(start, end)
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f'limit must be between 1 and {MAX_PAGE}.', field='limit')
        after_ts, after_key = _decode_cursor(cursor) if cursor else (None, None)
        async with self._db.tenant(principal.tenant_id) as session:
            await check_device(session, principal, device_id)
            names = await key_names(session, principal, keys)
            points, key_ids = await device_keys(session, tenant_id=principal.tenant_id, device_id=device_id,
                                                key_ids=list(names))
            if not key_ids:
                return TelemetryPage(points=[], next_cursor=None)
            if len(key_ids) <= MERGED_KEYS:  # a page's worth of rows read, however long the range
                if after_ts is None or after_key is None or after_ts < start:
                    after_ts, after_key = start, -1
                merged = await merged_page(
                    session, tenant_id=principal.tenant_id, device_id=device_id, key_ids=key_ids,
                    after_ts=after_ts, after_key=after_key, end=end, limit=limit + 1, points=points)
                return _page([(names[r[1]], r[0], r[1], *r[2:]) for r in merged], limit)
            rows = (await session.execute(text(f"""
                SELECT k.name, t.ts, t.key_id, t.{_VALUE_COLUMNS.replace(', ', ', t.')}
                FROM telemetry t JOIN telemetry_keys k ON k.id = t.key_id
                WHERE t.tenant_id = :tenant AND t.device_id = :device AND t.ts >= :start AND t.ts < :end
                  AND (cardinality(CAST(:keys AS text[])) = 0 OR k.name = ANY(CAST(:keys AS text[])))
                  AND (CAST(:after_ts AS timestamptz) IS NULL OR (t.ts, t.key_id) > (:after_ts, :after_key))
                ORDER BY t.ts, t.key_id LIMIT :limit"""), {
                'tenant': principal.tenant_id, 'device': device_id, 'start': start, 'end': end, 'keys': list(keys),
                'after_ts': after_ts, 'after_key': after_key, 'limit': limit + 1,
            })).all()
        return _page(rows, limit)

    async def aggregate(
        self, principal: Principal, device_id: UUID, *, start: datetime, end: datetime, bucket_s: int,
        function: AggregateFunction, keys: Sequence[str] = (),
    ) -> list[AggregatePoint]:
        check_range(start, end)
        if bucket_s < 1:
            raise InvalidInput('bucket must be at least 1 second.', field='bucket')
        if (end - start).total_seconds() / bucket_s > 100_000:
            raise InvalidInput('Too many buckets: choose a wider bucket or a shorter range.', field='bucket')
        if function not in _AGGREGATES:
            raise InvalidInput(f'function must be one of {", ".join(_AGGREGATES)}.', field='function')
        source = rollup_for_bucket(start, end, bucket_s)
        async with self._db.tenant(principal.tenant_id) as session:
            await check_device(session, principal, device_id)
            if source != 'raw' and function != 'count':  # rollups count numeric values only
                names = await key_names(session, principal, keys)
                rolled = await rollup_rows(session, source, function, origin=':start', params={
                    'tenant': principal.tenant_id, 'device': device_id, 'start': start, 'end': end,
                    'keys': list(names), 'bucket': bucket_s})
                points = [AggregatePoint(key=names[r[0]], bucket=r[1], value=r[2]) for r in rolled]
                return sorted(points, key=lambda p: (p.key, p.bucket))
            expression = _AGGREGATES[function]
            if function == 'last':
                expression = '(array_agg(t.value ORDER BY t.ts DESC) FILTER (WHERE t.value IS NOT NULL))[1]'
            rows = (await session.execute(text(f"""
                SELECT k.name, date_bin(make_interval(secs => :bucket), t.ts, :start) AS bucket, {expression}
                FROM telemetry t JOIN telemetry_keys k ON k.id = t.key_id
                WHERE t.tenant_id = :tenant AND t.device_id = :device AND t.ts >= :start AND t.ts < :end
                  AND (cardinality(CAST(:keys AS text[])) = 0 OR k.name = ANY(CAST(:keys AS text[])))
                GROUP BY 1, 2 ORDER BY 1, 2"""), {
                'tenant': principal.tenant_id, 'device': device_id, 'start': start, 'end': end,
                'keys': list(keys), 'bucket': bucket_s,
            })).all()
            return [AggregatePoint(key=r[0], bucket=r[1], value=r[2]) for r in rows]

    async def chart(
        self, principal: Principal, device_id: UUID, *, start: datetime, end: datetime,
        keys: Sequence[str] = (), max_points: int = CHART_POINTS,
    ) -> list[Series]:
        """Numeric series for a chart, never more than `max_points` points per key: raw points when few enough,
        else averages over buckets from raw rows, the 1-minute or the 1-hour rollup (see telemetry_sources)."""
        check_range(start, end)
        chosen = plan(start, end, max_points)
        async with self._db.tenant(principal.tenant_id) as session:
            await check_device(session, principal, device_id)
            names = await key_names(session, principal, keys)
            if not names:
                return []
            params = {'tenant': principal.tenant_id, 'device': device_id, 'start': start, 'end': end,
                      'keys': list(names)}
            if chosen.source != 'raw':
                rolled = await rollup_rows(session, chosen.source, 'avg', params={**params, 'bucket': chosen.bucket_s})
                return _series(names, rolled, bucket_s=chosen.bucket_s, source=chosen.source)
            where = """t.tenant_id = :tenant AND t.device_id = :device AND t.ts >= :start AND t.ts < :end
                AND t.value IS NOT NULL AND t.key_id = ANY(CAST(:keys AS integer[]))"""
            counts: dict[int, int] = dict((await session.execute(text(f"""
                SELECT t.key_id, count(*) FROM telemetry t WHERE {where} GROUP BY 1"""), params)).all())
            if counts and max(counts.values()) <= max_points:
                rows = (await session.execute(text(f"""
                    SELECT t.key_id, t.ts, t.value FROM telemetry t WHERE {where} ORDER BY 1, 2"""), params)).all()
                return _series(names, rows, bucket_s=0, source='raw')
            chosen = dense_raw_plan(start, end, max_points)
            if chosen.source != 'raw':
                rolled = await rollup_rows(session, chosen.source, 'avg', params={**params, 'bucket': chosen.bucket_s})
                return _series(names, rolled, bucket_s=chosen.bucket_s, source=chosen.source)
            rows = (await session.execute(text(f"""
                SELECT t.key_id, date_bin(make_interval(secs => :bucket), t.ts, :start), avg(t.value)
                FROM telemetry t WHERE {where} GROUP BY 1, 2 ORDER BY 1, 2"""),
                {**params, 'bucket': chosen.bucket_s})).all()
            return _series(names, rows, bucket_s=chosen.bucket_s, source='raw')


async def rollup_rows(session: AsyncSession, source: Source, function: str, *, params: dict[str, object],
                      origin: str = ORIGIN) -> list[Sequence[Any]]:
    """Rollup buckets, then per key the buckets after the rollup's newest row from raw rows (at most a day)."""
    rows: list[Sequence[Any]] = list((await session.execute(text(rolled_sql(source, function, origin=origin)),
                                                           params)).all())
    have = {(row[0], row[1]) for row in rows}
    until = (await session.execute(text(rolled_until_sql(source)), params)).all()
    start, end = params['start'], params['end']
    assert isinstance(start, datetime)
    assert isinstance(end, datetime)
    for key_id, rolled_until in until:
        after = max(rolled_until or start, end - TAIL_WINDOW)
        tail = (await session.execute(text(tail_sql(function, origin=origin)),
                                      {**params, 'key': key_id, 'after': after})).all()
        rows += [row for row in tail if (row[0], row[1]) not in have]
    return sorted(rows, key=lambda row: (row[0], row[1]))


async def key_names(session: AsyncSession, principal: Principal, keys: Sequence[str]) -> dict[int, str]:
    rows = await session.execute(text("""
        SELECT id, name FROM telemetry_keys
        WHERE tenant_id = :tenant AND (cardinality(CAST(:keys AS text[])) = 0 OR name = ANY(CAST(:keys AS text[])))"""),
        {'tenant': principal.tenant_id, 'keys': list(keys)})
    return {int(key_id): str(name) for key_id, name in rows}


def _page(rows: Sequence[Sequence[Any]], limit: int) -> TelemetryPage:
    """Rows of (key name, ts, key id, value columns…), one more than `limit` when there are more."""
    more = len(rows) > limit
    rows = rows[:limit]
    points = [TelemetryPoint(key=r[0], ts=r[1], value=stored_value(*r[3:])) for r in rows]
    next_cursor = _encode_cursor(rows[-1][1], rows[-1][2]) if more and rows else None
    return TelemetryPage(points=points, next_cursor=next_cursor)


def _series(names: dict[int, str], rows: Iterable[Sequence[Any]], *, bucket_s: int, source: Source) -> list[Series]:
    grouped: dict[str, tuple[list[datetime], list[float | None]]] = defaultdict(lambda: ([], []))
    for key_id, ts, value in rows:
        grouped[names[key_id]][0].append(ts)
        grouped[names[key_id]][1].append(value)
    return [Series(key=name, ts=tuple(ts), values=tuple(values), bucket_s=bucket_s, source=source)
            for name, (ts, values) in sorted(grouped.items())]


async def check_device(session: AsyncSession, principal: Principal, device_id: UUID) -> None:
    found = await session.scalar(
        text('SELECT 1 FROM devices WHERE id = :device AND tenant_id = :tenant'),
        {'device': device_id, 'tenant': principal.tenant_id},
    )
    if not found:
        raise NotFound(f'Unknown device {device_id}.', field='device_id')


def check_range(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput('Times need a time zone (e.g. 2026-01-01T00:00:00Z).', field='start')
    if end <= start:
        raise InvalidInput('end must be after start.', field='end')
    if end - start > timedelta(days=3660):
        raise InvalidInput('The time range may span at most ten years.', field='start')


def _encode_cursor(ts: datetime, key_id: int) -> str:
    return base64.urlsafe_b64encode(f'{ts.isoformat()}|{key_id}'.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        ts, key_id = base64.urlsafe_b64decode(cursor.encode()).decode().split('|')
        return datetime.fromisoformat(ts), int(key_id)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidInput('Invalid cursor.', field='cursor') from error
