"""The TimescaleDB storage path, as SQL: used by migration 0007 when the extension can be created.

TimescaleDB refuses compression and continuous aggregates on a hypertable with row-level security
("compression cannot be used on table with row security", "cannot create continuous aggregate on hypertable
with row security"), and chunks inherit the hypertable's grants but not its policies (timescale/timescaledb#7830).
So here the second wall is built differently: the hypertable and the continuous aggregates live in schema
`gito_ts`, on which the app role has no privilege at all (not even USAGE, so no chunk or table can be named);
the app reads and writes `public.telemetry`, `public.telemetry_1m` and `public.telemetry_1h`, views owned by
the owner that show only the rows of `app.tenant_id` (the owner sees all, like its `system_access` policy) and,
for `telemetry`, refuse other tenants' rows on insert (`WITH CHECK OPTION`). The batch writer's
`INSERT … ON CONFLICT DO NOTHING` goes through the auto-updatable view unchanged.

The views are not `security_barrier`: a barrier view is planned as a closed subquery, so TimescaleDB cannot run
an `ORDER BY ts LIMIT n` as an ordered scan of the chunks: every CSV export page sorted the rest of the range
(178 ms a page against 7.6 ms; the export of a million rows took 102 s against 6 s on plain PostgreSQL). A
barrier only guards against leaky functions in SQL that an attacker writes, and SQL written as the app role could
as well set `app.tenant_id` itself: the wall this layer is for (a service query that forgets its tenant filter)
stands without it.

The development machine has no TimescaleDB package; this layout was run there against 2.28.3 built from source,
the whole suite on it (see docs/ARCHITECTURE.md). Needs TimescaleDB ≥ 2.13 (hierarchical continuous aggregates,
compressed-chunk DML).
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA = 'gito_ts'
IN_USE = f"SELECT to_regclass('{SCHEMA}.telemetry') IS NOT NULL"  # migration 0007 built this layout
TENANT_FILTER = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"


@dataclass(frozen=True)
class TimescalePlan:
    """Policy intervals; the retention job moves the drop-after intervals to the longest tenant retention."""

    chunk_days: int = 1
    compress_after_days: int = 7
    raw_days: int = 30
    minute_days: int = 180
    hour_days: int = 730


def _owner_or_tenant(owner: str) -> str:
    return f"({TENANT_FILTER} OR current_user = {_literal(owner)})"


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _aggregate(name: str, *, bucket: str, source: str, time_column: str, inner: bool) -> str:
    if inner:  # from raw rows
        measures = ('count(value) AS count, sum(value) AS sum, min(value) AS min, max(value) AS max, '
                    'last(value, ts) AS last, max(ts) AS last_ts')
        where = ' WHERE value IS NOT NULL'
    else:  # from the 1-minute aggregate: hierarchical
        measures = ('sum(count)::bigint AS count, sum(sum) AS sum, min(min) AS min, max(max) AS max, '
                    'last(last, last_ts) AS last, max(last_ts) AS last_ts')
        where = ''
    return (f"CREATE MATERIALIZED VIEW {SCHEMA}.{name} "
            f"WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS "
            f"SELECT tenant_id, device_id, key_id, time_bucket(INTERVAL '{bucket}', {time_column}) AS bucket, "
            f"{measures} FROM {source}{where} GROUP BY tenant_id, device_id, key_id, 4 WITH NO DATA")


def setup_statements(*, owner: str, plan: TimescalePlan = TimescalePlan()) -> list[str]:
    """Convert the plain `telemetry` table (kept data) into the TimescaleDB layout described above."""
    statements = [
        'CREATE EXTENSION IF NOT EXISTS timescaledb',
        f'CREATE SCHEMA IF NOT EXISTS {SCHEMA}',
        f'REVOKE ALL ON SCHEMA {SCHEMA} FROM PUBLIC',
        f'ALTER TABLE telemetry SET SCHEMA {SCHEMA}',
        f'ALTER TABLE {SCHEMA}.telemetry DISABLE ROW LEVEL SECURITY',  # isolation moves to the view below
        f'ALTER TABLE {SCHEMA}.telemetry NO FORCE ROW LEVEL SECURITY',
        f'DROP POLICY IF EXISTS tenant_isolation ON {SCHEMA}.telemetry',
        f'DROP POLICY IF EXISTS system_access ON {SCHEMA}.telemetry',
        f"SELECT create_hypertable('{SCHEMA}.telemetry', by_range('ts', INTERVAL '{plan.chunk_days} day'), "
        f"migrate_data => true)",
        f"SELECT set_chunk_time_interval('{SCHEMA}.telemetry', INTERVAL '{plan.chunk_days} day')",
        f"ALTER TABLE {SCHEMA}.telemetry SET (timescaledb.compress, "
        f"timescaledb.compress_segmentby = 'tenant_id, device_id, key_id', timescaledb.compress_orderby = 'ts DESC')",
        f"SELECT add_compression_policy('{SCHEMA}.telemetry', INTERVAL '{plan.compress_after_days} days')",
        _aggregate('telemetry_1m', bucket='1 minute', source=f'{SCHEMA}.telemetry', time_column='ts', inner=True),
        _aggregate('telemetry_1h', bucket='1 hour', source=f'{SCHEMA}.telemetry_1m', time_column='bucket',
                   inner=False),
        # Refresh windows: a row arriving more than a day late stays out of the aggregates (never refresh a
        # window reaching past the raw retention: that would re-aggregate deleted rows as nothing). The raw
        # retention is at least 2 days, so the 1-day window never sees trimmed raw data.
        f"SELECT add_continuous_aggregate_policy('{SCHEMA}.telemetry_1m', start_offset => INTERVAL '1 day', "
        f"end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute')",
        f"SELECT add_continuous_aggregate_policy('{SCHEMA}.telemetry_1h', start_offset => INTERVAL '7 days', "
        f"end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '10 minutes')",
        *retention_statements(raw_days=plan.raw_days, minute_days=plan.minute_days, hour_days=plan.hour_days),
        f'CREATE VIEW telemetry AS SELECT * FROM {SCHEMA}.telemetry '
        f'WHERE {_owner_or_tenant(owner)} WITH CASCADED CHECK OPTION',
    ]
    for name in ('telemetry_1m', 'telemetry_1h'):
        statements.append(f'CREATE VIEW {name} AS SELECT * FROM {SCHEMA}.{name} '
                          f'WHERE {_owner_or_tenant(owner)}')
    return statements


def retention_statements(*, raw_days: int, minute_days: int, hour_days: int) -> list[str]:
    """Drop-after policies at the longest retention any tenant has; shorter tenants are trimmed by DELETE."""
    statements = []
    for relation, days in (('telemetry', raw_days), ('telemetry_1m', minute_days), ('telemetry_1h', hour_days)):
        statements.append(f"SELECT remove_retention_policy('{SCHEMA}.{relation}', if_exists => true)")
        statements.append(f"SELECT add_retention_policy('{SCHEMA}.{relation}', drop_after => INTERVAL '{days} days')")
    return statements


POLICY_REACH = {'telemetry_1m': 1, 'telemetry_1h': 7}  # days back the refresh policies above recompute


def late_refresh_statements(*, shortest_raw_days: int) -> list[str]:
    """Refreshes of both aggregates over the days before their policies' reach, back to where every tenant still
    has its raw rows, so that rows which came late (a replay from the raw archive, a device that buffered for days)
    reach the rollups. Not further back: a refresh over raw rows trimmed by a tenant's shorter retention would
    recompute that tenant's longer-kept aggregates as nothing. Only invalidated buckets are recomputed, so a
    window where nothing changed costs little. The minute aggregate first: the hourly one reads it."""
    back = shortest_raw_days - 1
    return [f"CALL refresh_continuous_aggregate('{SCHEMA}.{name}', now() - INTERVAL '{back} days', "
            f"now() - INTERVAL '{reach} days')" for name, reach in POLICY_REACH.items() if back > reach]


MATERIALIZATION_TABLES = f"""
SELECT view_name, format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name)
FROM timescaledb_information.continuous_aggregates WHERE view_schema = '{SCHEMA}'"""


def tenant_delete_statements(materialized: dict[str, str]) -> list[str]:
    """Every raw and aggregated row of a tenant that is being deleted (parameter :tenant). `public.telemetry` is a
    view here, so a delete of the tenant's tables would not reach them."""
    return [f'DELETE FROM {SCHEMA}.telemetry WHERE tenant_id = :tenant',
            *(f'DELETE FROM {table} WHERE tenant_id = :tenant' for table in materialized.values())]


def tenant_trim_statements(materialized: dict[str, str]) -> list[str]:
    """Per-tenant deletes older than the tenant's own retention (parameters :tenant, :raw, :minute, :hour);
    `materialized` maps each continuous aggregate to its materialization hypertable (MATERIALIZATION_TABLES).
    Deleting materialized rows outside the refresh windows is not undone by later refreshes."""
    statements = [f'DELETE FROM {SCHEMA}.telemetry WHERE tenant_id = :tenant '
                  f'AND ts < now() - make_interval(days => :raw)']
    for view, parameter in (('telemetry_1m', 'minute'), ('telemetry_1h', 'hour')):
        if view in materialized:
            statements.append(f"DELETE FROM {materialized[view]} WHERE tenant_id = :tenant "
                              f"AND bucket < now() - make_interval(days => :{parameter})")
    return statements
