//! The seeded workload and fault schedule every strategy replays: same keys, same
//! faults, same reads, in the same order, so the lab table is reproducible.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    None,
    /// A process dies between the two writes (the app, or for relay-based
    /// strategies the relay between cache write and COMMIT).
    Crash,
    /// The cache is unreachable during the second write.
    Outage,
    /// A retried cache (or, for write-behind, database) write lands late.
    LateRetry,
    /// A read-miss fill races the second write.
    FillRace,
    /// Like a late retry, but the key is evicted between the newer write's
    /// delivery and the late original: whatever remembered the newer version in
    /// the cache entry itself has forgotten it.
    EvictThenLate,
    /// The relays are down for a while after the second write commits (the
    /// write-path strategies have no relay: for them it is a fault-free episode).
    RelayOutage,
}

impl Fault {
    pub const ALL: [Fault; 7] = [
        Fault::None,
        Fault::Crash,
        Fault::Outage,
        Fault::LateRetry,
        Fault::FillRace,
        Fault::EvictThenLate,
        Fault::RelayOutage,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Crash => "crash between writes",
            Fault::Outage => "cache outage",
            Fault::LateRetry => "retry landing late",
            Fault::FillRace => "read-miss fill race",
            Fault::EvictThenLate => "eviction, then a late retry",
            Fault::RelayOutage => "relay outage",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Episode {
    pub key: i32,
    pub fault: Fault,
    /// Fill race only: the reader's SET lands before the delayed work.
    pub fill_early: bool,
    /// Reads (keys) served before the episode's writes: the hit-rate workload.
    pub reads: Vec<i32>,
}

/// `episodes` episodes over keys `1..=keys`; half fault-free, the rest split
/// evenly between the faults; hot keys are drawn 4x as often as the rest.
pub fn build(seed: u64, episodes: usize, keys: i32, reads_per_episode: usize) -> Vec<Episode> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let hot = (keys / 10).max(1);
    let pick = |rng: &mut ChaCha8Rng| {
        if rng.random_bool(0.3) {
            rng.random_range(1..=hot)
        } else {
            rng.random_range(1..=keys)
        }
    };
    (0..episodes)
        .map(|_| {
            let key = pick(&mut rng);
            let fault = if rng.random_bool(0.5) {
                Fault::None
            } else {
                Fault::ALL[rng.random_range(1..Fault::ALL.len())]
            };
            let fill_early = rng.random_bool(0.5);
            let reads = (0..reads_per_episode).map(|_| pick(&mut rng)).collect();
            Episode {
                key,
                fault,
                fill_early,
                reads,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_schedule() {
        let a = build(7, 50, 20, 3);
        let b = build(7, 50, 20, 3);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_ne!(format!("{a:?}"), format!("{:?}", build(8, 50, 20, 3)));
        assert!(a.iter().all(|e| (1..=20).contains(&e.key)));
    }
}
