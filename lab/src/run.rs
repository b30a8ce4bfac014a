//! Replays the schedule on one strategy and turns what happened into the lab's
//! figures. After every episode (once the strategy has settled: delayed deletes
//! ran, relays drained) the cache and the database are compared for that key:
//! - stale: a reader would be served a value different from the committed row;
//! - lost write: a write the caller was told succeeded is not what the database
//!   ended with, and no later write replaced it;
//! - time stale: how long stale entries stayed readable, in wall-clock time, until
//!   a later write, a TTL or the end of the run removed them, plus the time a
//!   reader was served an older value inside an episode after the caller was told
//!   "done" (a relay outage).

use std::collections::HashMap;
use std::time::{Duration, Instant};

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
    /// Summed over keys: how long stale values were readable.
    pub time_stale: Duration,
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

/// Replays the schedule on every strategy, interleaved episode by episode, so
/// whatever else the machine is doing weighs on all strategies' latencies alike.
pub fn replay_all(
    strategies: &mut [Box<dyn Strategy>],
    schedule: &[Episode],
    keys: i32,
) -> Result<Vec<Figures>, LabError> {
    let mut figures: Vec<Figures> = strategies
        .iter()
        .map(|s| Figures {
            strategy: s.name().to_string(),
            ..Default::default()
        })
        .collect();
    let mut latencies: Vec<Vec<u64>> = vec![Vec::new(); strategies.len()];
    // Per strategy: keys stale since when. Only an episode's own key can turn
    // stale (reads fill what the database holds), so after each episode that key
    // and the keys already stale (a TTL may have removed them) are checked.
    let mut stale_since: Vec<HashMap<i32, Instant>> = vec![HashMap::new(); strategies.len()];
    for (n, ep) in schedule.iter().enumerate() {
        let ordinal = 2 * n as u64;
        for (((s, f), lat), since) in strategies
            .iter_mut()
            .zip(figures.iter_mut())
            .zip(latencies.iter_mut())
            .zip(stale_since.iter_mut())
        {
            one_episode(s.as_mut(), ep, ordinal, f, lat)?;
            let mut check: Vec<i32> = since.keys().copied().collect();
            check.push(ep.key);
            for k in check {
                let stale = is_stale(s.as_mut(), k)?;
                match (stale, since.get(&k).copied()) {
                    (true, None) => {
                        since.insert(k, Instant::now());
                    }
                    (false, Some(t)) => {
                        f.time_stale += t.elapsed();
                        since.remove(&k);
                    }
                    _ => {}
                }
            }
        }
    }
    for (((s, f), mut lat), since) in strategies
        .iter_mut()
        .zip(figures.iter_mut())
        .zip(latencies)
        .zip(stale_since)
    {
        for t in since.values() {
            f.time_stale += t.elapsed();
        }
        for k in 1..=keys {
            if is_stale(s.as_mut(), k)? {
                f.stale_keys_at_end += 1;
            }
        }
        lat.sort_unstable();
        if !lat.is_empty() {
            let idx = ((lat.len() as f64) * 0.99).ceil() as usize;
            f.write_p99_us = lat[idx.saturating_sub(1).min(lat.len() - 1)];
        }
    }
    Ok(figures)
}

/// A reader would be served a value the database does not hold.
fn is_stale(s: &mut dyn Strategy, key: i32) -> Result<bool, LabError> {
    Ok(matches!((s.cached(key)?, s.stored(key)?), (Some(c), Some(d)) if c != d))
}

/// One episode on one strategy: reads, the two writes under the fault, the check.
fn one_episode(
    s: &mut dyn Strategy,
    ep: &Episode,
    ordinal: u64,
    f: &mut Figures,
    latencies: &mut Vec<u64>,
) -> Result<(), LabError> {
    for &k in &ep.reads {
        f.reads += 1;
        if s.read(k)? {
            f.hits += 1;
        }
    }
    let (w1, w2) = (ordinal + 1, ordinal + 2);
    let r = s.episode(ep.key, w1, w2, ep.fault, ep.fill_early)?;
    f.episodes += 1;
    f.writes += 2;
    f.failed_writes += r.failed_writes;
    f.time_stale += Duration::from_micros(r.stale_us);
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
    Ok(())
}
