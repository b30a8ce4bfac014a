//! The per-relation capture plan: which attributes form the key and the payload,
//! their output functions, the record type of the payload. Built once per backend
//! per trigger from the trigger's arguments and the relation's descriptor, and
//! dropped by a relcache callback whenever the relation (or its triggers) change.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::rc::Rc;

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::PgTupleDesc;

use crate::api::track::CAPTURE_TRIGGER;
use crate::catalog::keys::{describe, usable_keys};
use crate::catalog::namespaces::{check_key_types, refuse_overlapping_keys};
use crate::catalog::owner::{as_extension_owner, caller, with_pinned_search_path};
use crate::catalog::table::live_columns;
use crate::catalog::tracked::{Mode, Tracked};
use crate::error::VsetError;
use crate::trigger::key::KeyTemplate;

/// One key column: where it is and how to print it.
#[derive(Debug)]
pub struct KeyColumn {
    pub name: String,
    pub index: usize,
    pub typoutput: pg_sys::Oid,
}

/// An attribute compared to decide whether an UPDATE changed anything.
#[derive(Debug)]
pub struct ComparedColumn {
    pub index: usize,
    pub by_val: bool,
    pub len: i16,
}

#[derive(Debug)]
pub struct CapturePlan {
    pub relid: pg_sys::Oid,
    /// The firing relation's name, for errors.
    pub table: String,
    /// The tracked table (the partition root when the trigger fires on a partition).
    pub tracked: pg_sys::Oid,
    pub template: KeyTemplate,
    pub key: Vec<KeyColumn>,
    /// 0-based attribute indexes of the payload columns, in payload order.
    pub payload: Vec<usize>,
    /// Blessed record descriptor of the payload (TopMemoryContext).
    pub payload_desc: pg_sys::TupleDesc,
    /// Payload ∪ key columns.
    pub compared: Vec<ComparedColumn>,
    pub mode: Mode,
    pub channel: CString,
}

impl Drop for CapturePlan {
    fn drop(&mut self) {
        if !self.payload_desc.is_null() {
            // SAFETY: allocated by us in build(); the blessed copy lives in the typcache.
            unsafe { pg_sys::FreeTupleDesc(self.payload_desc) };
        }
    }
}

thread_local! {
    static PLANS: RefCell<HashMap<u32, Rc<CapturePlan>>> = RefCell::new(HashMap::new());
    /// Set when an invalidation arrived while PLANS was borrowed.
    static CLEAR_PENDING: Cell<bool> = const { Cell::new(false) };
}

/// The plan of trigger `tgoid` on `rel`, built on first use.
/// `trigger_and_args` (the trigger's name and arguments) is only called to build a
/// plan: reading them costs allocations the per-row path does not need.
pub fn plan_for(
    tgoid: pg_sys::Oid,
    rel: pg_sys::Relation,
    trigger_and_args: impl FnOnce() -> Result<(String, Vec<String>), VsetError>,
) -> Result<Rc<CapturePlan>, VsetError> {
    if CLEAR_PENDING.with(|c| c.replace(false)) {
        PLANS.with(|p| p.borrow_mut().clear());
    }
    if let Some(plan) = PLANS.with(|p| p.borrow().get(&tgoid.to_u32()).cloned()) {
        return Ok(plan);
    }
    let (trigger_name, args) = trigger_and_args()?;
    // Catalog queries under a pinned search_path: this runs as whoever writes the
    // table, and must not resolve anything that role's schemas define.
    let plan = Rc::new(with_pinned_search_path(|| {
        build(rel, &trigger_name, &args)
    })?);
    PLANS.with(|p| p.borrow_mut().insert(tgoid.to_u32(), plan.clone()));
    Ok(plan)
}

unsafe extern "C-unwind" fn on_relcache(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    PLANS.with(|p| match p.try_borrow_mut() {
        Ok(mut plans) => {
            if relid == pg_sys::InvalidOid {
                plans.clear();
            } else {
                plans.retain(|_, plan| plan.relid != relid);
            }
        }
        Err(_) => CLEAR_PENDING.with(|c| c.set(true)),
    });
}

/// Called once from `_PG_init`.
pub fn register_invalidation() {
    // SAFETY: registering a static callback once per backend.
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache), pg_sys::Datum::from(0usize))
    };
}

fn relation_name(rel: pg_sys::Relation) -> String {
    // SAFETY: rel is an open relation; rd_rel->relname is a NameData.
    unsafe {
        CStr::from_ptr((*(*rel).rd_rel).relname.data.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

/// A capture trigger writes the outbox only as `vset.track` set it up: named
/// `vset_capture`, with exactly the template, mode, channel and payload columns that
/// `vset.tracked` records for the tracked table. Anything else (a trigger someone
/// created by hand, on any table, with any arguments) could write records for keys it
/// does not own, which a relay would then put over the real cache entries.
fn verify_installed_by_track(
    client: &SpiClient<'_>,
    tracked: pg_sys::Oid,
    table: &str,
    trigger_name: &str,
    args: &[String],
) -> Result<(), VsetError> {
    let recorded = Tracked::load(client, tracked)?;
    let matches = recorded
        .as_ref()
        .is_some_and(|t| trigger_name == CAPTURE_TRIGGER && t.trigger_args().as_slice() == args);
    if matches {
        return Ok(());
    }
    Err(VsetError::NotInstalledByTrack {
        table: table.to_string(),
        trigger: trigger_name.to_string(),
    })
}

fn build(
    rel: pg_sys::Relation,
    trigger_name: &str,
    args: &[String],
) -> Result<CapturePlan, VsetError> {
    if args.len() < 3 {
        return Err(VsetError::TriggerMisuse(
            "vset.capture() needs the arguments vset.track() gives it; create the trigger with vset.track()".into(),
        ));
    }
    let template = KeyTemplate::parse(&args[0]).map_err(|source| VsetError::Template {
        template: args[0].clone(),
        source,
    })?;
    let mode = Mode::parse(&args[1])?;
    let channel =
        CString::new(args[2].clone()).map_err(|_| VsetError::BadChannel(args[2].clone()))?;
    let table = relation_name(rel);

    // SAFETY: rel is open for the trigger; its descriptor outlives this call.
    let (relid, desc_ptr, is_partition) =
        unsafe { ((*rel).rd_id, (*rel).rd_att, (*(*rel).rd_rel).relispartition) };
    let desc = unsafe { PgTupleDesc::from_pg_unchecked(desc_ptr) };
    let find = |name: &str| -> Result<usize, VsetError> {
        for i in 0..desc.len() {
            if let Some(att) = desc.get(i) {
                // SAFETY: attname is NUL-terminated.
                let att_name = unsafe { CStr::from_ptr(att.attname.data.as_ptr()) };
                if !att.attisdropped && att_name.to_bytes() == name.as_bytes() {
                    return Ok(i);
                }
            }
        }
        Err(VsetError::UnknownColumn {
            table: table.clone(),
            column: name.to_string(),
        })
    };

    let mut key = Vec::new();
    for col in template.columns() {
        let index = find(col)?;
        let mut typoutput = pg_sys::InvalidOid;
        let mut varlena = false;
        // SAFETY: plain syscache lookup of the attribute's type.
        unsafe {
            pg_sys::getTypeOutputInfo(
                desc.get(index).map(|a| a.atttypid).unwrap_or_default(),
                &mut typoutput,
                &mut varlena,
            )
        };
        key.push(KeyColumn {
            name: col.clone(),
            index,
            typoutput,
        });
    }
    // As the extension owner (vset.tracked, every tracked table; a writer need not be
    // able to read them), in one switch:
    // - the tracked table a partition's trigger works for: the nearest tracked one of
    //   itself and its ancestors (a tracked table can be attached under an untracked
    //   partitioned table, whose root is then not the tracked one);
    // - the trigger is the one track installed;
    // - since column types may have changed (ALTER TABLE … TYPE, RENAME COLUMN) after
    //   track checked the key's type and namespace, check them again.
    let writer = caller();
    let tracked = as_extension_owner(|| {
        Spi::connect(|client| {
            let tracked = if is_partition {
                client
                    .select(
                        "SELECT coalesce((SELECT a.relid::oid
                             FROM pg_catalog.pg_partition_ancestors($1) WITH ORDINALITY AS a(relid, n)
                             JOIN vset.tracked t ON t.tbl OPERATOR(pg_catalog.=) a.relid
                            ORDER BY a.n LIMIT 1), $1)",
                        Some(1),
                        &[relid.into()],
                    )?
                    .first()
                    .get_one::<pg_sys::Oid>()?
                    .unwrap_or(relid)
            } else {
                relid
            };
            verify_installed_by_track(client, tracked, &table, trigger_name, args)?;
            check_key_types(client, tracked, &table, template.columns())?;
            refuse_overlapping_keys(client, tracked, &table, &template, writer)?;
            Ok(tracked)
        })
    })?;
    // Checked at track time, and again whenever the relation changed (this plan is
    // rebuilt after every relcache invalidation: DROP NOT NULL, a dropped or replaced
    // unique index all send one).
    let keys = Spi::connect(|client| usable_keys(client, tracked))?;
    if !keys.iter().any(|k| k.same_columns(template.columns())) {
        return Err(VsetError::KeyNoLongerUnique {
            table: table.clone(),
            columns: template.columns().join(", "),
            candidates: describe(&keys),
        });
    }

    let payload: Vec<usize> = if args.len() > 3 {
        args[3..]
            .iter()
            .map(|c| find(c))
            .collect::<Result<_, _>>()?
    } else if tracked != relid {
        // A partition may order its columns differently from the root; the payload
        // follows the root's order so every partition (and vset.fill) renders alike.
        Spi::connect(|client| live_columns(client, tracked))?
            .iter()
            .map(|c| find(c))
            .collect::<Result<_, _>>()?
    } else {
        (0..desc.len())
            .filter(|&i| desc.get(i).is_some_and(|a| !a.attisdropped))
            .collect()
    };

    let mut compared: Vec<ComparedColumn> = Vec::new();
    for &index in payload.iter().chain(key.iter().map(|k| &k.index)) {
        if compared.iter().any(|c| c.index == index) {
            continue;
        }
        if let Some(att) = desc.get(index) {
            compared.push(ComparedColumn {
                index,
                by_val: att.attbyval,
                len: att.attlen,
            });
        }
    }

    // The payload's record type: exactly the payload columns, with their names, so
    // row_to_json of it is row_to_json of `SELECT <columns> FROM table`.
    // SAFETY: descriptor built in TopMemoryContext so it outlives the statement.
    #[allow(clippy::useless_conversion)] // attndims is not i32 on every PostgreSQL major
    let payload_desc = unsafe {
        let old = pg_sys::MemoryContextSwitchTo(pg_sys::TopMemoryContext);
        let pd = pg_sys::CreateTemplateTupleDesc(payload.len() as i32);
        for (pos, &index) in payload.iter().enumerate() {
            if let Some(att) = desc.get(index) {
                let attno = (pos + 1) as pg_sys::AttrNumber;
                pg_sys::TupleDescInitEntry(
                    pd,
                    attno,
                    att.attname.data.as_ptr(),
                    att.atttypid,
                    att.atttypmod,
                    i32::from(att.attndims),
                );
                pg_sys::TupleDescInitEntryCollation(pd, attno, att.attcollation);
            }
        }
        let blessed = pg_sys::BlessTupleDesc(pd);
        pg_sys::MemoryContextSwitchTo(old);
        blessed
    };

    Ok(CapturePlan {
        relid,
        table,
        tracked,
        template,
        key,
        payload,
        payload_desc,
        compared,
        mode,
        channel,
    })
}
