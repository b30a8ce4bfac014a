//! `vset-chaos`: the long chaos matrix. Runs every cell of `vset_tests::chaos`
//! (the same code as the short cells in `make test`) with longer durations and
//! more writers, prints one Markdown row per cell and writes the table to a file.
//! Exits 1 if any cell ends with a stale or orphaned key, 2 if a cell could not run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use vset_tests::chaos::{run_cell, Cell, CellRow, CellSize};

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
    let mut rows = Vec::new();
    let mut failed = false;
    for cell in cells {
        match run_cell(cell, &size) {
            Ok(row) => {
                println!("{}", row.markdown());
                rows.push(row);
            }
            Err(e) => {
                eprintln!("vset-chaos: {}: {e}", cell.name());
                failed = true;
            }
        }
    }
    let stale: u64 = rows.iter().map(|r| r.stale).sum();
    let mut md = format!(
        "`vset-chaos --seconds {} --writers {} --keys {} --seed {}` (measured {}, {:.0} s in all, load average {load_before} at start, {} at end): \
         {} cells, {} writes, {} stale keys after convergence.\n\n{}\n",
        cli.seconds,
        cli.writers,
        cli.keys,
        cli.seed,
        vset_lab::utc_date(),
        started.elapsed().as_secs_f64(),
        vset_lab::load_average(),
        rows.len(),
        rows.iter().map(|r| r.writes).sum::<u64>(),
        stale,
        CellRow::markdown_header()
    );
    for r in &rows {
        md.push_str(&r.markdown());
        md.push('\n');
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
    } else if stale > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
