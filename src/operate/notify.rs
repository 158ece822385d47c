//! systemd's readiness protocol (`Type=notify`): with `NOTIFY_SOCKET`
//! set, the server tells the service manager, in datagrams of
//! `NAME=VALUE` lines on that unix socket, when it is serving
//! (`READY=1`), when it hands over to a new process (`RELOADING=1`, then
//! `MAINPID=` naming the new one), and when it stops (`STOPPING=1`).
//!
//! The socket is a path, or an abstract name written with a leading `@`.
//! `NOTIFY_SOCKET` stays in the environment: the process started by a
//! hand-over speaks to the same manager.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use crate::observe::log;

/// Where the service manager listens, and a socket to send from.
#[derive(Debug)]
pub(crate) struct Notifier {
    sock: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// The service manager named by `NOTIFY_SOCKET`, if set. An address
    /// that cannot be used is logged, and the server runs without.
    pub(crate) fn from_env() -> Option<Notifier> {
        let value = std::env::var_os("NOTIFY_SOCKET")?;
        match Notifier::to(value.as_encoded_bytes()) {
            Ok(n) => Some(n),
            Err(e) => {
                log::warn(
                    "notify_socket",
                    &format!("NOTIFY_SOCKET={value:?} cannot be used: {e}; not notifying"),
                );
                None
            }
        }
    }

    /// A notifier for the socket at `addr` (`@NAME` for an abstract one).
    fn to(addr: &[u8]) -> io::Result<Notifier> {
        let addr = match addr {
            [b'@', name @ ..] => abstract_addr(name)?,
            [b'/', ..] => SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(addr))?,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "neither a path nor an abstract name (@NAME)",
                ));
            }
        };
        Ok(Notifier {
            sock: UnixDatagram::unbound()?,
            addr,
        })
    }

    /// Sends one message (`NAME=VALUE` lines). A failure is logged: the
    /// server serves on whatever the manager thinks.
    pub(crate) fn send(&self, message: &str) {
        if let Err(e) = self.sock.send_to_addr(message.as_bytes(), &self.addr) {
            let first = message.lines().next().unwrap_or("");
            log::warn(
                "notify_failed",
                &format!("cannot tell the service manager {first}: {e}"),
            );
        }
    }

    /// `READY=1`: the server accepts connections.
    pub(crate) fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    /// `RELOADING=1`: a hand-over begins.
    pub(crate) fn reloading(&self) {
        let usec = crate::sys::monotonic_ns() / 1000;
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS=handing over to a new process"
        ));
    }

    /// `MAINPID=` the new process, which serves now, and `READY=1`: the
    /// hand-over is done (sent in one datagram, so that the manager never
    /// sees the reload end while the old process is still the main one).
    pub(crate) fn handed_over(&self, pid: u32, generation: u64) {
        self.send(&format!(
            "MAINPID={pid}\nREADY=1\nSTATUS=serving (generation {generation})"
        ));
    }

    /// `STOPPING=1`: shutdown begins.
    pub(crate) fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping");
    }
}

/// The address of an abstract unix socket.
fn abstract_addr(name: &[u8]) -> io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_paths_or_abstract_names() {
        let n = Notifier::to(b"/run/systemd/notify").unwrap();
        assert_eq!(
            n.addr.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        let n = Notifier::to(b"@/org/freedesktop/systemd1/notify").unwrap();
        use std::os::linux::net::SocketAddrExt;
        assert_eq!(
            n.addr.as_abstract_name(),
            Some(&b"/org/freedesktop/systemd1/notify"[..])
        );
        assert!(Notifier::to(b"vsock:2:1234").is_err());
        assert!(Notifier::to(b"").is_err());
    }
}
