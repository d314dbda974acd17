"""DDL of the plain-PostgreSQL storage path: `telemetry` range-partitioned by UTC day, kept by SQL functions.

The migration creates these functions and the scheduled job calls them (as the owner role):

- `gito_partition_rls(table)`: ENABLE + FORCE row-level security on a partition with the same two policies as
  every tenant table, and no privilege for anyone but the owner. The app role reaches partitions only through
  the parent (whose policies PostgreSQL applies); naming a partition directly is refused, so a partition is no
  way around row-level security.
- `gito_day_partition(parent, column, day)`: the partition `<parent>_pYYYYMMDD` of one UTC day, created once.
  Rows of that day that landed in the default partition `<parent>_default` meanwhile (the scheduler was down,
  or late data) are moved into it in the same transaction, so creating a partition never loses or strands a
  row. `gito_telemetry_partition(day)` is that for the raw readings (since migration 0017 both `telemetry_points`
  and `telemetry_rows`); the raw archive (`raw_messages`) and the 1-minute rollups (`telemetry_1m`) use it too.
- `gito_month_partition(parent, column, month)`: the same for one UTC calendar month, `<parent>_mYYYYMM`; the
  1-hour rollups (`telemetry_1h`, kept two years by default) are partitioned by month.
Both call `gito_range_partition(parent, column, name, low, high)`.
"""

PARTITION_PREFIX = 'telemetry_points_p'  # the names gito_day_partition gives the partitions of telemetry points
DEFAULT_PARTITION = 'telemetry_default'  # of the partitioned `telemetry` of migrations 0007 to 0013

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

# Migration 0014: telemetry keyed by an integer series id. `telemetry_series` numbers every (tenant, device, key)
# once (on both layouts: the batch writer encodes series ids); on plain PostgreSQL the rows move to
# `telemetry_points` with the primary key (series_id, ts), and `telemetry` becomes a view with the old columns.
# A 16-byte key where (tenant, device, key, ts) took 44: the index is half the size, and COPY costs a third less
# per row at 30,000 msg/s (docs/ARCHITECTURE.md, "Telemetry series").
POINTS_TABLE = 'telemetry_points'
SERIES_TABLE = """
    CREATE TABLE telemetry_series (
        id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        device_id uuid NOT NULL,
        key_id integer NOT NULL,
        UNIQUE (tenant_id, device_id, key_id)
    )"""
# Every series that has a row; a device's series go with the device (`gito_delete_device_telemetry`).
FILL_SERIES = """
    INSERT INTO telemetry_series (tenant_id, device_id, key_id)
    SELECT DISTINCT tenant_id, device_id, key_id FROM telemetry
    UNION SELECT tenant_id, device_id, key_id FROM latest_values"""
POINTS_PARTITION_FUNCTION = f"""
CREATE OR REPLACE FUNCTION gito_telemetry_partition(day date) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RETURN gito_day_partition('{POINTS_TABLE}', 'ts', day);
END $$"""
POINTS = f"""
    CREATE TABLE {POINTS_TABLE} (
        tenant_id uuid NOT NULL,
        series_id integer NOT NULL,
        ts timestamptz NOT NULL,
        value double precision,
        text_value text,
        bool_value boolean,
        json_value jsonb,
        ingest_xid bigint NOT NULL DEFAULT txid_current(),
        PRIMARY KEY (series_id, ts)
    ) PARTITION BY RANGE (ts);
    CREATE INDEX {POINTS_TABLE}_ingest_xid_idx ON {POINTS_TABLE} USING brin (ingest_xid) WITH (pages_per_range = 32);
    CREATE TABLE {POINTS_TABLE}_default PARTITION OF {POINTS_TABLE} DEFAULT;
    SELECT gito_partition_rls('{POINTS_TABLE}_default'::regclass);
    SELECT gito_telemetry_partition(day) FROM (
        SELECT to_date(substr(c.relname, 12), 'YYYYMMDD') AS day
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'telemetry'::regclass AND c.relname ~ '^telemetry_p[0-9]{{8}}$'
        UNION SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date FROM telemetry_default
        WHERE ts > now() - interval '3 years' AND ts < now() + interval '8 days'
        UNION SELECT generate_series((now() AT TIME ZONE 'UTC')::date - 1,
                                     (now() AT TIME ZONE 'UTC')::date + 7, interval '1 day')::date
    ) days;
    INSERT INTO {POINTS_TABLE} (tenant_id, series_id, ts, value, text_value, bool_value, json_value, ingest_xid)
    SELECT t.tenant_id, s.id, t.ts, t.value, t.text_value, t.bool_value, t.json_value, t.ingest_xid
    FROM telemetry t
    JOIN telemetry_series s ON s.tenant_id = t.tenant_id AND s.device_id = t.device_id AND s.key_id = t.key_id;
    DROP TABLE telemetry
"""
# The view keeps every reader as it was. `security_invoker` (PostgreSQL 15+): the caller's row-level security
# applies to both tables; before 15 a view runs as its owner, so it filters by tenant itself, as the TimescaleDB
# views do (app/services/storage/timescale.py).
TELEMETRY_VIEW = f"""
CREATE VIEW telemetry{{options}} AS
SELECT p.tenant_id, s.device_id, s.key_id, p.ts, p.value, p.text_value, p.bool_value, p.json_value, p.ingest_xid
FROM {POINTS_TABLE} p JOIN telemetry_series s ON s.id = p.series_id{{where}}"""
# Rows added or deleted through the view one at a time (hand-written SQL, imports, tests); the batch writer
# copies into `telemetry_points` directly, and deleting a device's rows is one statement.
VIEW_WRITE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION gito_telemetry_view_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    series integer;
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM {POINTS_TABLE} p USING telemetry_series s
        WHERE s.tenant_id = OLD.tenant_id AND s.device_id = OLD.device_id AND s.key_id = OLD.key_id
          AND p.series_id = s.id AND p.ts = OLD.ts;
        RETURN OLD;
    END IF;
    INSERT INTO telemetry_series (tenant_id, device_id, key_id) VALUES (NEW.tenant_id, NEW.device_id, NEW.key_id)
    ON CONFLICT DO NOTHING;
    SELECT id INTO series FROM telemetry_series
    WHERE tenant_id = NEW.tenant_id AND device_id = NEW.device_id AND key_id = NEW.key_id;
    INSERT INTO {POINTS_TABLE} (tenant_id, series_id, ts, value, text_value, bool_value, json_value)
    VALUES (NEW.tenant_id, series, NEW.ts, NEW.value, NEW.text_value, NEW.bool_value, NEW.json_value);
    RETURN NEW;
END $$"""
VIEW_WRITE_TRIGGER = """
CREATE TRIGGER telemetry_write INSTEAD OF INSERT OR DELETE ON telemetry
    FOR EACH ROW EXECUTE FUNCTION gito_telemetry_view_write()"""
DELETE_DEVICE_NATIVE = f"""
CREATE OR REPLACE FUNCTION gito_delete_device_telemetry(tenant uuid, device uuid) RETURNS void LANGUAGE sql AS $$
    DELETE FROM {POINTS_TABLE} WHERE tenant_id = tenant AND series_id IN (
        SELECT id FROM telemetry_series WHERE tenant_id = tenant AND device_id = device);
    DELETE FROM telemetry_series WHERE tenant_id = tenant AND device_id = device;
$$"""
DELETE_DEVICE_TIMESCALE = """
CREATE OR REPLACE FUNCTION gito_delete_device_telemetry(tenant uuid, device uuid) RETURNS void LANGUAGE sql AS $$
    DELETE FROM telemetry WHERE tenant_id = tenant AND device_id = device;
    DELETE FROM telemetry_series WHERE tenant_id = tenant AND device_id = device;
$$"""

# Migration 0017: numeric readings one row per message. `telemetry_rows` holds a message's numbers as two arrays
# (key ids, values) in one row of the *device's* series (`telemetry_series` with the reserved key `DEVICE_KEY`):
# one heap tuple and one primary-key entry per message where `telemetry_points` took one per reading, a third of
# PostgreSQL's CPU and WAL per message (docs/ARCHITECTURE.md, "A row per message"). Text, boolean and JSON readings
# stay rows of `telemetry_points`, and so does a number that arrives for a device and timestamp whose row is already
# stored (a later message at the same timestamp with other keys): a row is never updated, so every reading is
# inserted once with its own `ingest_xid` and the rollups stay exact. A reading lives in exactly one of the two.
ROWS_TABLE = 'telemetry_rows'
DEVICE_KEY = 0  # `telemetry_keys` ids are serial from 1: no key is numbered 0
RAW_TABLES = (POINTS_TABLE, ROWS_TABLE)  # where raw readings live on plain PostgreSQL
ROWS = f"""
    CREATE TABLE {ROWS_TABLE} (
        tenant_id uuid NOT NULL,
        series_id integer NOT NULL,
        ts timestamptz NOT NULL,
        key_ids integer[] NOT NULL,
        vals double precision[] NOT NULL,
        ingest_xid bigint NOT NULL DEFAULT txid_current(),
        PRIMARY KEY (series_id, ts)
    ) PARTITION BY RANGE (ts);
    CREATE INDEX {ROWS_TABLE}_ingest_xid_idx ON {ROWS_TABLE} USING brin (ingest_xid) WITH (pages_per_range = 32);
    CREATE TABLE {ROWS_TABLE}_default PARTITION OF {ROWS_TABLE} DEFAULT;
    SELECT gito_partition_rls('{ROWS_TABLE}_default'::regclass);
    SELECT gito_day_partition('{ROWS_TABLE}', 'ts', day::date) FROM generate_series(
        (now() AT TIME ZONE 'UTC')::date - 1, (now() AT TIME ZONE 'UTC')::date + 7, interval '1 day') day
"""
ROWS_PARTITION_FUNCTION = f"""
CREATE OR REPLACE FUNCTION gito_telemetry_partition(day date) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    points boolean := gito_day_partition('{POINTS_TABLE}', 'ts', day);
BEGIN
    RETURN gito_day_partition('{ROWS_TABLE}', 'ts', day) OR points;
END $$"""
TELEMETRY_ROWS_VIEW = f"""
CREATE VIEW telemetry{{options}} AS
SELECT p.tenant_id, s.device_id, s.key_id, p.ts, p.value, p.text_value, p.bool_value, p.json_value, p.ingest_xid
FROM {POINTS_TABLE} p JOIN telemetry_series s ON s.id = p.series_id{{where}}
UNION ALL
SELECT p.tenant_id, s.device_id, u.key_id, p.ts, u.value, NULL::text, NULL::boolean, NULL::jsonb, p.ingest_xid
FROM {ROWS_TABLE} p JOIN telemetry_series s ON s.id = p.series_id
CROSS JOIN LATERAL unnest(p.key_ids, p.vals) AS u(key_id, value){{where}}"""
# One reading through the view: a number into the device's row at its timestamp if there is none yet, else (the
# row holds other keys) into `telemetry_points`; a key and timestamp stored already is a unique violation either way.
ROWS_VIEW_WRITE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION gito_telemetry_view_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    series integer;
    device_series integer;
    held integer[];
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM {POINTS_TABLE} p USING telemetry_series s
        WHERE s.tenant_id = OLD.tenant_id AND s.device_id = OLD.device_id AND s.key_id = OLD.key_id
          AND p.series_id = s.id AND p.ts = OLD.ts;
        SELECT id INTO device_series FROM telemetry_series
        WHERE tenant_id = OLD.tenant_id AND device_id = OLD.device_id AND key_id = {DEVICE_KEY};
        DELETE FROM {ROWS_TABLE} WHERE series_id = device_series AND ts = OLD.ts AND key_ids = ARRAY[OLD.key_id];
        UPDATE {ROWS_TABLE} r SET
            key_ids = array(SELECT k FROM unnest(r.key_ids, r.vals) u(k, v) WHERE k <> OLD.key_id),
            vals = array(SELECT v FROM unnest(r.key_ids, r.vals) u(k, v) WHERE k <> OLD.key_id)
        WHERE r.series_id = device_series AND r.ts = OLD.ts AND OLD.key_id = ANY(r.key_ids);
        RETURN OLD;
    END IF;
    INSERT INTO telemetry_series (tenant_id, device_id, key_id)
    VALUES (NEW.tenant_id, NEW.device_id, NEW.key_id), (NEW.tenant_id, NEW.device_id, {DEVICE_KEY})
    ON CONFLICT DO NOTHING;
    SELECT id INTO series FROM telemetry_series
    WHERE tenant_id = NEW.tenant_id AND device_id = NEW.device_id AND key_id = NEW.key_id;
    SELECT id INTO device_series FROM telemetry_series
    WHERE tenant_id = NEW.tenant_id AND device_id = NEW.device_id AND key_id = {DEVICE_KEY};
    SELECT key_ids INTO held FROM {ROWS_TABLE} WHERE series_id = device_series AND ts = NEW.ts;
    IF NEW.key_id = ANY(held) THEN
        RAISE unique_violation USING MESSAGE = format('duplicate reading: key %s at %s', NEW.key_id, NEW.ts);
    END IF;
    IF held IS NULL AND NEW.value IS NOT NULL AND NEW.text_value IS NULL AND NEW.bool_value IS NULL
       AND NEW.json_value IS NULL THEN
        INSERT INTO {ROWS_TABLE} (tenant_id, series_id, ts, key_ids, vals)
        VALUES (NEW.tenant_id, device_series, NEW.ts, ARRAY[NEW.key_id], ARRAY[NEW.value]);
    ELSE
        INSERT INTO {POINTS_TABLE} (tenant_id, series_id, ts, value, text_value, bool_value, json_value)
        VALUES (NEW.tenant_id, series, NEW.ts, NEW.value, NEW.text_value, NEW.bool_value, NEW.json_value);
    END IF;
    RETURN NEW;
END $$"""
DELETE_DEVICE_ROWS = f"""
CREATE OR REPLACE FUNCTION gito_delete_device_telemetry(tenant uuid, device uuid) RETURNS void LANGUAGE sql AS $$
    DELETE FROM {POINTS_TABLE} WHERE tenant_id = tenant AND series_id IN (
        SELECT id FROM telemetry_series WHERE tenant_id = tenant AND device_id = device);
    DELETE FROM {ROWS_TABLE} WHERE tenant_id = tenant AND series_id IN (
        SELECT id FROM telemetry_series WHERE tenant_id = tenant AND device_id = device AND key_id = {DEVICE_KEY});
    DELETE FROM telemetry_series WHERE tenant_id = tenant AND device_id = device;
$$"""
