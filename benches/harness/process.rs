//! Figures about this process: resident memory from `/proc/self/status`, and the open-file limit
//! the fan-out needs. Linux only; elsewhere the figures are reported as unknown.

use anyhow::Context;

/// The system's load averages (1, 5 and 15 minutes), to tell a quiet machine from a busy one.
pub fn load_average() -> Option<String> {
    let loadavg = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(loadavg.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// Current resident memory (`VmRSS`) in bytes.
pub fn rss() -> Option<u64> {
    status_kib("VmRSS:").map(|kib| kib * 1024)
}

/// Peak resident memory (`VmHWM`) in bytes, since start or the last [`reset_peak_rss`].
pub fn peak_rss() -> Option<u64> {
    status_kib("VmHWM:").map(|kib| kib * 1024)
}

/// Resets the peak to the current resident memory (writing 5 to `/proc/self/clear_refs`), so a
/// scenario's peak is its own and not an earlier scenario's. Answers whether it could.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// CPU time this process has used so far, user and system, over all its threads.
pub fn cpu_time() -> Option<std::time::Duration> {
    sys::cpu_time().ok()
}

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line[field.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// Raises this process's open-file limit towards `needed`: the soft limit, and the hard one
/// when the process is allowed to (root with `CAP_SYS_RESOURCE`). Answers the limit now in
/// force, which may still be lower than `needed`.
pub fn raise_open_files(needed: u64) -> anyhow::Result<u64> {
    let (soft, hard) = sys::open_files().context("could not read the open-file limit")?;
    if soft >= needed {
        return Ok(soft);
    }
    // Only a privileged process may raise its hard limit; it is worth one try.
    if hard < needed && sys::set_open_files(needed, needed).is_ok() {
        return Ok(needed);
    }
    if soft < hard {
        sys::set_open_files(hard, hard)
            .with_context(|| format!("could not raise the open-file limit from {soft} to {hard}"))?;
    }
    Ok(hard)
}

/// `getrlimit`/`setrlimit` (for `RLIMIT_NOFILE`) and `getrusage` from the C library std already
/// links: the bench takes no dependency for three calls.
#[cfg(target_os = "linux")]
mod sys {
    #[repr(C)]
    struct Limit {
        soft: u64,
        hard: u64,
    }

    const RLIMIT_NOFILE: i32 = 7;
    const RUSAGE_SELF: i32 = 0;

    /// `struct timeval` on 64-bit Linux.
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct TimeVal {
        seconds: i64,
        microseconds: i64,
    }

    /// `struct rusage`: the two times, then 14 longs this bench does not read.
    #[repr(C)]
    #[derive(Default)]
    struct Usage {
        user: TimeVal,
        system: TimeVal,
        rest: [i64; 14],
    }

    unsafe extern "C" {
        fn getrlimit(resource: i32, limit: *mut Limit) -> i32;
        fn setrlimit(resource: i32, limit: *const Limit) -> i32;
        fn getrusage(who: i32, usage: *mut Usage) -> i32;
    }

    pub fn cpu_time() -> std::io::Result<std::time::Duration> {
        let mut usage = Usage::default();
        // SAFETY: `usage` is a valid, writable `struct rusage` for 64-bit Linux.
        if unsafe { getrusage(RUSAGE_SELF, &raw mut usage) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let micros = |t: TimeVal| t.seconds as u64 * 1_000_000 + t.microseconds as u64;
        Ok(std::time::Duration::from_micros(micros(usage.user) + micros(usage.system)))
    }

    pub fn open_files() -> std::io::Result<(u64, u64)> {
        let mut limit = Limit { soft: 0, hard: 0 };
        // SAFETY: `limit` is a valid, writable `struct rlimit` (two `rlim_t`, 64-bit on Linux).
        if unsafe { getrlimit(RLIMIT_NOFILE, &raw mut limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((limit.soft, limit.hard))
    }

    pub fn set_open_files(soft: u64, hard: u64) -> std::io::Result<()> {
        let limit = Limit { soft, hard };
        // SAFETY: `limit` is a valid `struct rlimit` that outlives the call.
        if unsafe { setrlimit(RLIMIT_NOFILE, &raw const limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    pub fn cpu_time() -> std::io::Result<std::time::Duration> {
        Err(std::io::Error::other("unknown on this system"))
    }

    pub fn open_files() -> std::io::Result<(u64, u64)> {
        Err(std::io::Error::other("unknown on this system"))
    }

    pub fn set_open_files(_soft: u64, _hard: u64) -> std::io::Result<()> {
        Err(std::io::Error::other("unknown on this system"))
    }
}
