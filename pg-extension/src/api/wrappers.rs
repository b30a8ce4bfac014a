//! The SQL signatures users call (`regclass` arguments, defaults, `VARIADIC`) over
//! the Rust entry points `vset._track`, `vset._untrack` and `vset._fill` (`vset.fill`
//! binds `_fill`'s C symbol directly).

pgrx::extension_sql!(
    r#"
CREATE FUNCTION vset.track(tbl regclass, key_template text DEFAULT NULL, columns text[] DEFAULT NULL,
                           mode text DEFAULT 'set', channel text DEFAULT 'vset',
                           replace boolean DEFAULT false)
RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT vset._track(tbl::oid, key_template, columns, mode, channel, replace)
$$;
COMMENT ON FUNCTION vset.track(regclass, text, text[], text, text, boolean) IS
  'Start capturing a table into vset.outbox; returns the key template in use';

CREATE FUNCTION vset.untrack(tbl regclass) RETURNS void LANGUAGE sql VOLATILE AS $$
    SELECT vset._untrack(tbl::oid)
$$;
COMMENT ON FUNCTION vset.untrack(regclass) IS 'Stop capturing a table (drops its vset triggers and catalog row; waiting records stay)';

-- The Rust entry point of vset._fill itself (regclass is an oid, the VARIADIC
-- argument a text[]): a SQL wrapper would be planned again on every call, which
-- after a cold start is every read.
CREATE FUNCTION vset.fill(tbl regclass, VARIADIC key text[])
RETURNS TABLE(cache_key text, version bigint, payload text)
LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'fill_internal_wrapper';
COMMENT ON FUNCTION vset.fill(regclass, text[]) IS
  'Read-miss fill: current row''s cache key, a version drawn under FOR SHARE, and payload; no row if absent';

-- Per table: how it is tracked, how many records wait for a relay, how long the
-- oldest has waited ('untracked': records left by a table no longer tracked). Lists
-- only tables the caller may SELECT, or all of them for roles that may read the outbox.
CREATE FUNCTION vset.status()
RETURNS TABLE(tbl regclass, mode text, key_template text, channel text,
              rows_waiting bigint, oldest_waiting interval)
LANGUAGE sql STABLE AS $$
    SELECT s.tbl::regclass, s.mode, s.key_template, s.channel, s.rows_waiting, s.oldest_waiting
      FROM vset._status() s
$$;
COMMENT ON FUNCTION vset.status() IS 'Per table the caller may read: tracked mode, key template, channel, outbox rows waiting, age of the oldest';

-- Functions that run only as triggers: CREATE TRIGGER checks EXECUTE, so only
-- vset.track (which creates them as the extension owner) can install them.
REVOKE ALL ON FUNCTION vset.capture() FROM PUBLIC;
REVOKE ALL ON FUNCTION vset.refuse_truncate() FROM PUBLIC;

-- Tracking is for table owners and administrators.
REVOKE ALL ON FUNCTION vset.track(regclass, text, text[], text, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION vset.untrack(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION vset._track(oid, text, text[], text, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION vset._untrack(oid) FROM PUBLIC;
"#,
    name = "vset_sql_api",
    // After every #[pg_extern]: the wrappers call vset._track/_untrack/_fill.
    finalize
);
