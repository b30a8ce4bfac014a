//! Replays the schedule on one strategy and turns what happened into the lab's
//! figures. After every episode (once the strategy has settled: delayed deletes
//! ran, relays drained) the cache and the database are compared for that key:
//! - stale: a reader would be served a value different from the committed row;
//! - lost write: a write the caller was told succeeded is not what the database
//!   ended with, and no later write replaced it.

use std::collections::HashMap;

use crate::schedule::{Episode, Fault};
use crate::strategy::{ordinal_of, Strategy};
use crate::LabError;

#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub strategy: String,
    pub episodes: u64,
    pub writes: u64,
    pub failed_writes: u64,
    /// Episodes that ended with a stale cache entry, per fault.
    pub stale_by_fault: HashMap<Fault, u64>,
    pub lost_writes: u64,
    /// Keys still stale when the whole schedule is done.
    pub stale_keys_at_end: u64,
    pub write_p99_us: u64,
    pub reads: u64,
    pub hits: u64,
}

impl Figures {
    pub fn stale(&self) -> u64 {
        self.stale_by_fault.values().sum()
    }

    pub fn hit_rate(&self) -> f64 {
        if self.reads == 0 {
            0.0
        } else {
            self.hits as f64 / self.reads as f64
        }
    }
}

pub fn replay(s: &mut dyn Strategy, schedule: &[Episode], keys: i32) -> Result<Figures, LabError> {
    let mut f = Figures {
        strategy: s.name().to_string(),
        ..Default::default()
    };
    let mut latencies = Vec::new();
    let mut ordinal = 0u64;
    for ep in schedule {
        for &k in &ep.reads {
            f.reads += 1;
            if s.read(k)? {
                f.hits += 1;
            }
        }
        // Make sure the key is cached, so a fault that skips an update shows.
        s.read(ep.key)?;
        let (w1, w2) = (ordinal + 1, ordinal + 2);
        ordinal += 2;
        let r = s.episode(ep.key, w1, w2, ep.fault, ep.fill_early)?;
        f.episodes += 1;
        f.writes += 2;
        f.failed_writes += r.failed_writes;
        latencies.extend(r.write_us);
        let stored = s.stored(ep.key)?;
        let cached = s.cached(ep.key)?;
        if let (Some(c), Some(d)) = (&cached, &stored) {
            if c != d {
                *f.stale_by_fault.entry(ep.fault).or_default() += 1;
            }
        }
        let in_db = stored.as_deref().map(ordinal_of).unwrap_or(0);
        if in_db < r.last_acked {
            f.lost_writes += 1;
        }
    }
    for k in 1..=keys {
        if let (Some(c), Some(d)) = (s.cached(k)?, s.stored(k)?) {
            if c != d {
                f.stale_keys_at_end += 1;
            }
        }
    }
    latencies.sort_unstable();
    if !latencies.is_empty() {
        let idx = ((latencies.len() as f64) * 0.99).ceil() as usize;
        f.write_p99_us = latencies[idx.saturating_sub(1).min(latencies.len() - 1)];
    }
    Ok(f)
}
