-- vset 0.1.0 -> 0.2.0 (ALTER EXTENSION vset UPDATE). Run by PostgreSQL in one
-- transaction with search_path = vset, pg_temp; tracked tables, their triggers and
-- waiting outbox rows are kept. What changed (pg-extension/README.md):
--   * security model: vset.tracked is written only by track/untrack (as the
--     extension owner) and read per table privilege (row-level security); trigger
--     functions are not executable by PUBLIC; vset.status() lists only what the
--     caller may read (now a SQL wrapper over the Rust vset._status()).
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
