//! `vset.mode`: `SET LOCAL vset.mode = 'invalidate'` makes every tracked table of
//! this transaction write only `del` records (the cheap choice for bulk jobs).

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting, PostgresGucEnum};

#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum SessionMode {
    /// Each table as tracked (`vset.track(..., mode => ...)`).
    #[name = c"set"]
    Set,
    /// `del` records only, whatever the tables' mode.
    #[name = c"invalidate"]
    Invalidate,
}

pub static MODE: GucSetting<SessionMode> = GucSetting::<SessionMode>::new(SessionMode::Set);

pub fn register() {
    GucRegistry::define_enum_guc(
        c"vset.mode",
        c"'invalidate' makes vset capture only del records (no payload) in this session/transaction.",
        c"'set' (default) captures each tracked table as its vset.track mode says. Use SET LOCAL vset.mode = 'invalidate' around bulk jobs.",
        &MODE,
        GucContext::Userset,
        GucFlags::default(),
    );
}

/// True when the session asks for invalidation-only capture.
pub fn invalidate_only() -> bool {
    MODE.get() == SessionMode::Invalidate
}
