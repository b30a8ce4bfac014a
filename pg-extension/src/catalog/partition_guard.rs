//! Partitions added to a tracked table after `vset.track` (`CREATE TABLE … PARTITION
//! OF`, `ATTACH PARTITION`) get the row trigger from PostgreSQL (it clones row
//! triggers) but not the statement-level `vset_no_truncate`, so a TRUNCATE of the
//! new partition itself would empty it without a row trigger firing, leaving its
//! cached rows stale. A `ddl_command_end` event trigger adds the missing guard to
//! every partition below a tracked table the statement touched, as the extension
//! owner (the function is SECURITY DEFINER with a pinned search_path).

pgrx::extension_sql!(
    r#"
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
"#,
    name = "vset_partition_guard",
    requires = ["vset_catalog"]
);
