//! Counts per table, the verdict, and how they are printed (a table for people,
//! `--json` for scripts and the chaos matrix).

use std::fmt::Write as _;
use std::time::Duration;

use crate::compare::Verdict;

/// Counts for one table (or the total).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Rows (or sampled keys) looked at.
    pub checked: u64,
    pub matched: u64,
    pub missing: u64,
    pub stale: u64,
    pub orphaned: u64,
    /// Mismatches at first look that were consistent after the grace period
    /// (already included in matched/missing): changes still in flight.
    pub settled: u64,
}

impl Counts {
    pub fn add(&mut self, v: Verdict) {
        match v {
            Verdict::Matched => self.matched += 1,
            Verdict::Missing => self.missing += 1,
            Verdict::Stale => self.stale += 1,
            Verdict::Orphaned => self.orphaned += 1,
            Verdict::Absent => {}
        }
    }

    pub fn merge(&mut self, o: &Counts) {
        self.checked += o.checked;
        self.matched += o.matched;
        self.missing += o.missing;
        self.stale += o.stale;
        self.orphaned += o.orphaned;
        self.settled += o.settled;
    }

    pub fn bad(&self) -> u64 {
        self.stale + self.orphaned
    }
}

/// The outcome of one run.
#[derive(Debug, Clone)]
pub struct Report {
    pub tables: Vec<(String, Counts)>,
    pub sample: Option<u64>,
    pub grace: Duration,
    pub elapsed: Duration,
    /// A few offending keys, for the operator to look at.
    pub examples: Vec<String>,
}

impl Report {
    pub fn total(&self) -> Counts {
        let mut t = Counts::default();
        for (_, c) in &self.tables {
            t.merge(c);
        }
        t
    }

    /// No stale and no orphaned entry.
    pub fn consistent(&self) -> bool {
        self.total().bad() == 0
    }

    /// Consistency as a count of nines: `log10(checked / bad)`, with `bad` taken as 1
    /// when none was found (so it is a lower bound set by the sample size).
    pub fn nines(&self) -> f64 {
        let t = self.total();
        if t.checked == 0 {
            return 0.0;
        }
        (t.checked as f64 / t.bad().max(1) as f64).log10()
    }

    /// The "N nines consistent after M seconds" line.
    pub fn nines_line(&self) -> String {
        let t = self.total();
        let qualifier = if t.bad() == 0 {
            format!("at least: {} checked, none stale or orphaned", t.checked)
        } else {
            format!("{} of {} checked stale or orphaned", t.bad(), t.checked)
        };
        format!(
            "{:.1} nines consistent after {} seconds ({qualifier})",
            (self.nines() * 10.0).floor() / 10.0,
            fmt_secs(self.grace)
        )
    }

    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let width = self
            .tables
            .iter()
            .map(|(n, _)| n.len())
            .chain(std::iter::once(5))
            .max()
            .unwrap_or(5);
        let _ = writeln!(
            s,
            "{:<width$} {:>10} {:>10} {:>10} {:>8} {:>9} {:>8}",
            "table", "checked", "matched", "missing", "stale", "orphaned", "settled"
        );
        let total = self.total();
        for (name, c) in self
            .tables
            .iter()
            .chain(std::iter::once(&("total".to_string(), total.clone())))
        {
            let _ = writeln!(
                s,
                "{:<width$} {:>10} {:>10} {:>10} {:>8} {:>9} {:>8}",
                name, c.checked, c.matched, c.missing, c.stale, c.orphaned, c.settled
            );
        }
        for e in &self.examples {
            let _ = writeln!(s, "  {e}");
        }
        if self.sample.is_some() {
            let _ = writeln!(s, "{}", self.nines_line());
        }
        let _ = writeln!(
            s,
            "{}: {} stale, {} orphaned ({} checked in {:.1}s, grace {}s)",
            if self.consistent() {
                "CONSISTENT"
            } else {
                "INCONSISTENT"
            },
            total.stale,
            total.orphaned,
            total.checked,
            self.elapsed.as_secs_f64(),
            fmt_secs(self.grace)
        );
        s
    }

    pub fn render_json(&self) -> String {
        let counts = |c: &Counts| {
            serde_json::json!({
                "checked": c.checked, "matched": c.matched, "missing": c.missing,
                "stale": c.stale, "orphaned": c.orphaned, "settled": c.settled,
            })
        };
        let tables: serde_json::Map<String, serde_json::Value> = self
            .tables
            .iter()
            .map(|(n, c)| (n.clone(), counts(c)))
            .collect();
        serde_json::json!({
            "consistent": self.consistent(),
            "total": counts(&self.total()),
            "tables": tables,
            "sample": self.sample,
            "grace_seconds": self.grace.as_secs_f64(),
            "elapsed_seconds": self.elapsed.as_secs_f64(),
            "nines": self.nines(),
            "examples": self.examples,
        })
        .to_string()
    }
}

fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}", s as u64)
    } else {
        format!("{s:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(checked: u64, stale: u64) -> Report {
        Report {
            tables: vec![(
                "t".into(),
                Counts {
                    checked,
                    matched: checked - stale,
                    stale,
                    ..Default::default()
                },
            )],
            sample: Some(checked),
            grace: Duration::from_secs(2),
            elapsed: Duration::from_secs(1),
            examples: vec![],
        }
    }

    #[test]
    fn nines_line() {
        assert_eq!(
            report(1000, 0).nines_line(),
            "3.0 nines consistent after 2 seconds (at least: 1000 checked, none stale or orphaned)"
        );
        assert_eq!(
            report(1000, 10).nines_line(),
            "2.0 nines consistent after 2 seconds (10 of 1000 checked stale or orphaned)"
        );
        assert!(!report(1000, 10).consistent());
    }
}
