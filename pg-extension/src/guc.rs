//! `vset.mode`: `SET LOCAL vset.mode = 'invalidate'` makes every tracked table of
//! this transaction write only `del` records (the cheap choice for bulk jobs).
//! `vset.notify`: whether captures send NOTIFY (see [`crate::wakeup`]).

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

/// `vset.notify`: whether captures send NOTIFY (see [`crate::wakeup`]).
#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum NotifySetting {
    /// Only when the library is not in shared_preload_libraries.
    #[name = c"auto"]
    Auto,
    /// Always (for relays that LISTEN), at the cost of NOTIFY's commit lock.
    #[name = c"on"]
    On,
    /// Never (relays wait on shared memory or poll).
    #[name = c"off"]
    Off,
}

pub static NOTIFY: GucSetting<NotifySetting> =
    GucSetting::<NotifySetting>::new(NotifySetting::Auto);

pub fn register() {
    GucRegistry::define_enum_guc(
        c"vset.mode",
        c"'invalidate' makes vset capture only del records (no payload) in this session/transaction.",
        c"'set' (default) captures each tracked table as its vset.track mode says. Use SET LOCAL vset.mode = 'invalidate' around bulk jobs.",
        &MODE,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_enum_guc(
        c"vset.notify",
        c"Whether vset sends NOTIFY <channel> when a transaction captured changes: auto, on, off.",
        c"auto (default): only when vset is not in shared_preload_libraries (then relays wait on shared memory with vset.wait_for_commit). on: also for relays that LISTEN, at the cost of NOTIFY's cluster-wide commit lock and no PREPARE TRANSACTION. off: relays poll.",
        &NOTIFY,
        GucContext::Userset,
        GucFlags::default(),
    );
}

/// The session's `vset.notify`.
pub fn notify() -> NotifySetting {
    NOTIFY.get()
}

/// True when the session asks for invalidation-only capture.
pub fn invalidate_only() -> bool {
    MODE.get() == SessionMode::Invalidate
}
