//! Where things are: the workspace root, the shared `target/` folder and the built
//! artifacts the tests load. Each can be overridden by an environment variable so
//! CI, `make` and a developer's shell can point tests at a different build.

use std::path::{Path, PathBuf};

use crate::HarnessError;

/// The workspace root (the folder holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The cargo target folder (`CARGO_TARGET_DIR`, else `<workspace>/target`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The newest of the candidate files that exists.
fn newest_existing(candidates: &[PathBuf]) -> Option<PathBuf> {
    candidates
        .iter()
        .filter_map(|p| {
            let modified = std::fs::metadata(p).and_then(|m| m.modified()).ok()?;
            Some((modified, p.clone()))
        })
        .max_by_key(|(m, _)| *m)
        .map(|(_, p)| p)
}

/// The Redis module: `VSET_REDIS_MODULE`, else the newest of
/// `target/{debug,release}/libvset_redis.so`.
pub fn redis_module() -> Result<PathBuf, HarnessError> {
    if let Some(p) = std::env::var_os("VSET_REDIS_MODULE") {
        return Ok(PathBuf::from(p));
    }
    let t = target_dir();
    newest_existing(&[
        t.join("debug/libvset_redis.so"),
        t.join("release/libvset_redis.so"),
    ])
    .ok_or_else(|| {
        HarnessError::MissingArtifact(format!(
            "libvset_redis.so under {} (or set VSET_REDIS_MODULE)",
            t.display()
        ))
    })
}

/// The chaos matrix's control module: a build with the test-only feature
/// `unsafe-test-gates` (`make build-redis-control`): `VSET_REDIS_MODULE_CONTROL`,
/// else `target/control/libvset_redis.so`.
pub fn redis_module_control() -> Result<PathBuf, HarnessError> {
    if let Some(p) = std::env::var_os("VSET_REDIS_MODULE_CONTROL") {
        return Ok(PathBuf::from(p));
    }
    let p = target_dir().join("control/libvset_redis.so");
    if p.exists() {
        Ok(p)
    } else {
        Err(HarnessError::MissingArtifact(format!(
            "{} (run `make build-redis-control`, or set VSET_REDIS_MODULE_CONTROL)",
            p.display()
        )))
    }
}

/// The relay binary: `VSET_RELAY_BIN`, else the newest of `target/{debug,release}/vset-relay`.
pub fn relay_binary() -> Result<PathBuf, HarnessError> {
    if let Some(p) = std::env::var_os("VSET_RELAY_BIN") {
        return Ok(PathBuf::from(p));
    }
    let t = target_dir();
    newest_existing(&[t.join("debug/vset-relay"), t.join("release/vset-relay")]).ok_or_else(|| {
        HarnessError::MissingArtifact(format!(
            "vset-relay under {} (or set VSET_RELAY_BIN)",
            t.display()
        ))
    })
}

/// A binary from `PATH` or an override variable (e.g. `VSET_REDIS_SERVER`).
pub fn binary(name: &str, override_var: &str) -> PathBuf {
    std::env::var_os(override_var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(name))
}
