//! Command registration with flags and key specs, through the raw module API.
//!
//! redismodule-rs' `#[command]` macro cannot be used: it insists on
//! `RedisModule_SetCommandACLCategories`, which only exists from Redis 7.2, so on
//! Redis 7.0 the module would refuse to load. This does the same with the 7.0 API:
//! `CreateCommand` with legacy first/last/step (enough for cluster routing) plus
//! `SetCommandInfo` with arity and key specs (ACL key patterns, `COMMAND INFO`).

use std::ffi::CStr;
use std::os::raw::c_int;
use std::ptr;

use redis_module::commands::{get_redis_key_spec, BeginSearch, FindKeys, KeySpec, KeySpecFlags};
use redis_module::{raw, Context, RedisResult, Status};

use super::args::{self, Arg};

use super::{vdel, vfloor, vget, vset};

type Handler = fn(&Context, &[Arg]) -> RedisResult;

/// Generates the `extern "C"` entry point Redis calls for one command.
macro_rules! entry_point {
    ($name:ident, $handler:path) => {
        extern "C" fn $name(
            ctx: *mut raw::RedisModuleCtx,
            argv: *mut *mut raw::RedisModuleString,
            argc: c_int,
        ) -> c_int {
            let context = Context::new(ctx);
            // SAFETY: the argv Redis passes, used only during this call.
            let args = unsafe { args::from_argv(argv, argc) };
            let handler: Handler = $handler;
            context.reply(handler(&context, args)) as c_int
        }
    };
}

entry_point!(vset_entry, vset::vset);
entry_point!(vdel_entry, vdel::vdel);
entry_point!(vget_entry, vget::vget);
entry_point!(vfloor_entry, vfloor::vfloor);

type EntryPoint =
    extern "C" fn(*mut raw::RedisModuleCtx, *mut *mut raw::RedisModuleString, c_int) -> c_int;

struct CommandSpec {
    name: &'static CStr,
    entry: EntryPoint,
    flags: &'static CStr,
    arity: c_int,
    /// Flags of the single key at argument 1, or `None` for a keyless command.
    key: Option<KeySpecFlags>,
}

fn specs() -> [CommandSpec; 4] {
    [
        CommandSpec {
            name: c"vset",
            entry: vset_entry,
            flags: c"write deny-oom",
            arity: -4,
            key: Some(KeySpecFlags::READ_WRITE | KeySpecFlags::UPDATE),
        },
        CommandSpec {
            name: c"vdel",
            entry: vdel_entry,
            // Not deny-oom: a deletion must land under memory pressure (else the
            // deleted row stays cached); a tombstone is never larger than the value it
            // replaces, and a few bytes where there was none.
            flags: c"write",
            arity: -3,
            key: Some(KeySpecFlags::READ_WRITE | KeySpecFlags::UPDATE),
        },
        CommandSpec {
            name: c"vget",
            entry: vget_entry,
            flags: c"readonly fast",
            arity: -2,
            key: Some(KeySpecFlags::READ_ONLY | KeySpecFlags::ACCESS),
        },
        // Not `write`: reading the state must work on replicas too; raising floors on
        // a read-only replica is refused by the handler instead.
        CommandSpec {
            name: c"vfloor",
            entry: vfloor_entry,
            flags: c"may-replicate",
            arity: -1,
            key: None,
        },
    ]
}

const INFO_VERSION: raw::RedisModuleCommandInfoVersion = raw::RedisModuleCommandInfoVersion {
    version: 1,
    sizeof_historyentry: std::mem::size_of::<raw::RedisModuleCommandHistoryEntry>(),
    sizeof_keyspec: std::mem::size_of::<raw::RedisModuleCommandKeySpec>(),
    sizeof_arg: std::mem::size_of::<raw::RedisModuleCommandArg>(),
};

/// Registers every vset command; logs and fails on the first error.
pub fn register_all(ctx: &Context) -> Status {
    for spec in specs() {
        if let Err(msg) = register(ctx, &spec) {
            crate::logging::warning(
                ctx.ctx,
                &format!(
                    "vset: cannot register {}: {msg}",
                    spec.name.to_string_lossy()
                ),
            );
            return Status::Err;
        }
    }
    Status::Ok
}

fn register(ctx: &Context, spec: &CommandSpec) -> Result<(), &'static str> {
    let (first, last, step) = if spec.key.is_some() {
        (1, 1, 1)
    } else {
        (0, 0, 0)
    };
    // SAFETY: module context during load; static C strings.
    unsafe {
        let create = raw::RedisModule_CreateCommand.ok_or("no CreateCommand API")?;
        if create(
            ctx.ctx,
            spec.name.as_ptr(),
            Some(spec.entry),
            spec.flags.as_ptr(),
            first,
            last,
            step,
        ) != raw::REDISMODULE_OK as c_int
        {
            return Err("CreateCommand failed");
        }
        // Key specs and arity need Redis 7.0; older servers keep first/last/step.
        let (Some(get), Some(set_info)) =
            (raw::RedisModule_GetCommand, raw::RedisModule_SetCommandInfo)
        else {
            return Ok(());
        };
        let command = get(ctx.ctx, spec.name.as_ptr());
        if command.is_null() {
            return Err("GetCommand found nothing");
        }
        let key_specs = get_redis_key_spec(
            spec.key
                .as_ref()
                .map(|flags| {
                    vec![KeySpec::new(
                        None,
                        KeySpecFlags::from_bits_truncate(flags.bits()),
                        BeginSearch::new_index(1),
                        FindKeys::new_range(0, 1, 0),
                    )]
                })
                .unwrap_or_default(),
        );
        let mut info = raw::RedisModuleCommandInfo {
            version: &INFO_VERSION,
            summary: ptr::null(),
            complexity: ptr::null(),
            since: ptr::null(),
            history: ptr::null_mut(),
            tips: ptr::null(),
            arity: spec.arity,
            key_specs: if spec.key.is_some() {
                key_specs.as_ptr() as *mut raw::RedisModuleCommandKeySpec
            } else {
                ptr::null_mut()
            },
            args: ptr::null_mut(),
        };
        if set_info(command, std::ptr::addr_of_mut!(info)) != raw::REDISMODULE_OK as c_int {
            return Err("SetCommandInfo failed");
        }
    }
    Ok(())
}
