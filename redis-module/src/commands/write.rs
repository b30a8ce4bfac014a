//! The write path shared by `VSET` (value) and `VDEL` (tombstone): decide, store
//! version and payload together, set the expiry, replicate what was decided.

use std::os::raw::c_int;

use redis_module::{raw, Context, NotifyEvent, RedisResult, RedisValue};

use super::args::Arg;

use super::error::CommandError;
use super::expiry::{parse_expiry, Expiry};
use super::key::{now_ms, OpenKey};
use super::origin::Origin;
use crate::data::decision::{decide_with, Decision};
use crate::data::version::parse_version;
use crate::installs;
use crate::state::{self, Counters};

/// What a write stores.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    Value(&'a [u8]),
    Tombstone,
}

pub struct Write<'a> {
    pub key: &'a Arg<'a>,
    pub version: u64,
    pub version_arg: &'a [u8],
    pub payload: Payload<'a>,
    pub expiry: Expiry,
}

impl<'a> Write<'a> {
    /// Parses what VSET and VDEL share: the version, then the trailing
    /// `[EX s | PX ms | EXAT s | PXAT ms]` (`opts`).
    pub fn parse(
        key: &'a Arg<'a>,
        version: &'a Arg<'a>,
        payload: Payload<'a>,
        opts: &[Arg],
    ) -> Result<Self, CommandError> {
        let version_arg = version.as_slice();
        let version = parse_version(version_arg)?;
        let command = match payload {
            Payload::Value(_) => "vset",
            Payload::Tombstone => "vdel",
        };
        let opts: Vec<&[u8]> = opts.iter().map(Arg::as_slice).collect();
        let expiry = parse_expiry(command, &opts)?;
        Ok(Write {
            key,
            version,
            version_arg,
            payload,
            expiry,
        })
    }
}

/// Runs a write; replies 1 (stored) or 0 (not stored).
pub fn run(ctx: &Context, w: Write<'_>) -> RedisResult {
    let state = state::get().ok_or(super::error::CommandError::NoState)?;
    let bucket = state.floors.bucket(w.key.as_slice());
    state.floors.prefetch(bucket);
    let key = OpenKey::write(ctx, w.key)?;
    let existing = key.value()?;

    // Who sent the write is asked only when it matters (a refusal, a tombstone, a
    // relative expiry): on the common path, a client's VSET that is newer, the
    // answer would change nothing, and asking Redis costs a measurable share of VSET.
    let mut origin = None;
    let mut origin = || *origin.get_or_insert_with(|| Origin::of(ctx));

    let stored = existing.map(|v| v.version());
    let floor = state.floors.floor_at(bucket);
    let decision = decide_with(w.version, stored, floor, state.is_cold(), state.gates());
    if decision != Decision::Apply && origin() == Origin::Client {
        let counters = &state.counters;
        match decision {
            Decision::Apply => {}
            Decision::Cold => Counters::bump(&counters.rejected_cold),
            Decision::Stale => Counters::bump(&counters.rejected_stale),
            Decision::BelowFloor => {
                Counters::bump(&counters.rejected_floor);
                if existing.is_some() {
                    // The stored value is older than a write we had to refuse, so it
                    // is stale: remove it (a miss is safe, a stale hit is not).
                    key.delete();
                    ctx.replicate("DEL", &[w.key.as_slice()]);
                    notify(ctx, c"del", w.key);
                    Counters::bump(&counters.removed_below_floor);
                }
            }
        }
        return Ok(RedisValue::Integer(0));
    }

    let payload = match w.payload {
        Payload::Value(bytes) => Some(bytes),
        Payload::Tombstone => None,
    };
    let was_empty = existing.is_none();
    key.store(existing, w.version, payload)?;
    state.saw_version(w.version);
    installs::stored(w.key.as_slice());

    // A client's VDEL without EX/PX gets the configured tombstone TTL; anything the
    // master or the AOF sends carries its expiry explicitly (or has none).
    let default_ttl = match w.payload {
        Payload::Tombstone if origin() == Origin::Client => Some(state.config.tombstone_ttl_ms),
        _ => None,
    };
    let expire_at = match (w.expiry, default_ttl) {
        (Expiry::Unset, None) => None,
        _ => w.expiry.resolve(now_ms(), default_ttl),
    };
    // A key that was empty has no expiry to remove (storing it cleared any).
    if !(was_empty && expire_at.is_none()) {
        key.set_expire_at(expire_at)?;
    }

    replicate(ctx, &w, &mut origin, expire_at);
    match w.payload {
        Payload::Value(_) => {
            Counters::bump(&state.counters.stored);
            notify(ctx, c"vset", w.key);
        }
        Payload::Tombstone => {
            Counters::bump(&state.counters.tombstones_written);
            notify(ctx, c"vdel", w.key);
        }
    }
    Ok(RedisValue::Integer(1))
}

/// Replicates an accepted write in a form that replicas and the AOF apply exactly:
/// verbatim when the command is already absolute, else with `PXAT <unix ms>`.
fn replicate(
    ctx: &Context,
    w: &Write<'_>,
    origin: &mut impl FnMut() -> Origin,
    expire_at: Option<i64>,
) {
    let verbatim = matches!(w.expiry, Expiry::At(_))
        || (matches!(w.expiry, Expiry::Unset) && matches!(w.payload, Payload::Value(_)))
        || origin() == Origin::Decided;
    if verbatim {
        ctx.replicate_verbatim();
        return;
    }
    let at = expire_at.unwrap_or_default().to_string();
    match w.payload {
        Payload::Value(value) => {
            let args: [&[u8]; 5] = [
                w.key.as_slice(),
                w.version_arg,
                value,
                b"PXAT",
                at.as_bytes(),
            ];
            ctx.replicate("VSET", &args);
        }
        Payload::Tombstone => {
            let args: [&[u8]; 4] = [w.key.as_slice(), w.version_arg, b"PXAT", at.as_bytes()];
            ctx.replicate("VDEL", &args);
        }
    }
}

/// Keyspace notification of class `module` (`notify-keyspace-events` with `d`).
/// Announces a change of `key`: the keyspace event, and the modification signal
/// that aborts a `WATCH` and invalidates client-side caches. The module loads with
/// `NO_IMPLICIT_SIGNAL_MODIFIED`, so a write that was refused (and changed
/// nothing) signals nothing; only this function does.
fn notify(ctx: &Context, event: &std::ffi::CStr, key: &Arg) {
    // SAFETY: valid context, static event name, key alive for the command.
    unsafe {
        if let Some(signal) = raw::RedisModule_SignalModifiedKey {
            signal(ctx.ctx, key.raw());
        }
        if let Some(f) = raw::RedisModule_NotifyKeyspaceEvent {
            f(
                ctx.ctx,
                NotifyEvent::MODULE.bits() as c_int,
                event.as_ptr(),
                key.raw(),
            );
        }
    }
}
