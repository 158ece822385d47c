//! Accepting connections, done by the workers themselves: the one that
//! the poller wakes for the listening socket accepts a connection, lets
//! the poller watch the socket again for the next worker, and serves it.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::listener::{AllowList, Listener};
use crate::log;
use crate::poller::{Conn, Poller};
use crate::sys;

/// How long a worker waits on an idle kept-open connection for its next
/// request before handing it to the poller (when another worker watches
/// the poller meanwhile). Web servers send the next request within tens of
/// microseconds when busy; staying saves a round through epoll.
const LINGER: Duration = Duration::from_millis(1);

/// The send buffer asked for on unix-socket connections (the kernel
/// doubles it, and caps it at twice `net.core.wmem_max`: 416 KiB by
/// default). The default buffer (208 KiB) makes a worker that writes a
/// large body in 64 KiB pieces stop and wait for the web server to read
/// several times per MiB; a larger one lets most of it through at once.
/// The memory is the kernel's, and only while bytes wait unread. TCP
/// connections keep the kernel's own tuning, which this would switch off.
const UNIX_SNDBUF: libc::c_int = 256 * 1024;

/// The listening socket and what applies to the connections it gives.
pub(crate) struct Acceptor {
    /// `None` once shutdown closed it.
    listener: RwLock<Option<Listener>>,
    allow: Option<AllowList>,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    backoff: Mutex<Backoff>,
    failing: AtomicBool,
    /// The listener is a unix socket.
    unix: bool,
}

impl Acceptor {
    /// Makes `listener` non-blocking: several workers (or processes
    /// sharing it, as spawn-fcgi -F starts them) may race for a connection,
    /// and the losers must not wait in `accept`.
    pub(crate) fn new(
        listener: Listener,
        allow: Option<AllowList>,
        (read_timeout, write_timeout): (Option<Duration>, Option<Duration>),
    ) -> io::Result<Acceptor> {
        sys::set_nonblocking(listener.as_fd())
            .map_err(|e| io::Error::new(e.kind(), format!("the listening socket: {e}")))?;
        let unix = sys::socket_family(listener.as_fd()).ok() == Some(libc::AF_UNIX);
        Ok(Acceptor {
            listener: RwLock::new(Some(listener)),
            allow,
            read_timeout,
            write_timeout,
            backoff: Mutex::new(Backoff::default()),
            failing: AtomicBool::new(false),
            unix,
        })
    }

    /// Closes the listening socket, unless a worker is accepting from it
    /// this moment (it is then closed with the server).
    pub(crate) fn close(&self) {
        if let Ok(mut listener) = self.listener.try_write() {
            *listener = None;
        }
    }

    /// Accepts one connection, if one is waiting, and has the poller watch
    /// the listener again for the next worker (at once, or after a pause
    /// when accepting failed).
    pub(crate) fn accept(&self, poller: &Poller) -> Option<Conn> {
        let guard = self.listener.read().unwrap_or_else(|e| e.into_inner());
        let fd = guard.as_ref()?.as_fd();
        let accepted = sys::accept(fd);
        let sock = match accepted {
            Ok(sock) => sock,
            Err(e) if transient(&e) => {
                poller.rearm_listener(fd.as_raw_fd());
                return None;
            }
            Err(e) => {
                let mut backoff = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
                self.failing.store(true, Ordering::Relaxed);
                poller.pause_listener(backoff.fail(&format!("accepting a connection failed: {e}")));
                return None;
            }
        };
        poller.rearm_listener(fd.as_raw_fd());
        drop(guard);
        if self.failing.swap(false, Ordering::Relaxed) {
            self.backoff
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .reset();
        }
        if let Some(allow) = &self.allow {
            match sys::peer_ip(&sock) {
                Ok(ip) if allow.allows(ip) => {}
                Ok(ip) => {
                    let who = ip.map_or("?".to_owned(), |ip| ip.to_string());
                    crate::events::refused_peer(&who);
                    return None;
                }
                Err(_) => return None,
            }
        }
        crate::events::accepted();
        let mut sock = sock;
        if let Err(e) = sock.set_timeouts(LINGER, self.read_timeout, self.write_timeout) {
            log::warn(
                "socket_options",
                &format!("cannot set socket timeouts: {e}"),
            );
        }
        if self.unix {
            // Best effort: the default buffer works, only slower.
            let _ = sys::set_send_buffer(&sock, UNIX_SNDBUF);
        }
        Some(Conn::new(sock))
    }
}

/// Errors of one connection attempt, not of the listener.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAGAIN | libc::ECONNABORTED | libc::EINTR | libc::EPROTO | libc::EPERM)
    )
}

/// Pauses after a failure of the listener (out of descriptors, say),
/// longer each time in a run of failures, and logs at most one failure a
/// minute, with the count of those not logged: a server that runs at its
/// descriptor limit neither spins nor floods its log.
#[derive(Default)]
struct Backoff {
    /// Failures in a row.
    failures: u32,
    last_log: Option<Instant>,
    unlogged: u64,
}

const LOG_EVERY: Duration = Duration::from_secs(60);

impl Backoff {
    /// Counts a failure; returns how long to pause.
    fn fail(&mut self, msg: &str) -> Duration {
        if self.last_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            let more = match self.unlogged {
                0 => String::new(),
                n => format!(" ({n} more failures since the last report)"),
            };
            log::error(
                "accept_failed",
                &format!("{msg}{more}; retrying, serving the connections already open"),
            );
            self.last_log = Some(Instant::now());
            self.unlogged = 0;
        } else {
            self.unlogged += 1;
        }
        self.failures += 1;
        Duration::from_millis(10 << self.failures.min(6))
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}
