"""The TimescaleDB path, checked at the SQL level (no TimescaleDB on this machine)."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

from app.services.storage.maintenance import timescale_retention
from app.services.storage.retention import Retention
from app.services.storage.timescale import (
    SCHEMA,
    late_refresh_statements,
    retention_statements,
    setup_statements,
    tenant_trim_statements,
)


def test_setup_builds_hypertable_policies_aggregates_and_guarded_views() -> None:
    statements = setup_statements(owner="gi'to")
    joined = '\n'.join(statements)
    assert statements[0] == 'CREATE EXTENSION IF NOT EXISTS timescaledb'
    assert f"create_hypertable('{SCHEMA}.telemetry', by_range('ts', INTERVAL '1 day'), migrate_data => true)" in joined
    assert "timescaledb.compress_segmentby = 'tenant_id, device_id, key_id'" in joined
    assert f"add_compression_policy('{SCHEMA}.telemetry', INTERVAL '7 days')" in joined
    assert f"add_retention_policy('{SCHEMA}.telemetry', drop_after => INTERVAL '30 days')" in joined
    minute = next(s for s in statements if s.startswith(f'CREATE MATERIALIZED VIEW {SCHEMA}.telemetry_1m'))
    assert "time_bucket(INTERVAL '1 minute', ts)" in minute and 'last(value, ts) AS last' in minute
    hour = next(s for s in statements if s.startswith(f'CREATE MATERIALIZED VIEW {SCHEMA}.telemetry_1h'))
    assert f'FROM {SCHEMA}.telemetry_1m' in hour and 'last(last, last_ts)' in hour  # hierarchical
    # RLS must be off where compression and aggregates live: the views are the tenant wall.
    assert joined.index('DISABLE ROW LEVEL SECURITY') < joined.index('timescaledb.compress,')
    views = [s for s in statements if s.startswith('CREATE VIEW')]
    assert len(views) == 3 and not any('security_barrier' in v for v in views)  # see the module: it cost the scans
    assert all("current_setting('app.tenant_id', true)" in v and "current_user = 'gi''to'" in v for v in views)
    assert 'WITH CASCADED CHECK OPTION' in views[0]  # the writer's inserts cannot carry another tenant's rows
    assert f'REVOKE ALL ON SCHEMA {SCHEMA} FROM PUBLIC' in statements


def test_retention_moves_policies_and_trims_tenants() -> None:
    statements = retention_statements(raw_days=90, minute_days=365, hour_days=1000)
    assert f"SELECT add_retention_policy('{SCHEMA}.telemetry_1h', drop_after => INTERVAL '1000 days')" in statements
    assert sum('remove_retention_policy' in s for s in statements) == 3
    trims = tenant_trim_statements({'telemetry_1m': '_timescaledb_internal._materialized_hypertable_2'})
    assert trims[0].startswith(f'DELETE FROM {SCHEMA}.telemetry WHERE tenant_id = :tenant')
    assert 'DELETE FROM _timescaledb_internal._materialized_hypertable_2 WHERE tenant_id = :tenant' in trims[1]
    assert len(trims) == 2


class FakeResult:
    def __init__(self, rows: list[tuple[object, ...]]) -> None:
        self.rows = rows
        self.rowcount = len(rows)

    def __iter__(self) -> Iterator[tuple[object, ...]]:
        return iter(self.rows)

    def all(self) -> list[tuple[object, ...]]:
        return self.rows


class FakeSession:
    """Answers the retention job's queries like a TimescaleDB database with two tenants would."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    async def execute(self, statement: object, params: dict[str, object] | None = None) -> FakeResult:
        sql = str(statement)
        self.statements.append(sql)
        if 'FROM tenants t LEFT JOIN storage_settings' in sql:
            return FakeResult([(uuid4(), 30, 180, 730), (uuid4(), 7, 400, 800)])
        if 'timescaledb_information.continuous_aggregates' in sql:
            return FakeResult([('telemetry_1m', '_timescaledb_internal._materialized_hypertable_2')])
        return FakeResult([(1,)])


async def testtimescale_retention_sets_policies_once_and_trims_every_tenant() -> None:
    session = FakeSession()
    run, applied = await timescale_retention(session, None)  # type: ignore[arg-type]
    assert applied == Retention(raw_days=30, minute_days=400, hour_days=800)
    policy = f"SELECT add_retention_policy('{SCHEMA}.telemetry_1m', drop_after => INTERVAL '400 days')"
    assert policy in session.statements
    assert sum(s.startswith('DELETE') for s in session.statements) == 4 and run.deleted_rows == 4
    again = FakeSession()
    await timescale_retention(again, applied)  # type: ignore[arg-type]
    assert not any('retention_policy' in s for s in again.statements)


def test_late_refreshes_stay_within_every_tenants_raw_rows() -> None:
    statements = late_refresh_statements(shortest_raw_days=30)
    assert statements == [
        f"CALL refresh_continuous_aggregate('{SCHEMA}.telemetry_1m', now() - INTERVAL '29 days', "
        "now() - INTERVAL '1 days')",
        f"CALL refresh_continuous_aggregate('{SCHEMA}.telemetry_1h', now() - INTERVAL '29 days', "
        "now() - INTERVAL '7 days')"]
    assert len(late_refresh_statements(shortest_raw_days=5)) == 1  # the hourly policy reaches back further
    assert late_refresh_statements(shortest_raw_days=2) == []
