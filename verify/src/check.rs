//! One verification run: stream every tracked table (or a random sample of it)
//! through a portal, compare each row with Redis in pipelined batches, look for
//! orphans on the Redis side, and re-check every mismatch after the grace period
//! before calling it stale or orphaned.
//!
//! Memory stays bounded: rows arrive `fetch_size` at a time, Redis keys a SCAN page
//! at a time, and the orphan search is an anti-join that PostgreSQL runs over a
//! temporary table of the scanned keys (spilling to disk if it must). Only
//! mismatches are remembered, at most `max_recheck` of them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use postgres::Client;

use crate::cache::{Cache, CacheTarget, Cached};
use crate::catalog::{self, TrackedTable};
use crate::compare::{judge, Verdict};
use crate::error::{Result, VerifyError};
use crate::report::{Counts, Report};

/// What to check and how.
#[derive(Debug, Clone)]
pub struct Options {
    pub postgres: String,
    pub cache: CacheTarget,
    /// Check a random sample of this many rows per table (and as many random
    /// cached keys) instead of everything.
    pub sample: Option<u64>,
    /// How long a mismatch may take to resolve before it counts.
    pub grace: Duration,
    /// Rows per portal fetch (and keys per Redis pipeline).
    pub fetch_size: i32,
    /// `TYPE` name of the module's values, for SCAN ... TYPE.
    pub module_type: String,
    /// Mismatches remembered for the re-check; beyond this they count as found.
    pub max_recheck: usize,
    /// Skip the Redis-side search for orphans (it scans every module key).
    pub skip_orphans: bool,
}

/// A mismatch waiting for its re-check.
struct Suspect {
    key: String,
    /// Index of the table whose row (or missing row) raised it.
    table: usize,
}

/// Connects to PostgreSQL with TLS available (libpq's `sslmode` decides: the
/// default `prefer` falls back to plain TCP when the server has no TLS).
pub fn connect_postgres(url: &str) -> Result<Client> {
    let tls = postgres_native_tls::MakeTlsConnector::new(native_tls::TlsConnector::new()?);
    Ok(Client::connect(url, tls)?)
}

/// Runs a check and returns its report (a found inconsistency is a report, not an error).
pub fn run(opts: &Options) -> Result<Report> {
    if opts.fetch_size <= 0 {
        return Err(VerifyError::Usage("--fetch-size must be at least 1".into()));
    }
    if opts.sample == Some(0) {
        return Err(VerifyError::Usage("--sample must be at least 1".into()));
    }
    let started = Instant::now();
    let mut pg = connect_postgres(&opts.postgres)?;
    let mut cache = Cache::connect(&opts.cache, &opts.module_type)?;
    let tables = catalog::load(&mut pg)?;

    let mut counts: Vec<Counts> = vec![Counts::default(); tables.len()];
    let mut suspects: Vec<Suspect> = Vec::new();
    let mut overflow: Vec<Counts> = vec![Counts::default(); tables.len()];

    let mut note = |table: usize, key: String, verdict: Verdict, counts: &mut Vec<Counts>| {
        if verdict.is_bad() {
            if suspects.len() < opts.max_recheck {
                suspects.push(Suspect { key, table });
            } else {
                overflow[table].add(verdict);
            }
        } else {
            counts[table].add(verdict);
        }
    };

    // 1. Every row (or a sample): is its current payload what Redis holds?
    for (i, t) in tables.iter().enumerate() {
        let sql = match opts.sample {
            None => format!(
                "SELECT {} AS k, {} AS p FROM {} t",
                t.key_sql(),
                t.payload_sql,
                t.table
            ),
            Some(n) => format!(
                "SELECT {} AS k, {} AS p FROM {} t ORDER BY random() LIMIT {n}",
                t.key_sql(),
                t.payload_sql,
                t.table
            ),
        };
        let mut tx = pg.build_transaction().read_only(true).start()?;
        let portal = tx.bind(sql.as_str(), &[])?;
        loop {
            let rows = tx.query_portal(&portal, opts.fetch_size)?;
            if rows.is_empty() {
                break;
            }
            let mut keys = Vec::with_capacity(rows.len());
            let mut payloads = Vec::with_capacity(rows.len());
            for r in &rows {
                keys.push(r.try_get::<_, String>(0)?);
                payloads.push(r.try_get::<_, String>(1)?);
            }
            let cached = cache.read_many(&keys)?;
            counts[i].checked += keys.len() as u64;
            for ((k, p), c) in keys.into_iter().zip(payloads).zip(cached) {
                let v = judge(Some(&p), &c);
                note(i, k, v, &mut counts);
            }
            if rows.len() < opts.fetch_size as usize {
                break;
            }
        }
        tx.commit()?;
    }

    // 2. Redis side: values cached for rows that do not exist.
    if !opts.skip_orphans {
        match opts.sample {
            None => {
                for i in 0..tables.len() {
                    for (key, verdict) in orphan_candidates(&mut pg, &mut cache, &tables, i, opts)?
                    {
                        counts[i].checked += 1;
                        note(i, key, verdict, &mut counts);
                    }
                }
            }
            Some(n) => {
                for key in cache.random_module_keys(n as usize)? {
                    let Some(i) = owner_candidates(&tables, &key).first().copied() else {
                        continue;
                    };
                    let current = current_payloads(&mut pg, &tables, std::slice::from_ref(&key))?;
                    let cached = cache.read_many(std::slice::from_ref(&key))?;
                    if current.contains_key(&key) {
                        // A live row: already covered by the row sample's odds; count
                        // it as a checked key all the same.
                        let v = judge(current.get(&key).map(String::as_str), &cached[0]);
                        counts[i].checked += 1;
                        note(i, key, v, &mut counts);
                    } else {
                        let v = judge(None, &cached[0]);
                        counts[i].checked += 1;
                        note(i, key, v, &mut counts);
                    }
                }
            }
        }
    }

    // 3. Re-check every mismatch after the grace period (changes may be in flight).
    let mut examples = Vec::new();
    if !suspects.is_empty() {
        std::thread::sleep(opts.grace);
        for chunk in suspects.chunks(opts.fetch_size as usize) {
            let keys: Vec<String> = chunk.iter().map(|s| s.key.clone()).collect();
            let current = current_payloads(&mut pg, &tables, &keys)?;
            let cached = cache.read_many(&keys)?;
            for (s, c) in chunk.iter().zip(cached) {
                let v = judge(current.get(&s.key).map(String::as_str), &c);
                counts[s.table].add(v);
                if v.is_bad() {
                    if examples.len() < 10 {
                        examples.push(describe(&s.key, v, current.get(&s.key), &c));
                    }
                } else {
                    counts[s.table].settled += 1;
                }
            }
        }
    }
    for (c, o) in counts.iter_mut().zip(&overflow) {
        c.stale += o.stale;
        c.orphaned += o.orphaned;
    }

    Ok(Report {
        tables: tables.iter().map(|t| t.table.clone()).zip(counts).collect(),
        sample: opts.sample,
        grace: opts.grace,
        elapsed: started.elapsed(),
        examples,
    })
}

/// Keys cached under table `i`'s key pattern whose row does not exist (and that
/// hold a value, not a tombstone), with their verdict.
fn orphan_candidates(
    pg: &mut Client,
    cache: &mut Cache,
    tables: &[TrackedTable],
    i: usize,
    opts: &Options,
) -> Result<Vec<(String, Verdict)>> {
    let t = &tables[i];
    let regex = t.template.key_regex();
    pg.batch_execute(
        "CREATE TEMP TABLE IF NOT EXISTS vset_verify_scanned(k text NOT NULL);
         TRUNCATE vset_verify_scanned;",
    )?;
    cache.scan_module_keys(&t.template.scan_glob(), |_, keys| {
        let mine: Vec<String> = keys
            .into_iter()
            .filter(|k| regex.is_match(k) && owner_candidates(tables, k).first() == Some(&i))
            .collect();
        if !mine.is_empty() {
            pg.execute(
                "INSERT INTO vset_verify_scanned SELECT unnest($1::text[])",
                &[&mine],
            )?;
        }
        Ok(())
    })?;
    pg.batch_execute("ANALYZE vset_verify_scanned")?;
    let sql = format!(
        "SELECT s.k FROM vset_verify_scanned s WHERE NOT EXISTS \
         (SELECT 1 FROM {} t WHERE {} = s.k)",
        t.table,
        t.key_sql()
    );
    let mut out = Vec::new();
    let mut tx = pg.transaction()?;
    let portal = tx.bind(sql.as_str(), &[])?;
    loop {
        let rows = tx.query_portal(&portal, opts.fetch_size)?;
        if rows.is_empty() {
            break;
        }
        let keys: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<_, String>(0))
            .collect::<std::result::Result<_, _>>()?;
        let cached = cache.read_many(&keys)?;
        for (k, c) in keys.into_iter().zip(cached) {
            let v = judge(None, &c);
            // Tombstones of deleted rows are what should be there: not counted.
            if v != Verdict::Absent {
                out.push((k, v));
            }
        }
        if rows.len() < opts.fetch_size as usize {
            break;
        }
    }
    tx.commit()?;
    Ok(out)
}

/// Tables whose key template `key` fits, most specific template first.
fn owner_candidates(tables: &[TrackedTable], key: &str) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..tables.len())
        .filter(|&i| tables[i].template.key_regex().is_match(key))
        .collect();
    idx.sort_by_key(|&i| std::cmp::Reverse(tables[i].template.literal_len()));
    idx
}

/// The current payload of every key that names a live row, looked up in every
/// table whose template fits (a fresh snapshot: this runs after the grace period).
fn current_payloads(
    pg: &mut Client,
    tables: &[TrackedTable],
    keys: &[String],
) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for (i, t) in tables.iter().enumerate() {
        let mine: Vec<&String> = keys
            .iter()
            .filter(|k| owner_candidates(tables, k).contains(&i))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let sql = format!(
            "SELECT k, p FROM (SELECT {} AS k, {} AS p FROM {} t) x WHERE k = ANY($1)",
            t.key_sql(),
            t.payload_sql,
            t.table
        );
        for row in pg.query(sql.as_str(), &[&mine])? {
            out.insert(row.try_get(0)?, row.try_get(1)?);
        }
    }
    Ok(out)
}

fn describe(key: &str, v: Verdict, want: Option<&String>, got: &Cached) -> String {
    let got = match got {
        Cached::Value { value, version } => format!("{value} (version {version})"),
        Cached::Absent { version } => format!("nothing (version {version})"),
        Cached::Foreign { detail } => format!("a non-vset value: {detail}"),
    };
    match (v, want) {
        (Verdict::Orphaned, _) => format!("orphaned {key}: no row, Redis holds {got}"),
        (_, Some(w)) => format!("stale {key}: row is {w}, Redis holds {got}"),
        (_, None) => format!("{key}: Redis holds {got}"),
    }
}
