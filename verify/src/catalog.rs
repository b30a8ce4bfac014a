//! What to check: the tables listed in `vset.tracked`, each with the SQL that
//! renders a row's cache key and payload exactly as the capture trigger does.

use postgres::Client;

use crate::error::{Result, VerifyError};
use crate::template::{quote_ident, KeyTemplate};

/// One tracked table, ready to be queried.
#[derive(Debug, Clone)]
pub struct TrackedTable {
    /// `regclass` text form, e.g. `users` or `"Weird"."t"`: usable in FROM as is.
    pub table: String,
    pub template: KeyTemplate,
    /// SQL text expression: the row's payload, as JSON text (alias `t`).
    pub payload_sql: String,
    /// `'invalidate'` tables only ever write deletes: nothing may be cached by the
    /// relay, but read-miss fills may cache the current payload.
    pub mode: String,
}

impl TrackedTable {
    /// SQL text expression for the cache key (alias `t`).
    pub fn key_sql(&self) -> String {
        self.template.sql()
    }
}

/// Reads `vset.tracked`. Columns as created by the extension (pg-extension/src):
/// `tbl regclass, key_template text, columns text[]` (NULL = every column), `mode text`.
pub fn load(client: &mut Client) -> Result<Vec<TrackedTable>> {
    let rows = client.query(
        "SELECT tbl::text, key_template, columns, mode FROM vset.tracked ORDER BY tbl::oid",
        &[],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let table: String = row.try_get(0)?;
        let template: String = row.try_get(1)?;
        let columns: Option<Vec<String>> = row.try_get(2)?;
        let mode: String = row.try_get(3)?;
        let template = KeyTemplate::parse(&table, &template)?;
        if matches!(&columns, Some(c) if c.is_empty()) {
            return Err(VerifyError::Catalog {
                table,
                reason: "empty payload column list".into(),
            });
        }
        out.push(TrackedTable {
            payload_sql: payload_sql(columns.as_deref()),
            table,
            template,
            mode,
        });
    }
    Ok(out)
}

/// JSON object of the chosen columns (every column when `None`), as text.
/// A sub-select keeps column names as JSON keys without json_build_object's
/// 100-argument limit.
pub fn payload_sql(columns: Option<&[String]>) -> String {
    match columns {
        None => "row_to_json(t)::text".to_string(),
        Some(cols) => {
            let list: Vec<String> = cols
                .iter()
                .map(|c| format!("t.{}", quote_ident(c)))
                .collect();
            format!(
                "(SELECT row_to_json(p)::text FROM (SELECT {}) p)",
                list.join(", ")
            )
        }
    }
}
