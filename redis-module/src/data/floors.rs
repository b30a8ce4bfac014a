//! The floor table (docs/design.md, invariant 4): a fixed number of buckets, each holding
//! the highest version the module ever forgot for a key hashing into it. No per-key
//! memory, so eviction really frees memory.
//!
//! Floors only ever rise (except when a whole saved table is adopted on load), and
//! they are atomics because Redis may free values from its lazy-free thread and the
//! RDB/AOF child reads them; every caller is otherwise on Redis' main thread.

use std::sync::atomic::{AtomicU64, Ordering};

/// 64-bit FNV-1a. Stable across builds and platforms, which matters because floors
/// are persisted by bucket number: changing the hash would scramble saved floors.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Bucket of a key: `fnv1a64(key) mod buckets`.
pub fn bucket_of(key: &[u8], buckets: usize) -> usize {
    (fnv1a64(key) % buckets as u64) as usize
}

pub struct FloorTable {
    floors: Box<[AtomicU64]>,
    /// `buckets - 1` when the count is a power of two (the default 65536): then
    /// `hash & mask` equals `hash % buckets` and spares a 64-bit division on every
    /// write. Same buckets either way, so saved floors keep their meaning.
    mask: Option<u64>,
}

impl FloorTable {
    /// A table of `buckets` zero floors (`buckets` ≥ 1, validated by the config).
    pub fn new(buckets: usize) -> Self {
        let buckets = buckets.max(1);
        Self {
            floors: (0..buckets).map(|_| AtomicU64::new(0)).collect(),
            mask: buckets.is_power_of_two().then(|| buckets as u64 - 1),
        }
    }

    pub fn buckets(&self) -> usize {
        self.floors.len()
    }

    /// `key`'s bucket: `fnv1a64(key) mod buckets`.
    pub fn bucket(&self, key: &[u8]) -> usize {
        match self.mask {
            Some(mask) => (fnv1a64(key) & mask) as usize,
            None => bucket_of(key, self.floors.len()),
        }
    }

    /// Asks the CPU to start loading `bucket`'s floor now. The table (512 KiB by
    /// default) is read at a random place per write, so the load usually misses the
    /// cache; started before the key lookup, the miss overlaps with it. The floor is
    /// still read after the lookup, because looking a key up can expire it and raise
    /// this very floor.
    pub fn prefetch(&self, bucket: usize) {
        #[cfg(target_arch = "x86_64")]
        if let Some(f) = self.floors.get(bucket) {
            // SAFETY: a prefetch is only a hint; the address is inside the table.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    f.as_ptr().cast::<i8>(),
                )
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = bucket;
    }

    /// The floor of `bucket` (0 for a bucket out of range, which `bucket` never returns).
    pub fn floor_at(&self, bucket: usize) -> u64 {
        self.floors
            .get(bucket)
            .map_or(0, |f| f.load(Ordering::Relaxed))
    }

    /// The floor that applies to `key`.
    pub fn floor_for(&self, key: &[u8]) -> u64 {
        self.floor_at(self.bucket(key))
    }

    /// Raises `key`'s bucket to at least `version`; true when the floor rose.
    pub fn raise_for(&self, key: &[u8], version: u64) -> bool {
        self.raise_at(self.bucket(key), version)
    }

    /// Raises `bucket` to at least `version`; true when the floor rose.
    pub fn raise_at(&self, bucket: usize, version: u64) -> bool {
        self.floors
            .get(bucket)
            .is_some_and(|f| f.fetch_max(version, Ordering::Relaxed) < version)
    }

    /// Raises every bucket to at least `version`; returns how many rose.
    pub fn raise_all(&self, version: u64) -> u64 {
        self.floors
            .iter()
            .filter(|f| f.fetch_max(version, Ordering::Relaxed) < version)
            .count() as u64
    }

    /// The highest floor of all buckets.
    pub fn highest(&self) -> u64 {
        self.floors
            .iter()
            .map(|f| f.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }

    /// Non-zero floors as `(bucket, floor)` pairs (what is persisted).
    pub fn nonzero(&self) -> Vec<(u32, u64)> {
        self.floors
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let v = f.load(Ordering::Relaxed);
                (v > 0).then_some((i as u32, v))
            })
            .collect()
    }

    /// Every floor back to 0 (`VFLOOR RESET`, on an empty Redis only).
    pub fn reset(&self) {
        for f in self.floors.iter() {
            f.store(0, Ordering::Relaxed);
        }
    }

    /// Adopts a saved table: the state a snapshot describes replaces ours (a reload
    /// or a replica's full sync means "become that state").
    ///
    /// When the saved table had a different bucket count, keys map to other buckets,
    /// so the only safe translation is every bucket at the highest saved floor.
    /// Returns false in that case so the caller can log it.
    pub fn adopt(&self, saved_buckets: u32, saved: &[(u32, u64)]) -> bool {
        for f in self.floors.iter() {
            f.store(0, Ordering::Relaxed);
        }
        if saved_buckets as usize == self.floors.len() {
            for &(bucket, floor) in saved {
                if let Some(f) = self.floors.get(bucket as usize) {
                    f.fetch_max(floor, Ordering::Relaxed);
                }
            }
            true
        } else {
            let highest = saved.iter().map(|&(_, f)| f).max().unwrap_or(0);
            self.raise_all(highest);
            false
        }
    }

    /// Raises individual buckets (the AOF form of a saved table; raise-only, so
    /// replaying it twice or on top of newer floors is harmless).
    pub fn raise_buckets(&self, saved_buckets: u32, saved: &[(u32, u64)]) -> u64 {
        if saved_buckets as usize != self.floors.len() {
            let highest = saved.iter().map(|&(_, f)| f).max().unwrap_or(0);
            return self.raise_all(highest);
        }
        saved
            .iter()
            .filter(|&&(bucket, floor)| {
                self.floors
                    .get(bucket as usize)
                    .is_some_and(|f| f.fetch_max(floor, Ordering::Relaxed) < floor)
            })
            .count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_is_the_published_function() {
        // Reference values of 64-bit FNV-1a.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn raise_is_monotonic_and_per_bucket() {
        let t = FloorTable::new(1024);
        assert_eq!(t.floor_for(b"k"), 0);
        assert!(t.raise_for(b"k", 10));
        assert!(!t.raise_for(b"k", 5));
        assert!(!t.raise_for(b"k", 10));
        assert_eq!(t.floor_for(b"k"), 10);
        let other = (0..)
            .map(|i| format!("o{i}"))
            .find(|k| t.bucket(k.as_bytes()) != t.bucket(b"k"))
            .unwrap();
        assert_eq!(t.floor_for(other.as_bytes()), 0);
        assert_eq!(t.highest(), 10);
        assert_eq!(t.nonzero(), vec![(t.bucket(b"k") as u32, 10)]);
    }

    #[test]
    fn masked_buckets_equal_the_modulo_ones() {
        for buckets in [1usize, 2, 1024, 65536, 1000, 65537] {
            let t = FloorTable::new(buckets);
            for i in 0..2000 {
                let key = format!("key:{i}");
                assert_eq!(t.bucket(key.as_bytes()), bucket_of(key.as_bytes(), buckets));
            }
        }
    }

    #[test]
    fn raise_all_counts_risen_buckets() {
        let t = FloorTable::new(8);
        t.raise_for(b"k", 100);
        assert_eq!(t.raise_all(50), 7);
        assert_eq!(t.floor_for(b"k"), 100);
        assert_eq!(t.highest(), 100);
        assert_eq!(t.raise_all(u64::MAX), 8);
        assert_eq!(t.highest(), u64::MAX);
    }

    #[test]
    fn adopt_replaces_and_remaps_conservatively() {
        let t = FloorTable::new(4);
        t.raise_all(99);
        assert!(t.adopt(4, &[(1, 7), (3, 9)]));
        assert_eq!(t.nonzero(), vec![(1, 7), (3, 9)]);
        assert!(!t.adopt(16, &[(1, 7), (13, 9)]));
        assert_eq!(t.nonzero(), vec![(0, 9), (1, 9), (2, 9), (3, 9)]);
        assert!(t.adopt(4, &[(17, 5)])); // out of range bucket is ignored
        assert_eq!(t.highest(), 0);
    }

    #[test]
    fn raise_buckets_never_lowers() {
        let t = FloorTable::new(4);
        t.raise_all(10);
        assert_eq!(t.raise_buckets(4, &[(0, 5), (1, 20)]), 1);
        assert_eq!(t.nonzero(), vec![(0, 10), (1, 20), (2, 10), (3, 10)]);
    }
}
