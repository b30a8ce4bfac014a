//! Module arguments (`--loadmodule libvset_redis.so name value ...`): parsed once at
//! load time, validated, and refused with a clear message when wrong, so a typo
//! never silently runs the module with a setting the operator did not ask for.

use thiserror::Error;

use crate::data::decision::Gates;

/// Default number of floor buckets: 512 KiB of `u64`s, small next to any cache, and
/// fine-grained enough that one forgotten key rarely blocks another key's fill.
pub const DEFAULT_BUCKETS: usize = 65_536;
/// Upper bound on buckets (128 MiB of floors) so a typo cannot eat the server.
pub const MAX_BUCKETS: usize = 1 << 24;
/// Default tombstone lifetime: 24 h, long enough to outlive any sane relay backlog.
pub const DEFAULT_TOMBSTONE_TTL_MS: u64 = 86_400_000;

/// The settings of one loaded module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleConfig {
    /// Size of the floor table (`buckets N`).
    pub buckets: usize,
    /// Expiry given to a tombstone when `VDEL` has no `EX`/`PX` (`tombstone-ttl-ms N`).
    pub tombstone_ttl_ms: u64,
    /// Start cold (refuse writes until `VFLOOR version`) when no saved state was
    /// loaded (`cold-start yes|no`).
    pub cold_start: bool,
    /// The order checks enforced: always all of them, except in a module built with
    /// the test-only feature `unsafe-test-gates` and loaded with
    /// `unsafe-test-disable-gate version|floor` (the chaos matrix's controls).
    pub gates: Gates,
}

impl Default for ModuleConfig {
    fn default() -> Self {
        Self {
            buckets: DEFAULT_BUCKETS,
            tombstone_ttl_ms: DEFAULT_TOMBSTONE_TTL_MS,
            cold_start: true,
            gates: Gates::ALL,
        }
    }
}

/// Why the module refuses to load.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("module argument `{0}` has no value (arguments are `name value` pairs)")]
    MissingValue(String),
    #[error("unknown module argument `{0}` (known: buckets, tombstone-ttl-ms, cold-start)")]
    UnknownName(String),
    #[error("module argument `{name}` given twice")]
    Duplicate { name: String },
    #[error("module argument `{name}`: `{value}` is not {expected}")]
    BadValue {
        name: String,
        value: String,
        expected: &'static str,
    },
}

impl ModuleConfig {
    /// Parses `name value` pairs. Names are case-insensitive; values are exact.
    pub fn parse<A: AsRef<[u8]>>(args: &[A]) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        let mut seen: Vec<String> = Vec::new();
        let mut it = args.iter();
        while let Some(name) = it.next() {
            let name = String::from_utf8_lossy(name.as_ref()).to_ascii_lowercase();
            let value = it
                .next()
                .ok_or_else(|| ConfigError::MissingValue(name.clone()))?;
            let value = String::from_utf8_lossy(value.as_ref()).into_owned();
            if seen.contains(&name) {
                return Err(ConfigError::Duplicate { name });
            }
            let bad = |expected| ConfigError::BadValue {
                name: name.clone(),
                value: value.clone(),
                expected,
            };
            match name.as_str() {
                "buckets" => {
                    config.buckets = parse_decimal(&value)
                        .and_then(|n| usize::try_from(n).ok())
                        .filter(|n| (1..=MAX_BUCKETS).contains(n))
                        .ok_or_else(|| bad("an integer from 1 to 16777216"))?;
                }
                "tombstone-ttl-ms" => {
                    config.tombstone_ttl_ms = parse_decimal(&value)
                        .filter(|n| (1..=i64::MAX as u64 / 2).contains(n))
                        .ok_or_else(|| bad("a positive number of milliseconds"))?;
                }
                "cold-start" => {
                    config.cold_start = match value.to_ascii_lowercase().as_str() {
                        "yes" => true,
                        "no" => false,
                        _ => return Err(bad("`yes` or `no`")),
                    };
                }
                #[cfg(feature = "unsafe-test-gates")]
                "unsafe-test-disable-gate" => match value.to_ascii_lowercase().as_str() {
                    "version" => config.gates.version = false,
                    "floor" => config.gates.floor = false,
                    _ => return Err(bad("`version` or `floor`")),
                },
                _ => return Err(ConfigError::UnknownName(name)),
            }
            seen.push(name);
        }
        Ok(config)
    }
}

/// Plain decimal digits only: no sign, no spaces, no exponent.
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ModuleConfig, ConfigError> {
        ModuleConfig::parse(args)
    }

    #[test]
    fn defaults_without_arguments() {
        assert_eq!(parse(&[]).unwrap(), ModuleConfig::default());
        assert_eq!(ModuleConfig::default().buckets, 65_536);
        assert_eq!(ModuleConfig::default().tombstone_ttl_ms, 86_400_000);
        assert!(ModuleConfig::default().cold_start);
    }

    #[test]
    fn every_argument() {
        let c = parse(&[
            "buckets",
            "16",
            "TOMBSTONE-TTL-MS",
            "500",
            "cold-start",
            "no",
        ])
        .unwrap();
        assert_eq!(
            c,
            ModuleConfig {
                buckets: 16,
                tombstone_ttl_ms: 500,
                cold_start: false,
                gates: Gates::ALL,
            }
        );
    }

    #[test]
    #[cfg(not(feature = "unsafe-test-gates"))]
    fn a_production_build_refuses_to_disable_a_gate() {
        assert_eq!(
            parse(&["unsafe-test-disable-gate", "version"]),
            Err(ConfigError::UnknownName("unsafe-test-disable-gate".into()))
        );
    }

    #[test]
    #[cfg(feature = "unsafe-test-gates")]
    fn the_control_build_disables_one_gate_at_a_time() {
        let c = parse(&["unsafe-test-disable-gate", "version"]).unwrap();
        assert_eq!((c.gates.version, c.gates.floor), (false, true));
        let c = parse(&["unsafe-test-disable-gate", "floor"]).unwrap();
        assert_eq!((c.gates.version, c.gates.floor), (true, false));
        assert!(matches!(
            parse(&["unsafe-test-disable-gate", "all"]),
            Err(ConfigError::BadValue { .. })
        ));
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert_eq!(
            parse(&["buckets"]),
            Err(ConfigError::MissingValue("buckets".into()))
        );
        assert_eq!(
            parse(&["bucket", "5"]),
            Err(ConfigError::UnknownName("bucket".into()))
        );
        for args in [
            ["buckets", "0"],
            ["buckets", "16777217"],
            ["buckets", "-1"],
            ["tombstone-ttl-ms", "0"],
            ["cold-start", "maybe"],
        ] {
            assert!(
                matches!(parse(&args), Err(ConfigError::BadValue { .. })),
                "{args:?}"
            );
        }
        assert_eq!(
            parse(&["buckets", "8", "buckets", "9"]),
            Err(ConfigError::Duplicate {
                name: "buckets".into()
            })
        );
    }
}
