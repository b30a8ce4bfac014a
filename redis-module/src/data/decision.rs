//! The order-safety rule (docs/design.md, invariants 3 and 4) as one pure function, so the
//! command layer cannot get the order of the checks wrong.

/// What to do with an incoming `VSET`/`VDEL` from a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Store it: newer than the stored version and above the bucket's floor.
    Apply,
    /// The module is cold (no saved state, no `VFLOOR` yet): store nothing.
    Cold,
    /// Not newer than the version already stored (equal versions included).
    Stale,
    /// Newer than what is stored but at or below the floor: store nothing, and
    /// remove the stored value (it is older than a write we had to refuse).
    BelowFloor,
}

/// Which checks [`decide_with`] enforces. Every production build enforces all of
/// them ([`Gates::ALL`]); only a module built with the test-only feature
/// `unsafe-test-gates` can be told to skip one (module argument
/// `unsafe-test-disable-gate version|floor`), so that the chaos matrix can run its
/// cells against a deliberately broken module and prove that each cell would catch
/// the bug its fault is named for (a control that finds nothing tests nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gates {
    /// Refuse a write not newer than the stored version.
    pub version: bool,
    /// Refuse a write at or below its bucket's floor.
    pub floor: bool,
}

impl Gates {
    pub const ALL: Gates = Gates {
        version: true,
        floor: true,
    };
}

/// Decides a client write of `incoming` against the key's `stored` version (None
/// when the key is missing), its bucket's `floor`, and the cold state. Version 0 is
/// never newer than anything (0 is what "unknown" reads as).
pub fn decide(incoming: u64, stored: Option<u64>, floor: u64, cold: bool) -> Decision {
    decide_with(incoming, stored, floor, cold, Gates::ALL)
}

/// [`decide`] with only the checks `gates` enforces (see [`Gates`]).
#[inline(always)]
pub fn decide_with(
    incoming: u64,
    stored: Option<u64>,
    floor: u64,
    cold: bool,
    gates: Gates,
) -> Decision {
    if cold {
        return Decision::Cold;
    }
    if let Some(stored) = stored {
        if !gates.version {
            // No version check: a plain SET over whatever is there.
            return Decision::Apply;
        }
        if incoming <= stored {
            return Decision::Stale;
        }
    }
    if gates.floor && incoming <= floor {
        return Decision::BelowFloor;
    }
    Decision::Apply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_wins_equal_and_older_lose() {
        assert_eq!(decide(5, None, 0, false), Decision::Apply);
        assert_eq!(decide(6, Some(5), 0, false), Decision::Apply);
        assert_eq!(decide(5, Some(5), 0, false), Decision::Stale);
        assert_eq!(decide(4, Some(5), 0, false), Decision::Stale);
        assert_eq!(
            decide(9_007_199_254_740_993, Some(9_007_199_254_740_992), 0, false),
            Decision::Apply
        );
        assert_eq!(
            decide(u64::MAX, Some(u64::MAX - 1), 0, false),
            Decision::Apply
        );
    }

    #[test]
    fn floor_blocks_at_and_below() {
        assert_eq!(decide(10, None, 10, false), Decision::BelowFloor);
        assert_eq!(decide(9, None, 10, false), Decision::BelowFloor);
        assert_eq!(decide(11, None, 10, false), Decision::Apply);
        assert_eq!(decide(8, Some(3), 10, false), Decision::BelowFloor);
        assert_eq!(decide(0, None, 0, false), Decision::BelowFloor);
    }

    #[test]
    fn disabled_gates_let_the_write_through() {
        let no_version = Gates {
            version: false,
            floor: true,
        };
        assert_eq!(
            decide_with(4, Some(5), 0, false, no_version),
            Decision::Apply
        );
        assert_eq!(
            decide_with(4, Some(5), 10, false, no_version),
            Decision::Apply
        );
        assert_eq!(
            decide_with(4, None, 10, false, no_version),
            Decision::BelowFloor
        );
        let no_floor = Gates {
            version: true,
            floor: false,
        };
        assert_eq!(decide_with(9, None, 10, false, no_floor), Decision::Apply);
        assert_eq!(
            decide_with(4, Some(5), 10, false, no_floor),
            Decision::Stale
        );
        assert_eq!(decide_with(1, None, 0, true, no_floor), Decision::Cold);
    }

    #[test]
    fn cold_refuses_everything() {
        assert_eq!(decide(u64::MAX, None, 0, true), Decision::Cold);
        assert_eq!(decide(1, Some(5), 0, true), Decision::Cold);
    }
}
