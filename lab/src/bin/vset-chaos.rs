//! `vset-chaos`: the long chaos matrix. Runs every cell of `vset_tests::chaos`
//! (the same code as the short cells in `make test`) with longer durations and
//! more writers, each against the real module and as its control (the protection
//! the cell targets switched off), prints one Markdown row per cell and writes the
//! table to a file. Exits 1 if any real run fails its checks (stale or wrong keys,
//! no event counted, not warm) or any control finds nothing stale, 2 if a cell
//! could not run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use vset_tests::chaos::{run_variant, Cell, CellRow, CellSize, Variant};

/// The fault matrix: concurrent writers on hot keys, one fault per cell, relays
/// drain, vset-verify checks every key.
#[derive(Debug, Parser)]
#[command(name = "vset-chaos", version, about, long_about)]
struct Cli {
    /// Seconds of writes (and faults) per cell.
    #[arg(long, default_value_t = 45)]
    seconds: u64,
    /// Writer connections per cell.
    #[arg(long, default_value_t = 8)]
    writers: usize,
    /// Hot keys per cell.
    #[arg(long, default_value_t = 50)]
    keys: i32,
    /// Seed of writers' and faults' random choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Only these cells (comma-separated names); default all.
    #[arg(long, value_delimiter = ',')]
    cells: Vec<String>,
    /// Skip the controls (half the time; the table then says "not run").
    #[arg(long)]
    no_controls: bool,
    /// Where to write the Markdown table (also printed).
    #[arg(long, default_value = "docs/chaos.md")]
    table: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut cells = Vec::new();
    for name in &cli.cells {
        match Cell::by_name(name) {
            Some(c) => cells.push(c),
            None => {
                let known: Vec<&str> = Cell::ALL.iter().map(|c| c.name()).collect();
                eprintln!(
                    "vset-chaos: unknown cell {name:?} (known: {})",
                    known.join(", ")
                );
                return ExitCode::from(2);
            }
        }
    }
    if cells.is_empty() {
        cells = Cell::ALL.to_vec();
    }
    let size = CellSize {
        duration: Duration::from_secs(cli.seconds),
        writers: cli.writers,
        keys: cli.keys,
        seed: cli.seed,
    };
    let started = Instant::now();
    let load_before = vset_lab::load_average();
    println!("{}", CellRow::markdown_header());
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    let mut failed = false;
    let (mut writes, mut stale) = (0u64, 0u64);
    for cell in &cells {
        let real = match run_variant(*cell, &size, Variant::Real) {
            Ok(row) => row,
            Err(e) => {
                eprintln!("vset-chaos: {}: {e}", cell.name());
                failed = true;
                continue;
            }
        };
        for p in real.problems() {
            problems.push(format!("{}: {p}", cell.name()));
        }
        let control = if cli.no_controls {
            None
        } else {
            match run_variant(*cell, &size, Variant::Control) {
                Ok(row) => {
                    for p in row.problems() {
                        problems.push(format!("{} (control): {p}", cell.name()));
                    }
                    Some(row)
                }
                Err(e) => {
                    eprintln!("vset-chaos: {} (control): {e}", cell.name());
                    failed = true;
                    None
                }
            }
        };
        writes += real.writes;
        stale += real.stale + real.exact.wrong;
        let line = real.markdown(cell.event(), control.as_ref().map(|c| (cell.control(), c)));
        println!("{line}");
        lines.push(line);
    }
    let mut md = format!(
        "`vset-chaos --seconds {} --writers {} --keys {} --seed {}{}` at commit {} (measured {}, {:.0} s in all, load average {load_before} at start, {} at end): \
         {} cells, {} writes, {} stale or wrong keys after convergence, {} failed checks.\n\n{}\n",
        cli.seconds,
        cli.writers,
        cli.keys,
        cli.seed,
        if cli.no_controls { " --no-controls" } else { "" },
        vset_lab::git_commit(),
        vset_lab::utc_date(),
        started.elapsed().as_secs_f64(),
        vset_lab::load_average(),
        lines.len(),
        writes,
        stale,
        problems.len(),
        CellRow::markdown_header()
    );
    for l in &lines {
        md.push_str(l);
        md.push('\n');
    }
    md.push_str(HOW_TO_READ);
    for p in &problems {
        eprintln!("vset-chaos: FAILED {p}");
        md.push_str(&format!("\n- FAILED: {p}"));
    }
    if let Some(dir) = cli.table.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = std::fs::write(&cli.table, &md) {
        eprintln!("vset-chaos: writing {}: {e}", cli.table.display());
        return ExitCode::from(2);
    }
    eprintln!("vset-chaos: wrote {}", cli.table.display());
    if failed {
        ExitCode::from(2)
    } else if !problems.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// What the columns mean and how a cell can fail (written under the table).
const HOW_TO_READ: &str = r#"
## How to read this table

Every cell runs concurrent writers (update / delete / re-insert on hot keys) with
its fault injected at random, then a **final round** that stages the interleaving
the cell is named for once more, on purpose, with the writers stopped so that
nothing written afterwards can hide the outcome. Each cell runs twice:

- **against the real module**, where it fails unless: `vset-verify` finds no
  stale or orphaned key; every key is cached at exactly its last committed payload
  and version (versions come from a test-only audit trigger that records the
  version vset drew for each change), or is a miss where the fault forgets keys;
  the prober (every hot key, every few ms, `VGET WITHVERSION`) never saw a key's
  version go down; the *named event* was counted by the module (> 0); every late
  write of the final round was refused; and, after every live hot row is written
  once more, every one of them is cached exactly (so a module that stores
  nothing, or a floor stuck too high, fails);
- **as its control**, against a module with the one protection the cell's fault
  targets switched off (a build with the test-only feature `unsafe-test-gates`,
  or `cold-start no`). The control fails unless it finds stale entries. A cell
  whose control finds nothing is not testing anything.

Columns: *named event* is the module's refusal counter for the cell's event over
the whole run (`INFO vset`: `rejected_stale`, `rejected_floor`, `rejected_cold`;
summed across Redis restarts). *Final round* is keys staged / late writes refused
/ late writes stored. *Exact / missing / deleted* classify every key after
convergence. *Prober regressions* counts observations of a lower version than the
key had shown: a stale value served. *Worst lag* is the longest time the prober
saw a value differing from the last committed one (lag, not staleness, as long as
convergence ends it). The control column says what the control breaks and how many
stale findings it made (vset-verify stale + keys not at their last change +
regressions + late writes stored + keys lost on an AOF reload).

| final round | cells | the interleaving |
| --- | --- | --- |
| held COMMIT | relay-sigkill, postgres-restart | a relay's batch is in Redis, its COMMIT held (test-only deferred trigger waiting on an advisory lock); newer versions of the same keys are applied and acknowledged by the other relay; the holder is SIGKILLed (or PostgreSQL crashes) and its batch is replayed, older than what is cached |
| stalled network | eviction-out-of-order, tombstone-expiry, relay-sigstop, two-relays-backlog | a relay's writes are held in a TCP proxy between it and Redis while it holds its claim; newer versions are applied by the other relay, then the keys are evicted (maxmemory squeezed), their tombstones expire, or the stalled relay is SIGSTOPped until PostgreSQL ends its session; then the late writes land |
| late fill | fill-race, redis-cold-restart, redis-aof-restart | a read-miss fill reads a row; a newer version is applied; (Redis is SIGKILLed and restarts empty, or from its AOF); the fill's `VSET` lands |
"#;
