//! Accepting connections, done by the workers themselves: a worker that
//! the poller wakes for the listening socket accepts a connection and
//! serves it. The socket stays watched meanwhile (level-triggered), so
//! that other workers accept the connections behind it in parallel.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::observe::log;
use crate::runtime::listener::{AllowList, Listener};
use crate::runtime::poller::{Conn, Poller};
use crate::sys;

/// The listening socket and what applies to the connections it gives.
pub(crate) struct Acceptor {
    /// `None` once shutdown closed it.
    listener: RwLock<Option<Listener>>,
    allow: Option<AllowList>,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    backoff: Mutex<Backoff>,
    failing: AtomicBool,
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
        Ok(Acceptor {
            listener: RwLock::new(Some(listener)),
            allow,
            read_timeout,
            write_timeout,
            backoff: Mutex::new(Backoff::default()),
            failing: AtomicBool::new(false),
        })
    }

    /// Closes the listening socket, unless a worker is accepting from it
    /// this moment (it is then closed with the server).
    pub(crate) fn close(&self) {
        if let Ok(mut listener) = self.listener.try_write() {
            *listener = None;
        }
    }

    /// Closes the listening socket now, waiting for a worker that accepts
    /// from it this moment: no connection is accepted after this returns.
    pub(crate) fn close_now(&self) {
        *self.listener.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Accepts one connection, if one is waiting. When accepting fails
    /// for a reason of the listener's (out of descriptors), the poller
    /// stops watching it for a while.
    pub(crate) fn accept(&self, poller: &Poller) -> Option<Conn> {
        let guard = self.listener.read().unwrap_or_else(|e| e.into_inner());
        let fd = match sys::accept(guard.as_ref()?.as_fd()) {
            Ok(fd) => fd,
            Err(e) if transient(&e) => return None,
            Err(e) => {
                let mut backoff = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
                self.failing.store(true, Ordering::Relaxed);
                poller.pause_listener(backoff.fail(&format!("accepting a connection failed: {e}")));
                return None;
            }
        };
        drop(guard);
        if self.failing.swap(false, Ordering::Relaxed) {
            self.backoff
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .reset();
        }
        if !self.allowed(&fd) {
            return None;
        }
        crate::observe::events::accepted();
        let sock = sys::Socket::new(fd, self.read_timeout, self.write_timeout);
        Some(Conn::new(sock))
    }

    /// Whether the peer of `fd` may connect (`FCGI_WEB_SERVER_ADDRS`).
    fn allowed(&self, fd: &OwnedFd) -> bool {
        let Some(allow) = &self.allow else {
            return true;
        };
        match sys::peer_ip(fd.as_fd()) {
            Ok(ip) if allow.allows(ip) => true,
            Ok(ip) => {
                let who = ip.map_or("?".to_owned(), |ip| ip.to_string());
                crate::observe::events::refused_peer(&who);
                false
            }
            Err(_) => false,
        }
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
