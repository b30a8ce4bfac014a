//! What the DDL guard asks the catalogs: who is tracked above or below a relation,
//! whether the caller owns it, which tracked tables use a type.

use pgrx::prelude::*;
use pgrx::spi::SpiClient;

use super::as_vset;
use crate::catalog::owner::with_pinned_search_path;
use crate::catalog::table::TableInfo;
use crate::catalog::tracked::Tracked;
use crate::error::VsetError;

/// A tracked table that a relation belongs to.
pub struct TrackedOwner {
    pub root: pg_sys::Oid,
    pub tracked: Tracked,
    /// The tracked table's quoted name (what a message should name).
    pub name: String,
}

/// The tracked table `root`'s settings and name, if it is tracked.
fn owner_at(client: &SpiClient<'_>, root: pg_sys::Oid) -> Result<Option<TrackedOwner>, VsetError> {
    Ok(match Tracked::load(client, root)? {
        Some(tracked) => Some(TrackedOwner {
            root,
            tracked,
            name: TableInfo::load(client, root)?.qualified,
        }),
        None => None,
    })
}

/// The tracked table `rel` belongs to: itself, or a tracked partition ancestor
/// (an inheritance parent's trigger does not fire for its children, so only
/// partition ancestors count).
pub fn tracked_owner_of(
    client: &SpiClient<'_>,
    rel: pg_sys::Oid,
) -> Result<Option<TrackedOwner>, VsetError> {
    as_vset(|| {
        let mut candidates = vec![rel];
        // SAFETY: catalog lookup by oid.
        if unsafe { pg_sys::get_rel_relispartition(rel) } {
            for row in client.select(
                "SELECT relid FROM pg_catalog.pg_partition_ancestors($1) WHERE relid OPERATOR(pg_catalog.<>) $1",
                None,
                &[rel.into()],
            )? {
                candidates.extend(row.get::<pg_sys::Oid>(1)?);
            }
        }
        for candidate in candidates {
            if let Some(owner) = owner_at(client, candidate)? {
                return Ok(Some(owner));
            }
        }
        Ok(None)
    })
}

/// The tracked tables a statement on `rel` reaches: `rel`'s own (itself or a
/// partition root above it) and those of every table below it (partitions and
/// inheritance children, which ALTER TABLE recurses into), each once, nearest first.
/// One catalog query for the whole tree: this runs for every ALTER TABLE an owner
/// issues, tracked or not.
pub fn tracked_reached_from(
    client: &SpiClient<'_>,
    rel: pg_sys::Oid,
) -> Result<Vec<TrackedOwner>, VsetError> {
    as_vset(|| {
        let mut roots = Vec::new();
        for row in client.select(
            "WITH RECURSIVE below(relid, depth) AS (
                 SELECT $1::oid, 0
                 UNION
                 SELECT i.inhrelid, b.depth + 1
                   FROM pg_catalog.pg_inherits i JOIN below b ON i.inhparent OPERATOR(pg_catalog.=) b.relid)
             SELECT t.tbl::oid
               FROM below b
              -- pg_partition_ancestors lists nothing for a table outside a partition tree.
              CROSS JOIN LATERAL (SELECT b.relid::pg_catalog.regclass
                                  UNION SELECT pg_catalog.pg_partition_ancestors(b.relid)) a(relid)
               JOIN vset.tracked t ON t.tbl OPERATOR(pg_catalog.=) a.relid
              GROUP BY t.tbl
              ORDER BY pg_catalog.min(b.depth), t.tbl::oid",
            None,
            &[rel.into()],
        )? {
            roots.extend(row.get::<pg_sys::Oid>(1)?);
        }
        let mut owners = Vec::with_capacity(roots.len());
        for root in roots {
            owners.extend(owner_at(client, root)?);
        }
        Ok(owners)
    })
}

/// True when the calling role owns `rel` or its schema (PostgreSQL's own check for
/// ALTER/DROP): only then does the guard lock, read or refuse anything, so nobody
/// else can make it lock a table or learn about it.
pub fn caller_owns(client: &SpiClient<'_>, rel: pg_sys::Oid) -> Result<bool, VsetError> {
    with_pinned_search_path(|| {
        Ok(client
            .select(
                "SELECT pg_catalog.pg_has_role(c.relowner, 'USAGE')
                        OR pg_catalog.pg_has_role(n.nspowner, 'USAGE')
                   FROM pg_catalog.pg_class c
                   JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                  WHERE c.oid OPERATOR(pg_catalog.=) $1",
                Some(1),
                &[rel.into()],
            )?
            .first()
            .get_one::<bool>()?
            .unwrap_or(false))
    })
}

/// True when the calling role owns the type `ty` (ALTER TYPE's own check).
pub fn caller_owns_type(client: &SpiClient<'_>, ty: pg_sys::Oid) -> Result<bool, VsetError> {
    with_pinned_search_path(|| {
        Ok(client
            .select(
                "SELECT pg_catalog.pg_has_role(typowner, 'USAGE') FROM pg_catalog.pg_type
                  WHERE oid OPERATOR(pg_catalog.=) $1",
                Some(1),
                &[ty.into()],
            )?
            .first()
            .get_one::<bool>()?
            .unwrap_or(false))
    })
}

/// A tracked table whose rows render through type `ty`: a column of that type, or of
/// an array, domain, range or composite built on it, or a typed table of it.
pub fn tracked_table_using_type(
    client: &SpiClient<'_>,
    ty: pg_sys::Oid,
) -> Result<Option<String>, VsetError> {
    as_vset(|| {
        Ok(client
            .select(
                "WITH RECURSIVE uses(t) AS (
                     SELECT $1::oid
                     UNION
                     SELECT x.t FROM uses u CROSS JOIN LATERAL (
                         SELECT ty.oid FROM pg_catalog.pg_type ty
                          WHERE ty.typelem OPERATOR(pg_catalog.=) u.t OR ty.typbasetype OPERATOR(pg_catalog.=) u.t
                         UNION ALL
                         SELECT c.reltype FROM pg_catalog.pg_attribute a
                           JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.attrelid
                          WHERE c.relkind OPERATOR(pg_catalog.=) 'c' AND a.atttypid OPERATOR(pg_catalog.=) u.t
                            AND NOT a.attisdropped
                         UNION ALL
                         SELECT r.rngtypid FROM pg_catalog.pg_range r WHERE r.rngsubtype OPERATOR(pg_catalog.=) u.t
                     ) x(t))
                 SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
                   FROM vset.tracked tr
                   JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) tr.tbl::oid
                   JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                  WHERE c.reloftype IN (SELECT t FROM uses)
                     OR EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                                 WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0
                                   AND NOT a.attisdropped AND a.atttypid IN (SELECT t FROM uses))
                  ORDER BY 1 LIMIT 1",
                Some(1),
                &[ty.into()],
            )?
            .first()
            .get_one::<String>()?)
    })
}
