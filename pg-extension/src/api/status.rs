//! `vset.status()`: per tracked table, how it is tracked and what waits for a relay.
//!
//! Written in Rust rather than as a SQL `SECURITY DEFINER` function because it must
//! know who is asking: it reads `vset.tracked` and `vset.outbox` as the extension's
//! owner (the outbox is not readable by PUBLIC) but lists only tables the caller may
//! `SELECT`, or every table when the caller may read the outbox itself (a relay or
//! monitoring role, which sees all of it anyway). Tables dropped with records still
//! waiting show as `untracked` to outbox readers only.

use pgrx::datum::Interval;
use pgrx::prelude::*;

use crate::catalog::owner::{as_extension_owner, caller};
use crate::error::{OrRaise, VsetError};

#[allow(clippy::type_complexity)] // pgrx needs the tuple spelled out in the signature
#[pg_extern(name = "_status")]
fn status_internal() -> TableIterator<
    'static,
    (
        name!(tbl, pg_sys::Oid),
        name!(mode, String),
        name!(key_template, Option<String>),
        name!(channel, Option<String>),
        name!(rows_waiting, i64),
        name!(oldest_waiting, Option<Interval>),
    ),
> {
    let asking = caller();
    let rows = as_extension_owner(|| {
        Spi::connect(|client| {
            let table = client.select(
                "SELECT coalesce(t.tbl, o.tbl)::oid, coalesce(t.mode, 'untracked'), t.key_template,
                        t.channel, coalesce(o.n, 0), o.age
                   FROM vset.tracked t
                   FULL JOIN (SELECT ob.tbl, count(*) AS n, now() - min(ob.created_at) AS age
                                FROM vset.outbox ob GROUP BY ob.tbl) o ON o.tbl = t.tbl
                  WHERE has_table_privilege($1, coalesce(t.tbl, o.tbl)::oid, 'SELECT') IS TRUE
                     OR has_table_privilege($1, 'vset.outbox'::regclass, 'SELECT')
                  ORDER BY coalesce(t.tbl, o.tbl)::text",
                None,
                &[asking.into()],
            )?;
            let mut out = Vec::new();
            for row in table {
                out.push((
                    row.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::InvalidOid),
                    row.get::<String>(2)?.unwrap_or_default(),
                    row.get::<String>(3)?,
                    row.get::<String>(4)?,
                    row.get::<i64>(5)?.unwrap_or(0),
                    row.get::<Interval>(6)?,
                ));
            }
            Ok::<_, VsetError>(out)
        })
    })
    .or_raise();
    TableIterator::new(rows)
}
