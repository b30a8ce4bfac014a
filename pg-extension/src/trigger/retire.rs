//! `del` records for every row of a table under a template it is leaving: when
//! `vset.untrack` stops maintaining its keys, or `vset.track(…, replace => true)`
//! changes its template or payload columns. Without them, every key cached
//! under the old template (or with the old payload shape) would stay as it was, and
//! be served stale for as long as Redis keeps it; with them, the relay deletes each
//! (raising its floor) and the next read fills it the new way.
//!
//! One record per row, written with the capture trigger's own writer and rendering
//! settings; the rows are read in batches through a cursor, so a large table costs
//! time and outbox space (one `del` per row), not memory. For a table of many
//! millions of rows, deleting its prefix in Redis yourself may be cheaper: untrack
//! does not offer to skip this.

use std::ffi::CString;

use pgrx::spi::{quote_identifier, SpiClient};

use crate::canonical::CanonicalOutput;
use crate::catalog::tracked::Tracked;
use crate::error::VsetError;
use crate::trigger::key::KeyTemplate;
use crate::trigger::outbox_write::{vset_objects, write_record, Op};
use crate::wakeup;

/// Rows read per cursor fetch.
const BATCH: i64 = 10_000;

/// Writes a `del` for the key of every row of `tbl` (`qualified`: its quoted name)
/// under `tracked`'s template; returns how many. Run as the extension owner, so
/// row-level security hides no row.
pub fn del_every_row(
    client: &SpiClient<'_>,
    tbl: pgrx::pg_sys::Oid,
    qualified: &str,
    tracked: &Tracked,
) -> Result<u64, VsetError> {
    let template =
        KeyTemplate::parse(&tracked.key_template).map_err(|source| VsetError::Template {
            template: tracked.key_template.clone(),
            source,
        })?;
    let columns: Vec<String> = template
        .columns()
        .iter()
        .map(|c| format!("pg_catalog.format('%s', t.{})", quote_identifier(c)))
        .collect();
    let query = format!("SELECT {} FROM {} t", columns.join(", "), qualified);
    let channel = CString::new(tracked.channel.clone())
        .map_err(|_| VsetError::BadChannel(tracked.channel.clone()))?;
    let objects = vset_objects()?;
    let _canonical = CanonicalOutput::enter();
    let mut cursor = client.try_open_cursor(query.as_str(), &[])?;
    let mut written = 0u64;
    loop {
        let batch = cursor.fetch(BATCH)?;
        if batch.is_empty() {
            break;
        }
        'rows: for row in batch {
            let mut parts = Vec::with_capacity(columns.len());
            for i in 1..=columns.len() {
                // A NULL key column never had a key (capture refuses to render one).
                let Some(part) = row.get::<String>(i)? else {
                    continue 'rows;
                };
                parts.push(part);
            }
            write_record(&objects, tbl, &template.render(&parts), Op::Del, None)?;
            written += 1;
        }
    }
    if written > 0 {
        wakeup::record_written(&channel);
    }
    Ok(written)
}
