//! `[EX seconds | PX milliseconds | EXAT unix-seconds | PXAT unix-milliseconds]`, as in
//! `SET`. Relative times are turned into an absolute `PXAT` before replication so a
//! replica or an AOF replay expires the key at the same moment as the master.

use super::error::CommandError;

/// Upper bound on any expire time in milliseconds: keeps `now + ttl` far from overflow.
const MAX_MS: u64 = (i64::MAX / 4) as u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No option given.
    Unset,
    /// Relative, in milliseconds.
    In(i64),
    /// Absolute, unix time in milliseconds.
    At(i64),
}

impl Expiry {
    /// The absolute expire time (ms) given the current time and the default for
    /// this write (a tombstone's default TTL, or none).
    pub fn resolve(self, now_ms: i64, default_ttl_ms: Option<u64>) -> Option<i64> {
        match self {
            Expiry::In(ms) => Some(now_ms.saturating_add(ms)),
            Expiry::At(at) => Some(at),
            Expiry::Unset => default_ttl_ms.map(|ttl| now_ms.saturating_add(ttl as i64)),
        }
    }
}

/// Parses the trailing options of `command` (`opts` is everything after the
/// fixed arguments).
pub fn parse_expiry(command: &'static str, opts: &[&[u8]]) -> Result<Expiry, CommandError> {
    let (name, value) = match opts {
        [] => return Ok(Expiry::Unset),
        [name, value] => (name.to_ascii_lowercase(), *value),
        _ => return Err(CommandError::Syntax),
    };
    let (scale, absolute) = match name.as_slice() {
        b"ex" => (1000, false),
        b"px" => (1, false),
        b"exat" => (1000, true),
        b"pxat" => (1, true),
        _ => return Err(CommandError::Syntax),
    };
    let bad = || CommandError::BadExpire(command);
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let n: u64 = std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let ms = n
        .checked_mul(scale)
        .filter(|ms| (1..=MAX_MS).contains(ms))
        .ok_or_else(bad)? as i64;
    Ok(if absolute {
        Expiry::At(ms)
    } else {
        Expiry::In(ms)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> Result<Expiry, CommandError> {
        let v: Vec<&[u8]> = opts.iter().map(|s| s.as_bytes()).collect();
        parse_expiry("vset", &v)
    }

    #[test]
    fn options() {
        assert_eq!(p(&[]).unwrap(), Expiry::Unset);
        assert_eq!(p(&["EX", "10"]).unwrap(), Expiry::In(10_000));
        assert_eq!(p(&["px", "1500"]).unwrap(), Expiry::In(1_500));
        assert_eq!(p(&["EXAT", "2"]).unwrap(), Expiry::At(2_000));
        assert_eq!(p(&["PXAT", "123"]).unwrap(), Expiry::At(123));
    }

    #[test]
    fn bad_options() {
        assert!(matches!(p(&["EX"]), Err(CommandError::Syntax)));
        assert!(matches!(
            p(&["EX", "1", "PX", "1"]),
            Err(CommandError::Syntax)
        ));
        assert!(matches!(p(&["KEEPTTL", "1"]), Err(CommandError::Syntax)));
        for v in [
            "0",
            "-1",
            "1.5",
            "abc",
            "",
            "99999999999999999999",
            "9223372036854775807",
        ] {
            assert!(
                matches!(p(&["EX", v]), Err(CommandError::BadExpire("vset"))),
                "{v}"
            );
        }
    }

    #[test]
    fn resolve() {
        assert_eq!(Expiry::Unset.resolve(1000, None), None);
        assert_eq!(Expiry::Unset.resolve(1000, Some(5)), Some(1005));
        assert_eq!(Expiry::In(7).resolve(1000, Some(5)), Some(1007));
        assert_eq!(Expiry::At(9).resolve(1000, Some(5)), Some(9));
    }
}
