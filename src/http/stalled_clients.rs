//! Client connections that take nothing the service sends are cut by the kernel.
//!
//! A subscriber that stops reading fills its receive window, then the service's send buffer;
//! from then on actix no longer polls the socket's stream, so neither its heartbeat nor anything
//! else in the service runs for that connection again, and it would hold its descriptor and
//! send buffer for good. `TCP_USER_TIMEOUT` makes the kernel reset a connection whose data stays
//! unacknowledged, or untransmitted behind a zero window, for that long; actix then sees the
//! error on its next write and drops the connection. A client that reads, however slowly, keeps
//! its window open and is never cut.

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Whether a failure to set the option was already logged: where the kernel refuses it, it
/// refuses it for every connection, and one warning says all there is to say.
static WARNED: AtomicBool = AtomicBool::new(false);

/// For `HttpServer::on_connect`: sets the stall timeout on each accepted TCP connection.
pub fn cut_after(connection: &dyn Any, timeout: Duration) {
    let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() else {
        return;
    };
    if let Err(err) = set_user_timeout(stream, timeout)
        && !WARNED.swap(true, Ordering::Relaxed)
    {
        tracing::warn!(
            error = %err,
            "could not set TCP_USER_TIMEOUT on client connections (warned once); a client that stops reading \
             keeps its connection open"
        );
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_user_timeout(stream: &actix_web::rt::net::TcpStream, timeout: Duration) -> std::io::Result<()> {
    socket2::SockRef::from(stream).set_tcp_user_timeout(Some(timeout))
}

/// Elsewhere the heartbeat alone watches clients.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_user_timeout(_stream: &actix_web::rt::net::TcpStream, _timeout: Duration) -> std::io::Result<()> {
    Ok(())
}
