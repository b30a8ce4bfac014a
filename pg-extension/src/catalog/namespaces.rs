//! Key namespaces and key types, checked against the catalog when a table is
//! tracked and again whenever its capture plan is rebuilt (after any change to the
//! table): a column type changed by `ALTER TABLE … TYPE` or a column renamed
//! after `track` can otherwise widen what a template renders.

use pgrx::pg_sys;
use pgrx::spi::SpiClient;

use crate::error::VsetError;
use crate::trigger::key::KeyTemplate;
use crate::trigger::key_namespace::{can_overlap, ValueClass};

/// Built-in type oids (pg_type.dat) a class or a refusal depends on.
const INT8OID: u32 = 20;
const INT2OID: u32 = 21;
const INT4OID: u32 = 23;
const UUIDOID: u32 = 2950;
const MONEYOID: u32 = 790;
/// regproc, regprocedure, regoper, regoperator, regclass, regtype, regconfig,
/// regdictionary, regnamespace, regrole, regcollation: their text form follows
/// `search_path` and `quote_all_identifiers`.
const REG_OIDS: [u32; 11] = [
    24, 2202, 2203, 2204, 2205, 2206, 3734, 3769, 4089, 4096, 4191,
];

fn base_type(type_oid: pg_sys::Oid) -> u32 {
    // SAFETY: syscache lookup; an unknown oid comes back unchanged.
    unsafe { pg_sys::getBaseType(type_oid) }.to_u32()
}

/// The value class of a column of type `type_oid` (domains by their base type;
/// by oid, so a user type named `int8` in another schema is `Any`).
pub fn class_of(type_oid: pg_sys::Oid) -> ValueClass {
    match base_type(type_oid) {
        INT2OID | INT4OID | INT8OID => ValueClass::Integer,
        UUIDOID => ValueClass::Uuid,
        _ => ValueClass::Any,
    }
}

/// Type oids of `columns` of table `tbl`, in that order (InvalidOid if missing).
pub fn column_types(
    client: &SpiClient<'_>,
    tbl: pg_sys::Oid,
    columns: &[String],
) -> Result<Vec<pg_sys::Oid>, VsetError> {
    let mut out = Vec::with_capacity(columns.len());
    for c in columns {
        let rows = client.select(
            "SELECT atttypid FROM pg_catalog.pg_attribute
              WHERE attrelid = $1 AND attname = $2 AND attnum > 0 AND NOT attisdropped",
            Some(1),
            &[tbl.into(), c.clone().into()],
        )?;
        // A column renamed or dropped since track: no type (its class is Any).
        let ty = if rows.is_empty() {
            None
        } else {
            rows.first().get_one::<pg_sys::Oid>()?
        };
        out.push(ty.unwrap_or(pg_sys::InvalidOid));
    }
    Ok(out)
}

/// Refuses key columns whose text form depends on session settings vset does not
/// pin (`reg*` types follow search_path; `money` follows lc_monetary).
pub fn check_key_types(
    client: &SpiClient<'_>,
    tbl: pg_sys::Oid,
    table: &str,
    columns: &[String],
) -> Result<(), VsetError> {
    for (column, ty) in columns.iter().zip(column_types(client, tbl, columns)?) {
        let base = base_type(ty);
        if base == MONEYOID || REG_OIDS.contains(&base) {
            return Err(VsetError::KeyTypeDependsOnSettings {
                table: table.to_string(),
                column: column.clone(),
            });
        }
    }
    Ok(())
}

/// Refuses `template` for table `tbl` when another tracked table's template can
/// render one of its keys (see [`crate::trigger::key_namespace`]). Call as the
/// extension owner, so every tracked table is seen; the other table is named only
/// to a `caller` who may read it.
pub fn refuse_overlapping_keys(
    client: &SpiClient<'_>,
    tbl: pg_sys::Oid,
    table: &str,
    template: &KeyTemplate,
    caller: pg_sys::Oid,
) -> Result<(), VsetError> {
    let ours: Vec<ValueClass> = column_types(client, tbl, template.columns())?
        .into_iter()
        .map(class_of)
        .collect();
    let others = client.select(
        "SELECT t.tbl::oid, t.tbl::text, t.key_template, t.key_columns,
                has_table_privilege($2, t.tbl::oid, 'SELECT') IS TRUE
           FROM vset.tracked t
           -- Only tables that exist (a row can outlive its table when DROP ran with
           -- session_replication_role = replica, which skips event triggers).
           JOIN pg_catalog.pg_class c ON c.oid = t.tbl::oid
          WHERE t.tbl::oid <> $1",
        None,
        &[tbl.into(), caller.into()],
    )?;
    let mut rows = Vec::new();
    for row in others {
        rows.push((
            row.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::InvalidOid),
            row.get::<String>(2)?.unwrap_or_default(),
            row.get::<String>(3)?.unwrap_or_default(),
            row.get::<Vec<String>>(4)?.unwrap_or_default(),
            row.get::<bool>(5)?.unwrap_or(false),
        ));
    }
    for (oid, name, other_text, other_columns, visible) in rows {
        // A template that no longer parses cannot capture either; nothing to guard.
        let Ok(other) = KeyTemplate::parse(&other_text) else {
            continue;
        };
        let theirs: Vec<ValueClass> = column_types(client, oid, &other_columns)?
            .into_iter()
            .map(class_of)
            .collect();
        if can_overlap(template, &ours, &other, &theirs) {
            return Err(VsetError::KeyOverlap {
                table: table.to_string(),
                template: template.to_string(),
                other: if visible {
                    format!("{name} (template {other_text:?})")
                } else {
                    "that of a tracked table you may not read".into()
                },
            });
        }
    }
    Ok(())
}
