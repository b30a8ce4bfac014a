//! The shared-memory wake-up: a commit counter and a condition variable.
//!
//! With `vset` in `shared_preload_libraries`, the postmaster reserves a small
//! array of slots (a counter and a condition variable each; a database uses slot
//! `oid % 64`). A transaction that captured anything adds 1 to its database's
//! `commits` and broadcasts its `changed` from its commit callback, which PostgreSQL calls after the commit is
//! durable and visible (`XACT_EVENT_COMMIT` comes after `ProcArrayEndTransaction`).
//! No lock is held across the commit's WAL flush, unlike `NOTIFY`, whose
//! `PreCommit_Notify` serialises every notifying commit in the cluster behind one
//! lock; here group commit batches tracked commits like any others.
//!
//! A relay calls `vset.wait_for_commit(seen, timeout_ms)` with the value the
//! previous call returned. It returns at once when the counter differs from `seen`
//! (including a reset by a server restart), else sleeps on the condition variable
//! until a broadcast or the timeout, and returns the counter.
//!
//! **No wake-up is lost.** A relay that claims nothing after `wait_for_commit`
//! returned `n` and then calls `wait_for_commit(n)`: a commit its claim did not see
//! became visible after the claim's snapshot, so its increment (made after it became
//! visible) comes after the relay read `n`, so either the counter already differs
//! from `n` when the relay checks it, or the increment and broadcast come after
//! `ConditionVariablePrepareToSleep`, which the broadcast then wakes. The check sits
//! between prepare-to-sleep and sleep, as condition variables require.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pgrx::pg_sys;

/// One counter and condition variable per slot; a database uses slot
/// `oid % SLOTS`, so relays wake for their own database's commits (databases that
/// share a slot only cost each other an empty claim), and a role learns nothing
/// about when other databases commit.
const SLOTS: usize = 64;

#[repr(C)]
struct Slot {
    commits: AtomicU64,
    changed: pg_sys::ConditionVariable,
}

#[repr(C)]
struct Shared {
    slots: [Slot; SLOTS],
}

/// Set in the postmaster's shared-memory startup (inherited by every backend it
/// forks); null when the library was not preloaded.
static mut SHARED: *mut Shared = std::ptr::null_mut();
#[cfg(not(any(feature = "pg13", feature = "pg14")))]
static mut PREV_REQUEST: pg_sys::shmem_request_hook_type = None;
static mut PREV_STARTUP: pg_sys::shmem_startup_hook_type = None;

/// `AddinShmemInitLock` (lwlocknames.txt: 21), a macro pgrx does not bind.
const ADDIN_SHMEM_INIT_LOCK: usize = 21;

/// Called from `_PG_init` while `shared_preload_libraries` is being processed.
pub fn install_hooks() {
    // SAFETY: postmaster start-up, single-threaded; chains the previous hooks.
    unsafe {
        // PostgreSQL 15 added shmem_request_hook; before it, _PG_init requests directly.
        #[cfg(any(feature = "pg13", feature = "pg14"))]
        pg_sys::RequestAddinShmemSpace(std::mem::size_of::<Shared>());
        #[cfg(not(any(feature = "pg13", feature = "pg14")))]
        {
            PREV_REQUEST = pg_sys::shmem_request_hook;
            pg_sys::shmem_request_hook = Some(request_shmem);
        }
        PREV_STARTUP = pg_sys::shmem_startup_hook;
        pg_sys::shmem_startup_hook = Some(startup_shmem);
    }
}

#[cfg(not(any(feature = "pg13", feature = "pg14")))]
unsafe extern "C-unwind" fn request_shmem() {
    // SAFETY: called by the postmaster in its shared-memory sizing phase.
    unsafe {
        if let Some(prev) = PREV_REQUEST {
            prev();
        }
        pg_sys::RequestAddinShmemSpace(std::mem::size_of::<Shared>());
    }
}

unsafe extern "C-unwind" fn startup_shmem() {
    // SAFETY: ShmemInitStruct under AddinShmemInitLock, as PostgreSQL requires;
    // the struct is initialised once (found = false) and never freed.
    unsafe {
        if let Some(prev) = PREV_STARTUP {
            prev();
        }
        let lock = &raw mut (*pg_sys::MainLWLockArray.add(ADDIN_SHMEM_INIT_LOCK)).lock;
        pg_sys::LWLockAcquire(lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let mut found = false;
        let shared = pg_sys::ShmemInitStruct(
            c"vset wakeup".as_ptr(),
            std::mem::size_of::<Shared>(),
            &mut found,
        ) as *mut Shared;
        if !found {
            for i in 0..SLOTS {
                let slot = &raw mut (*shared).slots[i];
                std::ptr::write(&raw mut (*slot).commits, AtomicU64::new(0));
                pg_sys::ConditionVariableInit(&raw mut (*slot).changed);
            }
        }
        SHARED = shared;
        pg_sys::LWLockRelease(lock);
    }
}

fn shared() -> Option<&'static Shared> {
    // SAFETY: written once before any backend exists, read-only afterwards.
    unsafe { SHARED.as_ref() }
}

/// This database's slot.
fn slot() -> Option<&'static Slot> {
    // SAFETY: MyDatabaseId is set once the backend has connected to its database.
    let db = unsafe { pg_sys::MyDatabaseId }.to_u32() as usize;
    shared().map(|s| &s.slots[db % SLOTS])
}

/// True when the library was preloaded and the shared struct exists.
pub fn available() -> bool {
    shared().is_some()
}

/// A tracked commit happened: count it and wake every waiting relay.
pub fn announce_commit() {
    if let Some(s) = slot() {
        s.commits.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the condition variable lives in shared memory for the server's life.
        unsafe { pg_sys::ConditionVariableBroadcast(&s.changed as *const _ as *mut _) };
    }
}

/// Waits until the counter differs from `seen` or `timeout` passes; returns it.
/// None when the library was not preloaded. Interruptible (a cancel or a
/// terminate raises the usual ERROR/FATAL from inside the sleep).
pub fn wait_for_commit(seen: u64, timeout: Duration) -> Option<u64> {
    let s = slot()?;
    let cv = &s.changed as *const _ as *mut pg_sys::ConditionVariable;
    let deadline = Instant::now() + timeout;
    // SAFETY: standard condition-variable protocol on a shared-memory CV; an ERROR
    // during the sleep is cleaned up by transaction abort (ConditionVariableCancelSleep).
    unsafe {
        pg_sys::ConditionVariablePrepareToSleep(cv);
        loop {
            let now = s.commits.load(Ordering::SeqCst);
            let left = deadline.saturating_duration_since(Instant::now());
            if now != seen || left.is_zero() {
                pg_sys::ConditionVariableCancelSleep();
                return Some(now);
            }
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as std::ffi::c_long;
            pg_sys::ConditionVariableTimedSleep(cv, ms, pg_sys::PG_WAIT_EXTENSION);
        }
    }
}
