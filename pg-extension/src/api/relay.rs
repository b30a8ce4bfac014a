//! The relay API, plain SQL so a relay in any language needs only SQL + `VSET`:
//! `vset.claim(max)` and `vset.current_version()`; and `vset.status()` for operators.

pgrx::extension_sql!(
    r#"
-- Removes and returns up to max outbox rows that no other relay has locked, in id
-- order, inside the caller's transaction: apply them, then COMMIT (done) or ROLLBACK
-- (they become claimable again). A crash of the relay is a rollback.
CREATE FUNCTION vset.claim(max int) RETURNS SETOF vset.outbox
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF claim.max IS NULL OR claim.max < 1 THEN
        RAISE EXCEPTION 'vset: claim(max) needs max >= 1, not %', coalesce(claim.max::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
        WITH claimed AS (
            DELETE FROM vset.outbox o
             WHERE o.id IN (SELECT i.id FROM vset.outbox i
                             ORDER BY i.id
                             LIMIT claim.max
                             FOR UPDATE SKIP LOCKED)
            RETURNING o.*)
        SELECT c.id, c.tbl, c.cache_key, c.op, c.version, c.payload, c.created_at
          FROM claimed c ORDER BY c.id;
END
$$;
COMMENT ON FUNCTION vset.claim(int) IS 'Remove and return up to max unlocked outbox rows (FOR UPDATE SKIP LOCKED), id order, in the caller''s transaction';

-- The version sequence's last handed-out value (0 before the first). A relay that
-- finds Redis cold sends VFLOOR <this>: every version drawn so far is then at or
-- below the floor, so an older value can only miss, never come back stale.
CREATE FUNCTION vset.current_version() RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM vset.version_seq
$$;
COMMENT ON FUNCTION vset.current_version() IS 'Last version handed out by vset.version_seq (0 if none); relays use it for VFLOOR on a cold Redis';
GRANT EXECUTE ON FUNCTION vset.current_version() TO PUBLIC;

-- Per table: how it is tracked, how many records wait for a relay, and how long the
-- oldest has waited. Tables with leftover records but no longer tracked show mode
-- 'untracked'.
CREATE FUNCTION vset.status()
RETURNS TABLE(tbl regclass, mode text, key_template text, channel text,
              rows_waiting bigint, oldest_waiting interval)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(t.tbl, o.tbl), coalesce(t.mode, 'untracked'), t.key_template, t.channel,
           coalesce(o.n, 0), o.age
      FROM vset.tracked t
      FULL JOIN (SELECT ob.tbl, count(*) AS n, now() - min(ob.created_at) AS age
                   FROM vset.outbox ob GROUP BY ob.tbl) o ON o.tbl = t.tbl
     ORDER BY coalesce(t.tbl, o.tbl)::text
$$;
COMMENT ON FUNCTION vset.status() IS 'Per table: tracked mode, key template, channel, outbox rows waiting, age of the oldest';
"#,
    name = "vset_relay_api",
    requires = ["vset_catalog"]
);
