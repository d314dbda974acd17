"""DDL of the plain-PostgreSQL storage path: `telemetry` range-partitioned by UTC day, kept by SQL functions.

The migration creates these functions and the scheduled job calls them (as the owner role):

- `gito_partition_rls(table)`: ENABLE + FORCE row-level security on a partition with the same two policies as
  every tenant table, and no privilege for anyone but the owner. The app role reaches partitions only through
  the parent (whose policies PostgreSQL applies); naming a partition directly is refused, so a partition is no
  way around row-level security.
- `gito_day_partition(parent, column, day)`: the partition `<parent>_pYYYYMMDD` of one UTC day, created once.
  Rows of that day that landed in the default partition `<parent>_default` meanwhile (the scheduler was down,
  or late data) are moved into it in the same transaction, so creating a partition never loses or strands a
  row. `gito_telemetry_partition(day)` is that for `telemetry`; the raw archive (`raw_messages`) uses it too.
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

DAY_PARTITION_FUNCTION = """
CREATE OR REPLACE FUNCTION gito_day_partition(parent text, ts_column text, day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    name text := parent || '_p' || to_char(day, 'YYYYMMDD');
    fallback text := parent || '_default';
    low timestamptz := day::timestamp AT TIME ZONE 'UTC';
    high timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    -- Writers wait a moment: no row of that day may reach the default partition between the move and the attach.
    EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', fallback);
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name, parent);
    EXECUTE format('WITH moved AS (DELETE FROM %I WHERE %I >= $1 AND %I < $2 RETURNING *)
                    INSERT INTO %I SELECT * FROM moved', fallback, ts_column, ts_column, name) USING low, high;
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', parent, name, low, high);
    PERFORM gito_partition_rls(name::regclass);
    RETURN true;
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
