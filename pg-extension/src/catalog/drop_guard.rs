//! Keeps `vset.tracked` in step with the tables: dropping a tracked table (which
//! drops its triggers with it) also removes its catalog row, so `vset.status()` does
//! not list ghosts. Records already waiting in the outbox stay and are delivered.

pgrx::extension_sql!(
    r#"
CREATE FUNCTION vset.forget_dropped_tables() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM vset.tracked t
     WHERE t.tbl::oid IN (SELECT d.objid FROM pg_catalog.pg_event_trigger_dropped_objects() d
                           WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0);
END
$$;
REVOKE ALL ON FUNCTION vset.forget_dropped_tables() FROM PUBLIC;
CREATE EVENT TRIGGER vset_forget_dropped_tables ON sql_drop
    EXECUTE FUNCTION vset.forget_dropped_tables();
"#,
    name = "vset_cleanup",
    requires = ["vset_catalog"]
);
