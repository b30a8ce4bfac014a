//! The relay API, plain SQL so a relay in any language needs only SQL + `VSET`:
//! `vset.claim(max)` and `vset.current_version()` (`vset.status()` is in [`super::status`]).

pgrx::extension_sql!(
    r#"
-- Removes and returns up to max outbox rows that no other relay has locked, in id
-- order, inside the caller's transaction: apply them, then COMMIT (done) or ROLLBACK
-- (they become claimable again). A crash of the relay is a rollback.
-- The scan starts at the low-water mark (no claimable id below it, see
-- vset._claim_low_water), not at the left edge of the index, which holds every
-- claimed-and-deleted record while something holds the xmin horizon back. The
-- rows are deleted by ctid (locked, so it cannot change): a join on id would be
-- planned as a hash join over a scan of the whole outbox, backlog and dead rows.
CREATE FUNCTION vset.claim(max int) RETURNS SETOF vset.outbox
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

"#,
    name = "vset_relay_api",
    requires = ["vset_catalog", claim_low_water]
);
