"""One query interface: a chart picks raw rows, 1-minute or 1-hour rollups and never exceeds its cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.models.storage import RetentionSettings
from app.platform import Platform
from app.services.errors import NotFound
from tests.conftest import NewTenant
from tests.storage.conftest import new_device, store
from tests.support import roll_up


async def test_sources_by_span_with_the_raw_tail(storage: Platform, new_tenant: NewTenant) -> None:
    admin, stranger = (await new_tenant()).principal, (await new_tenant()).principal
    await storage.storage.update_retention(admin, RetentionSettings(raw_days=60, minute_days=90, hour_days=400))
    await storage.storage_jobs.apply_retention()  # TimescaleDB: its policies then keep 60 days, not 30
    device = await new_device(storage, admin)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    first = end - timedelta(days=40)
    readings = [(first + timedelta(minutes=10 * i), 'power', float(i)) for i in range(40 * 144)]
    await store(storage, admin, device.id, readings)
    await roll_up(storage)

    [hourly] = await storage.telemetry.chart(admin, device.id, start=first, end=end)
    assert (hourly.source, hourly.bucket_s, len(hourly.values)) == ('1h', 3600, 960)
    assert hourly.values[0] == pytest.approx(sum(range(6)) / 6)  # the average of the hour's six readings

    three_days = end - timedelta(days=3)
    [minutes] = await storage.telemetry.chart(admin, device.id, start=three_days, end=end)
    assert (minutes.source, minutes.bucket_s) == ('1m', 180)
    assert len(minutes.values) == 3 * 144 and max(minutes.values) == 40 * 144 - 1  # type: ignore[type-var]

    [raw] = await storage.telemetry.chart(admin, device.id, start=end - timedelta(hours=1), end=end)
    assert (raw.source, raw.bucket_s, raw.values) == ('raw', 0, tuple(float(i) for i in range(5754, 5760)))

    daily = await storage.telemetry.aggregate(admin, device.id, start=first, end=end, bucket_s=86400,
                                              function='max', keys=['power'])  # from the 1-hour rollup
    assert [p.value for p in daily] == [float(144 * d + 143) for d in range(40)]
    assert [p.bucket for p in daily] == [first + timedelta(days=d) for d in range(40)]

    # Written after the rollup ran: the newest buckets come from raw rows.
    await store(storage, admin, device.id, [(end + timedelta(seconds=30), 'power', -5.0)])
    [fresh] = await storage.telemetry.chart(admin, device.id, start=three_days, end=end + timedelta(minutes=5))
    assert fresh.source == '1m' and fresh.values[-1] == -5.0

    with pytest.raises(NotFound):
        await storage.telemetry.chart(stranger, device.id, start=first, end=end)


async def test_no_source_returns_more_than_the_cap(storage: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    device = await new_device(storage, admin)
    end = datetime.now(UTC)
    await store(storage, admin, device.id, [(end - timedelta(seconds=7 * i), 'power', float(i)) for i in range(3000)])
    await roll_up(storage)
    for span in (timedelta(hours=2), timedelta(days=2), timedelta(days=60)):
        for cap in (50, 500):
            [series] = await storage.telemetry.chart(admin, device.id, start=end - span, end=end, max_points=cap)
            assert 0 < len(series.values) <= cap, (span, cap, series.source)


async def test_a_dense_short_range_reads_the_minute_rollup(storage: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    device = await new_device(storage, admin)
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    await store(storage, admin, device.id, [(end - timedelta(seconds=5 * (i + 1)), 'power', 1.0) for i in range(3000)])
    await roll_up(storage)
    [dense] = await storage.telemetry.chart(admin, device.id, start=end - timedelta(hours=4), end=end)
    assert (dense.source, dense.bucket_s, len(dense.values)) == ('1m', 60, 240)  # 2,880 rows in 240 minutes
    [short] = await storage.telemetry.chart(admin, device.id, start=end - timedelta(minutes=90), end=end,
                                            max_points=500)
    assert (short.source, short.bucket_s) == ('raw', 11)  # 90 minutes: too few minutes to draw, raw averages
