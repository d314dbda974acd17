"""DDL of the plain-PostgreSQL storage path: `telemetry` range-partitioned by UTC day, kept by SQL functions.

The migration creates these functions and the scheduled job calls them (as the owner role):

- `gito_partition_rls(table)`: ENABLE + FORCE row-level security on a partition with the same two policies as
  every tenant table, and no privilege for anyone but the owner. The app role reaches partitions only through
  the parent (whose policies PostgreSQL applies); naming a partition directly is refused, so a partition is no
  way around row-level security.
- `gito_day_partition(parent, column, day)`: the partition `<parent>_pYYYYMMDD` of one UTC day, created once.
  Rows of that day that landed in the default partition `<parent>_default` meanwhile (the scheduler was down,
  or late data) are moved into it in the same transaction, so creating a partition never loses or strands a
  row. `gito_telemetry_partition(day)` is that for `telemetry`; the raw archive (`raw_messages`) and the
  1-minute rollups (`telemetry_1m`) use it too.
- `gito_month_partition(parent, column, month)`: the same for one UTC calendar month, `<parent>_mYYYYMM`; the
  1-hour rollups (`telemetry_1h`, kept two years by default) are partitioned by month.
Both call `gito_range_partition(parent, column, name, low, high)`.
"""

PARTITION_PREFIX = 'telemetry_p'  # the names gito_day_partition gives
DEFAULT_PARTITION = 'telemetry_default'

PARTITION_RLS_FUNCTION = """
CREATE OR REPLACE FUNCTION gito_partition_rls(partition regclass) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', partition);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', partition);
    EXECUTE format($p$CREATE POLICY tenant_isolation ON %s
        USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
        WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)$p$, partition);
    EXECUTE format('CREATE POLICY system_access ON %s TO %I USING (true) WITH CHECK (true)', partition, current_user);
    EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', partition);
END $$"""

RANGE_PARTITION_FUNCTION = """
CREATE OR REPLACE FUNCTION gito_range_partition(parent text, ts_column text, name text, low timestamptz,
                                                high timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    fallback text := parent || '_default';
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    -- Writers wait a moment: no row of that range may reach the default partition between the move and the attach.
    EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', fallback);
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name, parent);
    EXECUTE format('WITH moved AS (DELETE FROM %I WHERE %I >= $1 AND %I < $2 RETURNING *)
                    INSERT INTO %I SELECT * FROM moved', fallback, ts_column, ts_column, name) USING low, high;
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', parent, name, low, high);
    PERFORM gito_partition_rls(name::regclass);
    RETURN true;
END $$"""

DAY_PARTITION_FUNCTION = """
CREATE OR REPLACE FUNCTION gito_day_partition(parent text, ts_column text, day date) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    RETURN gito_range_partition(parent, ts_column, parent || '_p' || to_char(day, 'YYYYMMDD'),
                                day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
END $$"""

MONTH_PARTITION_FUNCTION = """
CREATE OR REPLACE FUNCTION gito_month_partition(parent text, ts_column text, month date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    first date := date_trunc('month', month)::date;
BEGIN
    RETURN gito_range_partition(parent, ts_column, parent || '_m' || to_char(first, 'YYYYMM'),
                                first::timestamp AT TIME ZONE 'UTC',
                                (first + interval '1 month')::timestamp AT TIME ZONE 'UTC');
END $$"""

PARTITION_FUNCTION = """
CREATE OR REPLACE FUNCTION gito_telemetry_partition(day date) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RETURN gito_day_partition('telemetry', 'ts', day);
END $$"""

PARTITIONED_TELEMETRY = f"""
    ALTER TABLE telemetry RENAME TO telemetry_unpartitioned;
    ALTER TABLE telemetry_unpartitioned RENAME CONSTRAINT telemetry_pkey TO telemetry_unpartitioned_pkey;
    CREATE TABLE telemetry (
        tenant_id uuid NOT NULL,
        device_id uuid NOT NULL,
        key_id integer NOT NULL,
        ts timestamptz NOT NULL,
        value double precision,
        text_value text,
        bool_value boolean,
        json_value jsonb,
        ingest_xid bigint NOT NULL DEFAULT txid_current(),
        PRIMARY KEY (tenant_id, device_id, key_id, ts)
    ) PARTITION BY RANGE (ts);
    CREATE INDEX telemetry_ingest_xid_idx ON telemetry USING brin (ingest_xid) WITH (pages_per_range = 32);
    CREATE TABLE {DEFAULT_PARTITION} PARTITION OF telemetry DEFAULT;
    SELECT gito_partition_rls('{DEFAULT_PARTITION}'::regclass);
    SELECT gito_telemetry_partition(day::date) FROM (
        SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date AS day FROM telemetry_unpartitioned
        WHERE ts > now() - interval '3 years' AND ts < now() + interval '8 days'
        UNION SELECT generate_series((now() AT TIME ZONE 'UTC')::date - 1,
                                     (now() AT TIME ZONE 'UTC')::date + 7, interval '1 day')::date
    ) days;
    INSERT INTO telemetry (tenant_id, device_id, key_id, ts, value, text_value, bool_value, json_value)
    SELECT tenant_id, device_id, key_id, ts, value, text_value, bool_value, json_value FROM telemetry_unpartitioned;
    DROP TABLE telemetry_unpartitioned
"""

ROLLUP_COLUMNS = """
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        device_id uuid NOT NULL,
        key_id integer NOT NULL,
        bucket timestamptz NOT NULL,
        count bigint NOT NULL,
        sum double precision NOT NULL,
        min double precision NOT NULL,
        max double precision NOT NULL,
        last double precision NOT NULL,
        last_ts timestamptz NOT NULL,
        PRIMARY KEY (tenant_id, device_id, key_id, bucket)"""

ROLLUP_TABLES = f"""
    CREATE TABLE telemetry_1m ({ROLLUP_COLUMNS});
    CREATE TABLE telemetry_1h ({ROLLUP_COLUMNS});
    CREATE TABLE storage_watermarks (
        name text PRIMARY KEY,
        xid bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    INSERT INTO storage_watermarks (name, xid) VALUES ('rollups', 0)
"""

# Migration 0012: the rollup tables of migration 0007 become partitioned (1-minute by day, 1-hour by month) so
# that retention drops whole partitions of them too; every row is kept.
PARTITIONED_ROLLUPS = f"""
    ALTER TABLE telemetry_1m RENAME TO telemetry_1m_unpartitioned;
    ALTER TABLE telemetry_1m_unpartitioned RENAME CONSTRAINT telemetry_1m_pkey TO telemetry_1m_unpartitioned_pkey;
    ALTER TABLE telemetry_1h RENAME TO telemetry_1h_unpartitioned;
    ALTER TABLE telemetry_1h_unpartitioned RENAME CONSTRAINT telemetry_1h_pkey TO telemetry_1h_unpartitioned_pkey;
    CREATE TABLE telemetry_1m ({ROLLUP_COLUMNS}) PARTITION BY RANGE (bucket);
    CREATE TABLE telemetry_1h ({ROLLUP_COLUMNS}) PARTITION BY RANGE (bucket);
    CREATE TABLE telemetry_1m_default PARTITION OF telemetry_1m DEFAULT;
    CREATE TABLE telemetry_1h_default PARTITION OF telemetry_1h DEFAULT;
    SELECT gito_partition_rls('telemetry_1m_default'::regclass);
    SELECT gito_partition_rls('telemetry_1h_default'::regclass);
    SELECT gito_day_partition('telemetry_1m', 'bucket', day::date) FROM (
        SELECT DISTINCT (bucket AT TIME ZONE 'UTC')::date AS day FROM telemetry_1m_unpartitioned
        WHERE bucket > now() - interval '3 years' AND bucket < now() + interval '8 days'
        UNION SELECT generate_series((now() AT TIME ZONE 'UTC')::date - 1,
                                     (now() AT TIME ZONE 'UTC')::date + 7, interval '1 day')::date
    ) days;
    SELECT gito_month_partition('telemetry_1h', 'bucket', month::date) FROM (
        SELECT DISTINCT date_trunc('month', bucket AT TIME ZONE 'UTC')::date AS month FROM telemetry_1h_unpartitioned
        WHERE bucket > now() - interval '10 years' AND bucket < now() + interval '40 days'
        UNION SELECT date_trunc('month', now() AT TIME ZONE 'UTC')::date
        UNION SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month')::date
    ) months;
    INSERT INTO telemetry_1m SELECT * FROM telemetry_1m_unpartitioned;
    INSERT INTO telemetry_1h SELECT * FROM telemetry_1h_unpartitioned;
    DROP TABLE telemetry_1m_unpartitioned;
    DROP TABLE telemetry_1h_unpartitioned
"""
