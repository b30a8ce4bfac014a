//! The extension's own objects: the version sequence, the outbox and the catalog of
//! tracked tables. Created first (`bootstrap`), before any function refers to them.

pgrx::extension_sql!(
    r#"
-- The one version source. CACHE 1 is what makes versions follow commit order
-- (docs/design.md, invariant 2): with a per-backend cache, a backend could hand out a
-- value it pre-allocated long ago, *after* another backend handed out a larger one,
-- so a later-committing writer of the same row could carry the smaller version.
CREATE SEQUENCE vset.version_seq AS bigint MINVALUE 1 START 1 CACHE 1 NO CYCLE;

-- One row per captured change. Columns and their order are a contract: relays in
-- other languages read them. `id` orders claims; vset sets it to the row's version
-- (a separate column so relays never need to rely on that).
CREATE TABLE vset.outbox (
    id         bigint      NOT NULL PRIMARY KEY,
    tbl        regclass    NOT NULL,
    cache_key  text        NOT NULL,
    op         text        NOT NULL CHECK (op IN ('set', 'del')),
    version    bigint      NOT NULL,
    payload    text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((op = 'set') = (payload IS NOT NULL))
) USING heap;
-- A queue table: vacuum it eagerly so applied-and-deleted rows do not pile up.
ALTER TABLE vset.outbox SET (autovacuum_vacuum_scale_factor = 0.0,
                             autovacuum_vacuum_threshold = 1000);

-- What is tracked and how. The trigger carries the same settings as its arguments
-- (so partitions' cloned triggers and pg_dump'ed triggers need no lookup).
CREATE TABLE vset.tracked (
    tbl          regclass    NOT NULL PRIMARY KEY,
    key_template text        NOT NULL,
    key_columns  text[]      NOT NULL,
    columns      text[],
    mode         text        NOT NULL CHECK (mode IN ('set', 'invalidate')),
    channel      text        NOT NULL,
    tracked_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE vset.tracked IS 'Tables tracked by vset (vset.track/untrack); key_columns are the placeholders of key_template in order; columns NULL = every column';
COMMENT ON TABLE vset.outbox IS 'Captured changes waiting for a relay (vset.claim); op set carries the JSON payload, op del none';

-- pg_dump keeps what is tracked, the captured-but-undelivered changes and, above
-- all, the sequence position: a restored database handing out versions below the
-- ones Redis already holds would have every new write rejected as stale.
SELECT pg_catalog.pg_extension_config_dump('vset.tracked', '');
SELECT pg_catalog.pg_extension_config_dump('vset.outbox', '');
SELECT pg_catalog.pg_extension_config_dump('vset.version_seq', '');

-- The outbox is not readable by PUBLIC; a relay role gets what claim() needs:
--   GRANT USAGE ON SCHEMA vset TO relay;
--   GRANT SELECT, UPDATE, DELETE ON vset.outbox TO relay;
REVOKE ALL ON vset.outbox FROM PUBLIC;
REVOKE ALL ON vset.version_seq FROM PUBLIC;
REVOKE ALL ON vset.tracked FROM PUBLIC;
GRANT SELECT ON vset.tracked TO PUBLIC;
-- Only vset.track/untrack write vset.tracked (as the extension owner, after checking
-- that the caller owns the table); a role reads the rows of tables it may SELECT.
ALTER TABLE vset.tracked ENABLE ROW LEVEL SECURITY;
CREATE POLICY readable_tables ON vset.tracked FOR SELECT
    USING (pg_catalog.has_table_privilege(tbl::oid, 'SELECT') IS TRUE);
GRANT USAGE ON SCHEMA vset TO PUBLIC;
"#,
    name = "vset_catalog",
    bootstrap
);
