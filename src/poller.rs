//! The poller: one epoll set in which every connection not being served
//! waits (idle between requests, or stalled in the middle of one), with
//! the listening socket and the shutdown event beside them.
//!
//! Idle workers wait in it themselves (leader/follower style: the kernel
//! wakes one of them per ready event), so a connection that becomes
//! readable goes to a worker with no hand-off between threads. Each fd is
//! armed one-shot: a ready connection is taken out and served by exactly
//! one worker, then parked again or closed.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crate::connection::Resume;
use crate::log;
use crate::sys::{Epoll, EventFd, Registration, Socket};

/// A connection on its way to a worker.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) sock: Socket,
    /// Whether the poller's epoll knows this fd already.
    registered: bool,
    /// Where serving it resumes: between requests, or with the part of a
    /// request that arrived before the peer stalled.
    pub(crate) resume: Resume,
}

impl Conn {
    pub(crate) fn new(sock: Socket) -> Conn {
        Conn {
            sock,
            registered: false,
            resume: Resume::NEW,
        }
    }
}

/// Idle connections, waiting in epoll for their next request, and
/// connections whose peer stalled mid-request, waiting for the rest.
pub(crate) struct Poller {
    epoll: Epoll,
    state: Mutex<Waiting>,
    idle_timeout: Duration,
    read_timeout: Option<Duration>,
    /// When to watch the listener again after it failed, in nanoseconds
    /// since `born`; 0 when it is not paused. Outside the lock: every
    /// wake-up reads it, and it is almost always 0.
    listener_resumes: AtomicU64,
    born: Instant,
}

/// What a worker woken by the poller is to do.
pub(crate) enum Ready {
    /// Serve this connection: it has something to read.
    Conn(Conn),
    /// Accept from the listening socket (readable, or due to be tried
    /// again after a pause).
    Listener,
}

/// The connections in the epoll set, by fd, with when each was parked.
struct Waiting {
    conns: HashMap<RawFd, (Conn, Instant)>,
    closed: bool,
    next_sweep: Instant,
}

/// The epoll tokens of the shutdown eventfd and of the listening socket;
/// connections use their fd.
const STOP: u64 = u64::MAX;
const LISTENER: u64 = u64::MAX - 1;

impl Poller {
    /// A poller for connections from `listener`, until `stop` fires.
    pub(crate) fn new(
        stop: &EventFd,
        listener: RawFd,
        idle_timeout: Duration,
        read_timeout: Option<Duration>,
    ) -> io::Result<Poller> {
        let epoll = Epoll::new()?;
        epoll.watch(stop.as_fd().as_raw_fd(), STOP)?;
        epoll.arm(listener, LISTENER, Registration::New)?;
        Ok(Poller {
            epoll,
            state: Mutex::new(Waiting {
                conns: HashMap::with_capacity(64),
                closed: false,
                next_sweep: Instant::now(),
            }),
            idle_timeout,
            read_timeout,
            listener_resumes: AtomicU64::new(0),
            born: Instant::now(),
        })
    }

    /// Watches the listening socket again, for the next worker.
    pub(crate) fn rearm_listener(&self, fd: RawFd) {
        if let Err(e) = self.epoll.arm(fd, LISTENER, Registration::Known) {
            log::error(
                "poll_failed",
                &format!("cannot watch the listening socket: {e}"),
            );
        }
    }

    /// Has a worker try the listening socket again after `d`.
    pub(crate) fn pause_listener(&self, d: Duration) {
        let at = (self.born.elapsed() + d).as_nanos().max(1) as u64;
        self.listener_resumes.store(at, Ordering::SeqCst);
    }

    /// Whether the listener's pause is over; true for one caller only,
    /// which then accepts.
    fn listener_resumed(&self) -> bool {
        let at = self.listener_resumes.load(Ordering::SeqCst);
        at != 0
            && self.born.elapsed().as_nanos() as u64 >= at
            && self
                .listener_resumes
                .compare_exchange(at, 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
    }

    /// How often to look for connections past their timeout: often enough
    /// that none overstays by more than a quarter of its timeout (or 1 s).
    fn sweep_every(&self) -> Duration {
        let shortest = self
            .read_timeout
            .map_or(self.idle_timeout, |r| r.min(self.idle_timeout));
        (shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// Closes the connections past their timeout; counts them, and logs
    /// how many were stalled mid-request.
    fn sweep(&self, state: &mut Waiting) {
        let (mut stalled, mut idle) = (0, 0);
        state.conns.retain(|_, (conn, since)| match &conn.resume {
            Resume::Stalled(p) if p.expired(self.read_timeout) => {
                stalled += 1;
                false
            }
            Resume::Stalled(_) => true,
            Resume::Idle { .. } => {
                let keep = since.elapsed() < self.idle_timeout;
                idle += usize::from(!keep);
                keep
            }
        });
        crate::events::swept(idle, stalled, self.read_timeout);
    }

    /// How many connections wait in the poller now (for the figures).
    pub(crate) fn waiting(&self) -> usize {
        self.lock().conns.len()
    }

    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds `conn` until it is readable again. After shutdown began, closes it.
    pub(crate) fn park(&self, mut conn: Conn) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        let fd = conn.sock.as_raw_fd();
        let registration = if conn.registered {
            Registration::Known
        } else {
            Registration::New
        };
        conn.registered = true;
        state.conns.insert(fd, (conn, Instant::now()));
        if let Err(e) = self.epoll.arm(fd, fd as u64, registration) {
            state.conns.remove(&fd);
            drop(state);
            log::error(
                "poll_failed",
                &format!("cannot wait for an idle connection: {e}; closed it"),
            );
        }
    }

    /// Waits for a connection to become readable and takes it out; `None`
    /// once shutdown began (all connections it held are then closed).
    /// Connections past their timeouts are closed on the way.
    pub(crate) fn next(&self) -> Option<Ready> {
        let every = self.sweep_every();
        loop {
            // While the listener pauses, wake often enough to resume it.
            let paused = self.listener_resumes.load(Ordering::Relaxed) != 0;
            let wait = if paused {
                every.min(Duration::from_millis(10))
            } else {
                every
            };
            let token = match self.epoll.wait_one(Some(wait)) {
                Ok(token) => token,
                Err(e) => {
                    log::error(
                        "poll_failed",
                        &format!("waiting for connections failed: {e}"),
                    );
                    thread::sleep(Duration::from_millis(100));
                    None
                }
            };
            let mut state = self.lock();
            if token == Some(STOP) || state.closed {
                state.closed = true;
                state.conns.clear();
                return None;
            }
            if Instant::now() >= state.next_sweep {
                self.sweep(&mut state);
                state.next_sweep = Instant::now() + every;
            }
            if token == Some(LISTENER) {
                return Some(Ready::Listener);
            }
            if self.listener_resumed() {
                return Some(Ready::Listener);
            }
            // A token whose connection is gone (closed by a sweep) is stale.
            if let Some((conn, _)) = token.and_then(|t| state.conns.remove(&(t as RawFd))) {
                return Some(Ready::Conn(conn));
            }
        }
    }
}
