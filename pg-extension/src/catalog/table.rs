//! Facts about a table that `track`/`untrack`/`fill` check before acting.

use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiTupleTable};

use crate::error::VsetError;

#[derive(Debug, Clone)]
pub struct TableInfo {
    pub oid: pg_sys::Oid,
    pub schema: String,
    pub name: String,
    /// `schema.table`, each part quoted as needed: safe to splice into SQL.
    pub qualified: String,
    pub relkind: String,
    /// The root of the partition tree, when this table is a partition.
    pub partition_root: Option<String>,
    /// The current user has the privileges of the table's owner.
    pub owned: bool,
    /// `p` permanent, `u` unlogged, `t` temporary.
    pub persistence: String,
}

impl TableInfo {
    pub fn load(client: &SpiClient<'_>, oid: pg_sys::Oid) -> Result<TableInfo, VsetError> {
        let row = client
            .select(
                r#"
            SELECT n.nspname::text, c.relname::text, c.relkind::text,
                   pg_catalog.format('%I.%I', n.nspname, c.relname),
                   CASE WHEN c.relispartition
                        THEN pg_catalog.pg_partition_root(c.oid)::regclass::text END,
                   pg_catalog.pg_has_role(c.relowner, 'USAGE'),
                   c.relpersistence::text
              FROM pg_catalog.pg_class c
              JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE c.oid = $1
            "#,
                Some(1),
                &[oid.into()],
            )?
            .first();
        if row.is_empty() {
            return Err(VsetError::NotATable {
                table: format!("oid {}", oid.to_u32()),
                kind: "missing relation",
            });
        }
        let text = |i: usize| -> Result<String, VsetError> {
            Ok(row.get::<String>(i)?.unwrap_or_default())
        };
        Ok(TableInfo {
            oid,
            schema: text(1)?,
            name: text(2)?,
            relkind: text(3)?,
            qualified: text(4)?,
            partition_root: row.get::<String>(5)?,
            owned: row.get::<bool>(6)?.unwrap_or(false),
            persistence: text(7)?,
        })
    }

    pub fn kind_name(&self) -> &'static str {
        match self.relkind.as_str() {
            "r" => "table",
            "p" => "partitioned table",
            "v" => "view",
            "m" => "materialized view",
            "f" => "foreign table",
            "S" => "sequence",
            "i" | "I" => "index",
            "c" => "composite type",
            "t" => "TOAST table",
            _ => "relation of another kind",
        }
    }

    pub fn is_trackable_kind(&self) -> bool {
        self.relkind == "r" || self.relkind == "p"
    }

    pub fn is_reserved(&self) -> bool {
        matches!(
            self.schema.as_str(),
            "vset" | "pg_catalog" | "information_schema" | "pg_toast"
        )
    }

    /// Live column names in attribute order.
    pub fn columns(&self, client: &SpiClient<'_>) -> Result<Vec<String>, VsetError> {
        live_columns(client, self.oid)
    }

    /// What a query reading the table's tracked rows names in FROM: the table itself
    /// when partitioned (its partitions are tracked with it), else `ONLY` the table
    /// (a plain table's inheritance children are not: capture does not fire for them).
    pub fn rows_source(&self) -> String {
        if self.relkind == "p" {
            self.qualified.clone()
        } else {
            format!("ONLY {}", self.qualified)
        }
    }

    /// Every partition below this table (all levels), quoted and qualified; none
    /// unless it is a partitioned table.
    pub fn partitions(&self, client: &SpiClient<'_>) -> Result<Vec<String>, VsetError> {
        if self.relkind != "p" {
            return Ok(Vec::new());
        }
        let rows = client.select(
            "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
               FROM pg_catalog.pg_partition_tree($1) t
               JOIN pg_catalog.pg_class c ON c.oid = t.relid
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE t.relid <> $1",
            None,
            &[self.oid.into()],
        )?;
        texts(rows)
    }
}

/// Live column names of the table `oid` in attribute order.
pub fn live_columns(client: &SpiClient<'_>, oid: pg_sys::Oid) -> Result<Vec<String>, VsetError> {
    let rows = client.select(
        "SELECT attname::text FROM pg_catalog.pg_attribute
          WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        None,
        &[oid.into()],
    )?;
    texts(rows)
}

/// The non-null values of a one-column text result.
fn texts(rows: SpiTupleTable<'_>) -> Result<Vec<String>, VsetError> {
    let mut out = Vec::new();
    for row in rows {
        if let Some(c) = row.get::<String>(1)? {
            out.push(c);
        }
    }
    Ok(out)
}
