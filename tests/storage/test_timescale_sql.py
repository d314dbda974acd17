"""The TimescaleDB path, checked at the SQL level (no TimescaleDB on this machine)."""

from __future__ import annotations

from app.services.storage.timescale import SCHEMA, retention_statements, setup_statements, tenant_trim_statements


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
    assert len(views) == 3 and all('security_barrier' in v for v in views)
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
