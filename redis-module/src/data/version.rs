//! Versions are exact unsigned 64-bit integers. They are parsed by hand because
//! `u64::from_str` accepts a leading `+`, and Redis' own integer parser is signed.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum VersionError {
    #[error("version is empty")]
    Empty,
    #[error("version must contain only the digits 0-9")]
    NotDigits,
    #[error("version does not fit in an unsigned 64-bit integer")]
    Overflow,
}

/// Parses a decimal `u64`: digits only (no sign, space, point or exponent).
pub fn parse_version(bytes: &[u8]) -> Result<u64, VersionError> {
    if bytes.is_empty() {
        return Err(VersionError::Empty);
    }
    let mut v: u64 = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return Err(VersionError::NotDigits);
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(VersionError::Overflow)?;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_u64() {
        assert_eq!(parse_version(b"0"), Ok(0));
        assert_eq!(
            parse_version(b"9007199254740993"),
            Ok(9_007_199_254_740_993)
        );
        assert_eq!(parse_version(b"18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_version(b"0018"), Ok(18));
    }

    #[test]
    fn rejects_everything_else() {
        assert_eq!(parse_version(b""), Err(VersionError::Empty));
        assert_eq!(parse_version(b"-1"), Err(VersionError::NotDigits));
        assert_eq!(parse_version(b"+1"), Err(VersionError::NotDigits));
        assert_eq!(parse_version(b"1.5"), Err(VersionError::NotDigits));
        assert_eq!(parse_version(b"1e3"), Err(VersionError::NotDigits));
        assert_eq!(parse_version(b"abc"), Err(VersionError::NotDigits));
        assert_eq!(parse_version(b" 1"), Err(VersionError::NotDigits));
        assert_eq!(
            parse_version(b"18446744073709551616"),
            Err(VersionError::Overflow)
        );
        assert_eq!(
            parse_version(b"99999999999999999999999"),
            Err(VersionError::Overflow)
        );
    }
}
