//! Sends what the service writes to PostgreSQL without waiting (`TCP_NODELAY`).
//!
//! sqlx 0.9.0 opens its sockets with Nagle's algorithm on (launchbadge/sqlx#4335: 0.8 turned it
//! off, 0.9.0 dropped that by mistake; the fix, #4336, is not in a release yet). A message
//! written in more than one piece then waits, after the first piece, for PostgreSQL to
//! acknowledge it, and PostgreSQL delays that acknowledgement by up to 40 ms because it answers
//! nothing before the whole message is in. Over TLS (the default, `sslmode=prefer`) every
//! statement whose parameters fill more than one TLS record (16 KiB) is written in pieces: the
//! sweep's batches of 500 results, the outbox rows, the lists of ids. In the sweep bench on
//! PostgreSQL, no check was in flight a third of the time, waiting for such statements.
//!
//! sqlx does not hand out its socket, so right after a connection is made this asks PostgreSQL
//! which port the connection comes from (`inet_client_port()`), finds the process's TCP socket
//! with that local port and PostgreSQL's as its remote one in the kernel's socket table
//! (`/proc/net/tcp`, `tcp6`), and sets the option on the file descriptor that holds it. Through a
//! Unix socket, or a proxy whose port is not ours, nothing is found and nothing changes. Remove
//! this once sqlx sets the option itself again.

use sea_orm::sqlx::{self, postgres::PgConnection};

/// Turns Nagle's algorithm off on `connection`'s socket, when it is a TCP socket of this process
/// (on Linux; elsewhere it is left as sqlx made it).
pub(super) async fn send_without_delay(connection: &mut PgConnection) -> Result<(), sqlx::Error> {
    let ports: (Option<i32>, Option<i32>) =
        sqlx::query_as("SELECT inet_client_port(), inet_server_port()").fetch_one(&mut *connection).await?;
    let (Some(local), Some(remote)) = ports else {
        return Ok(()); // A Unix socket: no TCP, no delay.
    };
    let (Ok(local), Ok(remote)) = (u16::try_from(local), u16::try_from(remote)) else {
        return Ok(());
    };
    if let Err(err) = set_nodelay(local, remote) {
        tracing::debug!(error = %err, local, remote, "could not turn off Nagle's algorithm on a PostgreSQL socket");
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn set_nodelay(local: u16, remote: u16) -> std::io::Result<()> {
    use std::os::fd::BorrowedFd;

    for fd in descriptors(local, remote)? {
        // SAFETY: `fd` holds the socket of the connection being set up, which that connection
        // keeps open for the whole call (the caller holds it), so the descriptor cannot be
        // closed or reused meanwhile; it is only borrowed to set one option.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        socket2::SockRef::from(&fd).set_tcp_nodelay(true)?;
    }
    Ok(())
}

/// The process's file descriptors that hold a TCP socket from port `local` to port `remote`
/// (none through a proxy, whose port is not ours).
#[cfg(target_os = "linux")]
pub fn descriptors(local: u16, remote: u16) -> std::io::Result<Vec<std::os::fd::RawFd>> {
    let inodes = socket_inodes(local, remote)?;
    if inodes.is_empty() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let entry = entry?;
        let Some(fd) = entry.file_name().to_str().and_then(|name| name.parse().ok()) else {
            continue;
        };
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue; // Closed since the folder was read.
        };
        if target.to_str().and_then(socket_inode).is_some_and(|inode| inodes.contains(&inode)) {
            found.push(fd);
        }
    }
    Ok(found)
}

#[cfg(not(target_os = "linux"))]
fn set_nodelay(_local: u16, _remote: u16) -> std::io::Result<()> {
    Ok(())
}

/// The inodes of the process's TCP sockets from port `local` to port `remote`, from the kernel's
/// tables (IPv4 and IPv6; a missing table is an empty one).
#[cfg(target_os = "linux")]
fn socket_inodes(local: u16, remote: u16) -> std::io::Result<Vec<u64>> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = match std::fs::read_to_string(table) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        inodes.extend(text.lines().skip(1).filter_map(|line| connecting(line, local, remote)));
    }
    Ok(inodes)
}

/// The inode of a line of `/proc/net/tcp{,6}` whose local port is `local` and remote port
/// `remote`: `sl local_address rem_address st tx_queue:rx_queue tr:when retrnsmt uid timeout
/// inode ...`, addresses as `HEXADDR:HEXPORT`.
fn connecting(line: &str, local: u16, remote: u16) -> Option<u64> {
    let columns: Vec<&str> = line.split_whitespace().collect();
    let port = |address: &str| u16::from_str_radix(address.rsplit_once(':')?.1, 16).ok();
    if port(columns.get(1)?)? != local || port(columns.get(2)?)? != remote {
        return None;
    }
    columns.get(9)?.parse().ok()
}

/// The inode in a descriptor's link, `socket:[12345]`, if it is a socket.
fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE_LINE: &str = "   3: 0100007F:D2F4 0100007F:1538 01 00000000:00000000 02:000A3B4C 00000000   \
                              105        0 8523181 2 0000000000000000 20 4 30 10 -1";

    #[test]
    fn a_table_line_names_its_socket_by_its_ports() {
        // 0xD2F4 = 54004 (ours), 0x1538 = 5432 (PostgreSQL's).
        assert_eq!(connecting(TABLE_LINE, 54004, 5432), Some(8523181));
        assert_eq!(connecting(TABLE_LINE, 5432, 54004), None, "the other end's socket");
        assert_eq!(connecting(TABLE_LINE, 54005, 5432), None);
        assert_eq!(connecting("  sl  local_address rem_address   st", 54004, 5432), None, "the header");
    }

    #[test]
    fn only_socket_links_have_an_inode() {
        assert_eq!(socket_inode("socket:[8523181]"), Some(8523181));
        assert_eq!(socket_inode("pipe:[8523181]"), None);
        assert_eq!(socket_inode("/var/lib/plugboard/plugboard.db"), None);
    }
}
