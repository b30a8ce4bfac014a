//! The value behind a vset key. Payload and version live in one allocation-owning
//! struct that Redis holds as one module value, so they can never be observed or
//! persisted apart (the Meta cache-race lesson in DESIGN.md).

/// A versioned value, or a tombstone (`payload == None`) that remembers the version
/// of a delete so an older write cannot bring the row back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedValue {
    pub version: u64,
    pub payload: Option<Vec<u8>>,
}

impl VersionedValue {
    pub fn value(version: u64, payload: &[u8]) -> Self {
        Self {
            version,
            payload: Some(payload.to_vec()),
        }
    }

    pub fn tombstone(version: u64) -> Self {
        Self {
            version,
            payload: None,
        }
    }

    pub fn is_tombstone(&self) -> bool {
        self.payload.is_none()
    }

    /// Replaces the content in place, reusing the payload buffer when it has room.
    pub fn overwrite(&mut self, version: u64, payload: Option<&[u8]>) {
        self.version = version;
        match (payload, self.payload.as_mut()) {
            (Some(new), Some(buf)) => {
                buf.clear();
                buf.extend_from_slice(new);
            }
            (Some(new), None) => self.payload = Some(new.to_vec()),
            (None, _) => self.payload = None,
        }
    }

    /// Bytes this value holds (for `MEMORY USAGE` and eviction accounting).
    pub fn memory_usage(&self) -> usize {
        std::mem::size_of::<Self>() + self.payload.as_ref().map_or(0, Vec::capacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overwrite_switches_between_value_and_tombstone() {
        let mut v = VersionedValue::value(1, b"a");
        v.overwrite(2, None);
        assert_eq!(v, VersionedValue::tombstone(2));
        assert!(v.is_tombstone());
        v.overwrite(3, Some(b"bbb"));
        assert_eq!(v, VersionedValue::value(3, b"bbb"));
        v.overwrite(4, Some(b""));
        assert_eq!(v, VersionedValue::value(4, b""));
        assert!(!v.is_tombstone());
        assert!(v.memory_usage() >= std::mem::size_of::<VersionedValue>());
    }
}
