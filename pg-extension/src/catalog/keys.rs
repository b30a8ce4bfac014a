//! Which column sets of a table identify its rows: primary keys and UNIQUE indexes
//! that are immediate (not deferrable), not partial, without expressions, valid, and
//! whose columns are all NOT NULL. Only such a key serialises writers of the same
//! row (row lock or unique-index wait) before the version is drawn (invariant 2).

use pgrx::prelude::*;
use pgrx::spi::SpiClient;

use crate::error::VsetError;

/// One usable key of a table.
#[derive(Debug, Clone)]
pub struct UniqueKey {
    /// Key columns in index order.
    pub columns: Vec<String>,
}

impl UniqueKey {
    /// Same column set (order does not matter for identity).
    pub fn same_columns(&self, other: &[String]) -> bool {
        self.columns.len() == other.len() && other.iter().all(|c| self.columns.contains(c))
    }
}

/// The usable keys of `table`, the primary key first, then fewest columns, then by
/// index name (so the default key choice is stable).
pub fn usable_keys(
    client: &SpiClient<'_>,
    table: pg_sys::Oid,
) -> Result<Vec<UniqueKey>, VsetError> {
    let rows = client.select(
        r#"
        SELECT array_agg(a.attname::text ORDER BY k.ord)
          FROM pg_catalog.pg_index i
          JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
          CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
         WHERE i.indrelid = $1
           AND i.indisunique AND i.indimmediate AND i.indisvalid
           AND i.indpred IS NULL AND i.indexprs IS NULL
           AND k.ord <= i.indnkeyatts
         GROUP BY i.indexrelid, i.indisprimary, ic.relname
        HAVING bool_and(a.attnotnull)
         ORDER BY i.indisprimary DESC, count(*), ic.relname
        "#,
        None,
        &[table.into()],
    )?;
    let mut keys = Vec::new();
    for row in rows {
        if let Some(columns) = row.get::<Vec<String>>(1)? {
            keys.push(UniqueKey { columns });
        }
    }
    Ok(keys)
}

/// `(a, b), (email)` for error messages.
pub fn describe(keys: &[UniqueKey]) -> String {
    if keys.is_empty() {
        return "none".into();
    }
    keys.iter()
        .map(|k| format!("({})", k.columns.join(", ")))
        .collect::<Vec<_>>()
        .join(", ")
}
