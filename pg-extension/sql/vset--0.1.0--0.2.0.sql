-- vset 0.1.0 -> 0.2.0 (ALTER EXTENSION vset UPDATE). Run by PostgreSQL in one
-- transaction with search_path = vset, pg_temp; tracked tables, their triggers and
-- waiting outbox rows are kept. What changed (pg-extension/README.md):
--   * security model: vset.tracked is written only by track/untrack (as the
--     extension owner) and read per table privilege (row-level security); trigger
--     functions are not executable by PUBLIC; vset.status() lists only what the
--     caller may read (now a SQL wrapper over the Rust vset._status()).
--   * DROP of a tracked table is refused (untrack first: it deletes the table's
--     cached keys); the sql_drop event trigger that forgot dropped tables is replaced.
--   * waking relays: vset.wait_for_commit() and vset.wakeup() (shared memory when
--     vset is in shared_preload_libraries), vset.notify setting (in the library).
\echo Use "ALTER EXTENSION vset UPDATE TO '0.2.0'" to load this file. \quit

ALTER TABLE vset.tracked ENABLE ROW LEVEL SECURITY;
CREATE POLICY readable_tables ON vset.tracked FOR SELECT
    USING (pg_catalog.has_table_privilege(tbl::oid, 'SELECT') IS TRUE);

REVOKE ALL ON FUNCTION vset.capture() FROM PUBLIC;
REVOKE ALL ON FUNCTION vset.refuse_truncate() FROM PUBLIC;

DROP FUNCTION vset.status();
CREATE FUNCTION vset."_status"() RETURNS TABLE (
	"tbl" oid,
	"mode" TEXT,
	"key_template" TEXT,
	"channel" TEXT,
	"rows_waiting" bigint,
	"oldest_waiting" interval
)
STRICT
LANGUAGE c
AS 'MODULE_PATHNAME', 'status_internal_wrapper';
CREATE FUNCTION vset.status()
RETURNS TABLE(tbl regclass, mode text, key_template text, channel text,
              rows_waiting bigint, oldest_waiting interval)
LANGUAGE sql STABLE AS $$
    SELECT s.tbl::regclass, s.mode, s.key_template, s.channel, s.rows_waiting, s.oldest_waiting
      FROM vset._status() s
$$;
COMMENT ON FUNCTION vset.status() IS 'Per table the caller may read: tracked mode, key template, channel, outbox rows waiting, age of the oldest';

CREATE FUNCTION vset."wait_for_commit"(
	"seen" bigint,
	"timeout_ms" INT
) RETURNS bigint
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'wait_for_commit_wrapper';

CREATE FUNCTION vset."wakeup"() RETURNS TEXT
STRICT STABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'wakeup_wrapper';

DROP EVENT TRIGGER vset_forget_dropped_tables;
DROP FUNCTION vset.forget_dropped_tables();
CREATE FUNCTION vset.refuse_dropping_tracked_tables() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    dropped text;
BEGIN
    SELECT d.object_identity INTO dropped
      FROM pg_catalog.pg_event_trigger_dropped_objects() d
      JOIN vset.tracked t ON t.tbl::oid = d.objid
     WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0
     LIMIT 1;
    IF dropped IS NOT NULL THEN
        RAISE EXCEPTION 'vset: DROP of tracked table % is refused: its cached rows would stay in Redis, stale', dropped
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = format('SELECT vset.untrack(%L) first (it deletes the cached keys of every row), then DROP it.', dropped);
    END IF;
    -- Columns dropped by anything but ALTER TABLE (DROP TYPE/DOMAIN/FUNCTION … CASCADE):
    -- the DDL guard (vset_guard_ddl) never saw them, so no del was written.
    IF TG_TAG NOT IN ('ALTER TABLE', 'ALTER FOREIGN TABLE', 'ALTER VIEW', 'ALTER MATERIALIZED VIEW') THEN
        SELECT d.object_identity INTO dropped
          FROM pg_catalog.pg_event_trigger_dropped_objects() d
          JOIN vset.tracked t ON t.tbl::oid = d.objid
                              OR t.tbl::oid = pg_catalog.pg_partition_root(d.objid)::oid
         WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objsubid > 0
         LIMIT 1;
        IF dropped IS NOT NULL THEN
            RAISE EXCEPTION 'vset: % drops column % of a tracked table: its cached rows would keep it', TG_TAG, dropped
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Untrack the table first (it deletes the cached keys of every row), or drop the column with ALTER TABLE.';
        END IF;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION vset.refuse_dropping_tracked_tables() FROM PUBLIC;
CREATE EVENT TRIGGER vset_refuse_dropping_tracked_tables ON sql_drop
    EXECUTE FUNCTION vset.refuse_dropping_tracked_tables();

-- The claim starts at a low-water mark instead of the index's left edge
-- (src/api/claim_low_water.rs).
CREATE FUNCTION vset."_claim_low_water"() RETURNS bigint
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'claim_low_water_wrapper';
-- Removes and returns up to max outbox rows that no other relay has locked, in id
-- order, inside the caller's transaction: apply them, then COMMIT (done) or ROLLBACK
-- (they become claimable again). A crash of the relay is a rollback.
-- The scan starts at the low-water mark (no claimable id below it, see
-- vset._claim_low_water), not at the left edge of the index, which holds every
-- claimed-and-deleted record while something holds the xmin horizon back. The
-- rows are deleted by ctid (locked, so it cannot change): a join on id would be
-- planned as a hash join over a scan of the whole outbox, backlog and dead rows.
CREATE OR REPLACE FUNCTION vset.claim(max int) RETURNS SETOF vset.outbox
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    low_water bigint;
BEGIN
    IF claim.max IS NULL OR claim.max < 1 THEN
        RAISE EXCEPTION 'vset: claim(max) needs max >= 1, not %', coalesce(claim.max::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    low_water := vset._claim_low_water();
    RETURN QUERY
        WITH claimed AS (
            DELETE FROM vset.outbox o
             WHERE o.ctid = ANY (ARRAY(SELECT i.ctid FROM vset.outbox i
                                        WHERE i.id >= low_water
                                        ORDER BY i.id
                                        LIMIT claim.max
                                        FOR UPDATE SKIP LOCKED))
            RETURNING o.*)
        SELECT c.id, c.tbl, c.cache_key, c.op, c.version, c.payload, c.created_at
          FROM claimed c ORDER BY c.id;
END
$$;

-- DDL on tracked tables: the del records it needs, or a refusal
-- (src/catalog/ddl_guard.rs).
CREATE FUNCTION vset.guard_ddl() RETURNS event_trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'vset_guard_ddl';
COMMENT ON FUNCTION vset.guard_ddl() IS 'ddl_command_start: writes the del records DDL on a tracked table needs, or refuses DDL that would bypass capture';
REVOKE ALL ON FUNCTION vset.guard_ddl() FROM PUBLIC;
CREATE EVENT TRIGGER vset_guard_ddl ON ddl_command_start
    WHEN TAG IN ('ALTER TABLE', 'DROP TABLE', 'CREATE TABLE', 'CREATE TRIGGER', 'DROP TRIGGER',
                 'ALTER TRIGGER', 'ALTER VIEW', 'ALTER MATERIALIZED VIEW', 'ALTER FOREIGN TABLE',
                 'ALTER TYPE')
    EXECUTE FUNCTION vset.guard_ddl();

-- vset.fill binds vset._fill's C symbol directly (a SQL wrapper is planned again on
-- every call).
CREATE OR REPLACE FUNCTION vset.fill(tbl regclass, VARIADIC key text[])
RETURNS TABLE(cache_key text, version bigint, payload text)
LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'fill_internal_wrapper';

-- Partitions added after track get the TRUNCATE guard (src/catalog/partition_guard.rs).
CREATE FUNCTION vset.guard_new_partitions() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    part regclass;
BEGIN
    FOR part IN
        SELECT DISTINCT tree.relid
          FROM pg_catalog.pg_event_trigger_ddl_commands() c
          CROSS JOIN LATERAL pg_catalog.pg_partition_ancestors(c.objid) up
          JOIN vset.tracked t ON t.tbl = up.relid
          CROSS JOIN LATERAL pg_catalog.pg_partition_tree(t.tbl) tree
         WHERE c.classid = 'pg_catalog.pg_class'::regclass
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
                            WHERE g.tgrelid = tree.relid AND g.tgname = 'vset_no_truncate')
    LOOP
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER vset_no_truncate BEFORE TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION vset.refuse_truncate()',
            part);
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION vset.guard_new_partitions() FROM PUBLIC;
CREATE EVENT TRIGGER vset_guard_new_partitions ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
    EXECUTE FUNCTION vset.guard_new_partitions();
