//! Client connections fit in the process's open-file limit, with descriptors to spare.
//!
//! Every client connection holds a descriptor, and so does every database connection, call to
//! a provider and open file. Without a bound, clients can take them all; the service then
//! cannot open a database connection or reach a provider, and every check fails while the
//! sockets stay open. So at start the soft limit is raised to the hard one (systemd gives
//! services 1,024 by default, far too few for ten thousand subscribers), a share of it is kept
//! for the service's own use, and the rest is what clients may hold. A quarter of that at most
//! goes to the provider's end of proxied calls (`proxy::in_flight`); the HTTP server accepts no
//! more connections than what is left (the next ones wait in the listen queue), and GraphQL
//! sockets are held to nine in ten of those, so plain requests still get in.

/// Descriptors kept for the service's own use at most: the database pool, provider calls,
/// the proxy, log and data files. A quarter of a smaller limit.
const RESERVED: u64 = 1024;

/// What clients may hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// Connections each HTTP worker accepts; `None` leaves actix's own default.
    pub connections_per_worker: Option<usize>,
    /// GraphQL sockets open at once.
    pub sockets: usize,
    /// Proxied calls in flight at once, each with a connection to its provider.
    pub proxy_calls: usize,
}

/// What clients may ask for at most, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    /// `PLUGBOARD_MAX_SOCKETS`.
    pub sockets: usize,
    /// `PLUGBOARD_PROXY_MAX_IN_FLIGHT`.
    pub proxy_calls: usize,
}

impl ClientLimits {
    /// The limits for `workers` HTTP workers under an open-file limit of `open_files` (unknown
    /// on some systems), within what is `wanted`.
    pub fn within(open_files: Option<u64>, workers: usize, wanted: Wanted) -> Self {
        let Some(open_files) = open_files else {
            return ClientLimits {
                connections_per_worker: None,
                sockets: wanted.sockets,
                proxy_calls: wanted.proxy_calls,
            };
        };
        let for_clients = open_files.saturating_sub(RESERVED.min(open_files / 4));
        let for_clients = usize::try_from(for_clients).unwrap_or(usize::MAX);
        let proxy_calls = wanted.proxy_calls.min(for_clients / 4).max(1);
        let connections = for_clients.saturating_sub(proxy_calls).max(1);
        ClientLimits {
            connections_per_worker: Some(connections.div_ceil(workers.max(1))),
            sockets: wanted.sockets.min(connections - connections / 10).max(1),
            proxy_calls,
        }
    }
}

/// What a system that refuses the hard limit itself may still grant: macOS reports an
/// unlimited hard limit yet caps a process at `OPEN_MAX`, 10,240.
const FALLBACK_LIMIT: u64 = 10_240;

/// Raises the soft open-file limit to the hard one (or, where that is refused, to
/// `FALLBACK_LIMIT`), and answers the limit now in force (`None` where it cannot be read). A
/// failure is logged: the service runs on the limit it has.
pub fn raise_limit() -> Option<u64> {
    match sys::open_files() {
        Ok((soft, hard)) if soft < hard => {
            let mut refusal = None;
            for target in [hard, FALLBACK_LIMIT.min(hard)].into_iter().filter(|&target| target > soft) {
                match sys::set_open_files(target, hard) {
                    Ok(()) => {
                        tracing::debug!(from = soft, to = target, "raised the open-file limit");
                        return Some(target);
                    }
                    Err(err) => refusal = Some(err),
                }
            }
            if let Some(err) = refusal {
                tracing::warn!(limit = soft, error = %err, "could not raise the open-file limit; clients may hold fewer connections");
            }
            Some(soft)
        }
        Ok((soft, _)) => Some(soft),
        Err(err) => {
            tracing::debug!(error = %err, "the open-file limit is unknown here; client connections are not bounded by it");
            None
        }
    }
}

#[cfg(unix)]
mod sys {
    use std::io;

    /// `RLIM_INFINITY` is the largest `rlim_t`; as a `u64` it stays the largest number.
    pub fn open_files() -> io::Result<(u64, u64)> {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: `limit` is a valid, writable `struct rlimit` for the duration of the call.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
        #[allow(clippy::useless_conversion)] // `rlim_t` is not `u64` on every Unix.
        Ok((u64::from(limit.rlim_cur), u64::from(limit.rlim_max)))
    }

    pub fn set_open_files(soft: u64, hard: u64) -> io::Result<()> {
        let convert = |value: u64| libc::rlim_t::try_from(value).unwrap_or(libc::RLIM_INFINITY);
        let limit = libc::rlimit { rlim_cur: convert(soft), rlim_max: convert(hard) };
        // SAFETY: `limit` is a valid `struct rlimit` that outlives the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(not(unix))]
mod sys {
    use std::io;

    pub fn open_files() -> io::Result<(u64, u64)> {
        Err(io::Error::other("no open-file limit on this system"))
    }

    pub fn set_open_files(_soft: u64, _hard: u64) -> io::Result<()> {
        Err(io::Error::other("no open-file limit on this system"))
    }
}

#[cfg(test)]
mod tests {
    use super::{ClientLimits, Wanted};

    const WANTED: Wanted = Wanted { sockets: 10_000, proxy_calls: 4096 };

    #[test]
    fn a_large_limit_keeps_a_thousand_descriptors_and_serves_all_that_is_asked_for() {
        let limits = ClientLimits::within(Some(65_536), 2, WANTED);
        assert_eq!(limits.proxy_calls, 4096);
        // 65,536 less 1,024 kept, less the proxy's 4,096, over two workers.
        assert_eq!(limits.connections_per_worker, Some(30_208));
        assert_eq!(limits.sockets, 10_000);
    }

    #[test]
    fn a_small_limit_keeps_a_quarter_and_shares_the_rest() {
        // systemd's default soft limit, where the hard one cannot be raised to.
        let limits = ClientLimits::within(Some(1024), 2, WANTED);
        assert_eq!(limits.proxy_calls, 192, "a quarter of the 768 left to clients");
        assert_eq!(limits.connections_per_worker, Some(288));
        assert_eq!(limits.sockets, 519, "nine in ten of 576, so plain requests still get in");
    }

    #[test]
    fn no_known_limit_leaves_the_server_its_default() {
        let limits = ClientLimits::within(None, 2, WANTED);
        assert_eq!(limits, ClientLimits { connections_per_worker: None, sockets: 10_000, proxy_calls: 4096 });
    }

    #[test]
    fn the_limit_now_in_force_is_read() {
        let limit = super::raise_limit();
        #[cfg(unix)]
        assert!(limit.is_some_and(|limit| limit > 0));
        #[cfg(not(unix))]
        assert!(limit.is_none());
    }
}
