//! The persisted form of vset data (RDB values, RDB aux floors), independent of the
//! in-memory structs so those can change without breaking saved files.
//!
//! Every record is `[format: u8][bincode body][fnv1a64 of the previous bytes: u64 LE]`.
//! The format byte lets a newer module read older files (add `FORMAT_V2`, keep the
//! V1 decoder); the checksum makes a flipped byte a load error instead of a wrong
//! value, even when Redis' own RDB checksum is turned off (`rdbchecksum no`).

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::floors::fnv1a64;
use super::value::{ValueRef, VersionedValue};

/// Current format of a value record.
pub const VALUE_FORMAT_V1: u8 = 1;
/// Current format of a floors record.
pub const FLOORS_FORMAT_V1: u8 = 1;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record is {0} bytes, too short to hold a format byte and a checksum")]
    TooShort(usize),
    #[error(
        "checksum mismatch (stored {stored:#018x}, computed {computed:#018x}): the data is corrupt"
    )]
    Checksum { stored: u64, computed: u64 },
    #[error("unknown record format {0} (written by a newer vset module?)")]
    UnknownFormat(u8),
    #[error("malformed record body: {0}")]
    Body(String),
}

#[derive(Serialize, Deserialize)]
struct ValueRecordV1 {
    version: u64,
    payload: Option<Vec<u8>>,
}

#[derive(Serialize, Deserialize)]
struct FloorsRecordV1 {
    cold: bool,
    buckets: u32,
    floors: Vec<(u32, u64)>,
}

/// The floor table and cold flag as saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedFloors {
    pub cold: bool,
    pub buckets: u32,
    /// Non-zero floors only, as `(bucket, floor)`.
    pub floors: Vec<(u32, u64)>,
}

fn options(limit: usize) -> impl Options {
    bincode::DefaultOptions::new()
        .with_limit(limit as u64)
        .reject_trailing_bytes()
}

fn seal(format: u8, body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 9);
    out.push(format);
    out.extend_from_slice(&body);
    let sum = fnv1a64(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// Checks length and checksum; returns the format byte and the body.
fn open(bytes: &[u8]) -> Result<(u8, &[u8]), DecodeError> {
    if bytes.len() < 9 {
        return Err(DecodeError::TooShort(bytes.len()));
    }
    let (sealed, sum) = bytes.split_at(bytes.len() - 8);
    let mut stored = [0u8; 8];
    stored.copy_from_slice(sum);
    let stored = u64::from_le_bytes(stored);
    let computed = fnv1a64(sealed);
    if stored != computed {
        return Err(DecodeError::Checksum { stored, computed });
    }
    Ok((sealed[0], &sealed[1..]))
}

fn encode_body<T: Serialize>(record: &T) -> Vec<u8> {
    // Serialising plain structs into a Vec cannot fail; an empty body would be
    // caught as malformed on load rather than crash the server here.
    options(usize::MAX).serialize(record).unwrap_or_default()
}

pub fn encode_value(value: ValueRef<'_>) -> Vec<u8> {
    let record = ValueRecordV1 {
        version: value.version(),
        payload: value.payload().map(<[u8]>::to_vec),
    };
    seal(VALUE_FORMAT_V1, encode_body(&record))
}

/// Decodes a record body. Every element takes at least one byte of body, so bounding
/// the decoder by the body size keeps a corrupt length from asking for a huge
/// allocation.
fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    options(body.len())
        .deserialize(body)
        .map_err(|e| DecodeError::Body(e.to_string()))
}

pub fn decode_value(bytes: &[u8]) -> Result<VersionedValue, DecodeError> {
    let (format, body) = open(bytes)?;
    match format {
        VALUE_FORMAT_V1 => {
            let r: ValueRecordV1 = decode_body(body)?;
            VersionedValue::new(r.version, r.payload.as_deref())
                .map_err(|e| DecodeError::Body(e.to_string()))
        }
        other => Err(DecodeError::UnknownFormat(other)),
    }
}

pub fn encode_floors(saved: &SavedFloors) -> Vec<u8> {
    let record = FloorsRecordV1 {
        cold: saved.cold,
        buckets: saved.buckets,
        floors: saved.floors.clone(),
    };
    seal(FLOORS_FORMAT_V1, encode_body(&record))
}

pub fn decode_floors(bytes: &[u8]) -> Result<SavedFloors, DecodeError> {
    let (format, body) = open(bytes)?;
    match format {
        FLOORS_FORMAT_V1 => {
            let r: FloorsRecordV1 = decode_body(body)?;
            if r.buckets == 0 {
                return Err(DecodeError::Body("bucket count is 0".into()));
            }
            Ok(SavedFloors {
                cold: r.cold,
                buckets: r.buckets,
                floors: r.floors,
            })
        }
        other => Err(DecodeError::UnknownFormat(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(version: u64, payload: &[u8]) -> VersionedValue {
        VersionedValue::new(version, Some(payload)).expect("small")
    }

    #[test]
    fn values_round_trip() {
        for v in [
            value(1, b"hello"),
            value(u64::MAX, b""),
            value(9_007_199_254_740_993, &[0, 255, 10, 13]),
            VersionedValue::tombstone(42),
        ] {
            assert_eq!(decode_value(&encode_value(v.view())), Ok(v));
        }
    }

    #[test]
    fn floors_round_trip() {
        let s = SavedFloors {
            cold: false,
            buckets: 65_536,
            floors: vec![(0, 1), (65_535, u64::MAX)],
        };
        assert_eq!(decode_floors(&encode_floors(&s)), Ok(s));
    }

    #[test]
    fn every_single_byte_flip_is_detected() {
        let bytes = encode_value(value(77, b"payload-bytes").view());
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut c = bytes.clone();
                c[i] ^= 1 << bit;
                assert!(decode_value(&c).is_err(), "flip at byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn truncation_and_garbage_are_errors() {
        let bytes = encode_value(value(77, b"x").view());
        for n in 0..bytes.len() {
            assert!(decode_value(&bytes[..n]).is_err());
        }
        assert_eq!(decode_value(b"short"), Err(DecodeError::TooShort(5)));
        // A well-sealed record with an unknown format byte.
        let future = seal(9, vec![1, 2, 3]);
        assert_eq!(decode_value(&future), Err(DecodeError::UnknownFormat(9)));
        // A well-sealed record whose body is not a value record.
        let junk = seal(VALUE_FORMAT_V1, vec![0xff; 3]);
        assert!(matches!(decode_value(&junk), Err(DecodeError::Body(_))));
        let zero = seal(
            FLOORS_FORMAT_V1,
            encode_body(&FloorsRecordV1 {
                cold: true,
                buckets: 0,
                floors: vec![],
            }),
        );
        assert!(matches!(decode_floors(&zero), Err(DecodeError::Body(_))));
    }

    #[test]
    fn format_v1_bytes_are_stable() {
        // Pinned bytes: if this changes, saved RDB files stop loading. Add a new
        // format instead of changing V1.
        let bytes = encode_value(value(300, b"ab").view());
        assert_eq!(&bytes[..7], &[1, 251, 44, 1, 1, 2, b'a']);
        assert_eq!(bytes[7], b'b');
        assert_eq!(bytes.len(), 16);
    }
}
