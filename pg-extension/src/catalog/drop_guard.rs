//! Dropping a tracked table is refused: its rows vanish without a row trigger
//! firing, so every key it had cached would be served stale (or resurrect under a
//! re-created table of the same name) for as long as Redis keeps it. The error
//! names the safe way: `vset.untrack` first, which writes a `del` for every row's
//! key, then DROP. The check is an `sql_drop` event trigger (it sees every dropped
//! object, including tables dropped by `DROP SCHEMA … CASCADE` or `DROP OWNED`);
//! raising there rolls the whole DROP back. Columns of tracked tables dropped by
//! anything but ALTER TABLE (`DROP TYPE … CASCADE` and the like) are refused the same
//! way: the DDL guard writes the dels for ALTER TABLE only.

pgrx::extension_sql!(
    r#"
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
"#,
    name = "vset_drop_guard",
    requires = ["vset_catalog"]
);
