//! CPU seconds used by the processes of a measurement, from `/proc`, so the
//! report can say where the time of a 2-core machine went (relay vs PostgreSQL vs
//! Redis) instead of guessing.

use std::fs;

/// Clock ticks per second for `/proc/<pid>/stat` times (`getconf CLK_TCK`).
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf with a valid name has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// (parent pid, utime + stime, cutime + cstime) of one process, in ticks.
fn stat(pid: u32) -> Option<(u32, u64, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces: split after its ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); ppid is field 4, utime..cstime fields 14..17.
    let ppid = f.get(1)?.parse().ok()?;
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Some((ppid, num(11) + num(12), num(13) + num(14)))
}

/// CPU seconds of one process (children it reaped included).
pub fn process(pid: u32) -> f64 {
    stat(pid).map_or(0.0, |(_, own, reaped)| {
        (own + reaped) as f64 / ticks_per_second()
    })
}

/// CPU seconds of a server and its live children, plus what it reaped from
/// exited children. (PostgreSQL backends call setsid(), so they are found by
/// parent, not by process group.)
pub fn tree(parent: u32) -> f64 {
    let mut ticks = stat(parent).map_or(0, |(_, own, reaped)| own + reaped);
    if let Ok(entries) = fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some((ppid, own, _)) = stat(pid) {
                if ppid == parent {
                    ticks += own;
                }
            }
        }
    }
    ticks as f64 / ticks_per_second()
}

/// The 1-minute load average, to print beside every figure (a busy machine
/// changes them a lot).
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}
