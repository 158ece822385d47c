//! The fixed pool of workers, and the parker: the epoll set in which every
//! connection not being served waits, so that none pins a worker.
//!
//! Idle workers wait in the parker's epoll themselves (leader/follower
//! style: the kernel wakes one of them per ready event), so a connection
//! that becomes readable goes to a worker with no hand-off between threads.
//! The listening socket is in the same epoll: the worker woken for it
//! accepts one connection, lets the parker watch the socket again for the
//! next worker, and serves the connection itself. A worker serves a
//! connection until it has nothing to read (then parks it) or is done
//! (then closes it), and goes back to waiting.

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use std::{io, thread};

use crossbeam_channel::Sender;

use crate::accept::Acceptor;
use crate::connection::{self, Buffers, Config, Control, Fault, Handler, Outcome, Resume};
use crate::sys::{Epoll, EventFd, Socket};

/// A connection on its way to a worker.
#[derive(Debug)]
pub(crate) struct Conn {
    sock: Socket,
    /// Whether the parker's epoll knows this fd already.
    registered: bool,
    /// Where serving it resumes: between requests, or with the part of a
    /// request that arrived before the peer stalled.
    resume: Resume,
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

/// What every worker shares.
pub(crate) struct Shared {
    pub(crate) cfg: Config,
    pub(crate) handler: Box<Handler>,
    pub(crate) stopping: AtomicBool,
    pub(crate) parker: Parker,
    /// Fires to stop the accept loop and the parker.
    pub(crate) stop: Arc<EventFd>,
    pub(crate) served: AtomicU64,
    pub(crate) max_requests: Option<u64>,
    pub(crate) pool: Pool,
    pub(crate) acceptor: Acceptor,
}

/// The workers: started one at a time as load needs them, up to the
/// configured number, and kept.
pub(crate) struct Pool {
    /// What a new worker needs; taken away at shutdown so that no worker
    /// starts after it, and so that `done` can disconnect.
    spawner: Mutex<Option<Sender<()>>>,
    started: AtomicUsize,
    /// Workers waiting in the parker for a ready connection.
    idle: AtomicUsize,
    max: usize,
}

impl Pool {
    /// A pool of at most `max` workers. Each worker holds a clone of
    /// `done` until it exits, so that `done`'s receiver learns when all
    /// have exited.
    pub(crate) fn new(max: usize, done: Sender<()>) -> Pool {
        Pool {
            spawner: Mutex::new(Some(done)),
            started: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
            max,
        }
    }

    /// No worker starts after this.
    pub(crate) fn close(&self) {
        self.spawner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }
}

/// Starts a worker if none is left waiting in the parker and the pool is
/// not full. A failure to start one is logged; the workers already running
/// go on.
pub(crate) fn grow(shared: &Arc<Shared>) {
    let pool = &shared.pool;
    if pool.idle.load(Ordering::SeqCst) > 0 || pool.started.load(Ordering::SeqCst) >= pool.max {
        return;
    }
    let guard = pool.spawner.lock().unwrap_or_else(|e| e.into_inner());
    let Some(done) = guard.as_ref() else {
        return;
    };
    let i = pool.started.load(Ordering::SeqCst);
    if i >= pool.max {
        return;
    }
    // Counted (and idle) before it runs: it may take a connection at once.
    pool.started.fetch_add(1, Ordering::SeqCst);
    pool.idle.fetch_add(1, Ordering::SeqCst);
    let (shared2, done) = (Arc::clone(shared), done.clone());
    let spawned = thread::Builder::new()
        .name(format!("fcgi-worker-{i}"))
        .spawn(move || {
            work(&shared2);
            // Before `done`: whoever learns that all workers are gone then
            // holds the last reference, and its drop closes the listener.
            drop(shared2);
            drop(done);
        });
    if let Err(e) = spawned {
        pool.started.fetch_sub(1, Ordering::SeqCst);
        pool.idle.fetch_sub(1, Ordering::SeqCst);
        log(&format!("cannot start worker thread {i}: {e}"));
    }
}

impl Shared {
    /// Begins shutdown from inside the server.
    fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.stop.notify();
    }
}

impl Control for Shared {
    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Another worker watches the parker meanwhile, so lingering keeps no
    /// ready connection waiting.
    fn may_linger(&self) -> bool {
        self.pool.idle.load(Ordering::Relaxed) > 0 && !self.stopping()
    }

    fn request_done(&self) {
        let Some(max) = self.max_requests else {
            return;
        };
        if self.served.fetch_add(1, Ordering::Relaxed) + 1 == max {
            log(&format!("served {max} requests (max_requests); stopping"));
            self.stop();
        }
    }
}

fn work(shared: &Arc<Shared>) {
    let mut bufs = Buffers::new();
    let idle = &shared.pool.idle;
    while let Some(ready) = shared.parker.next() {
        // The last worker watching the parker leaves it: start another.
        if idle.fetch_sub(1, Ordering::SeqCst) == 1 {
            grow(shared);
        }
        let conn = match ready {
            Ready::Conn(conn) => Some(conn),
            Ready::Listener => shared.acceptor.accept(&shared.parker),
        };
        let Some(mut conn) = conn else {
            idle.fetch_add(1, Ordering::SeqCst);
            continue;
        };
        let served = catch_unwind(AssertUnwindSafe(|| {
            connection::serve(
                &conn.sock,
                &mut bufs,
                &shared.cfg,
                &*shared.handler,
                &**shared,
                std::mem::replace(&mut conn.resume, Resume::NEW),
            )
        }));
        match served {
            Ok(Ok(Outcome::Park(resume))) => {
                conn.resume = resume;
                shared.parker.park(conn);
            }
            Ok(Ok(Outcome::Close { drain })) => close(conn.sock, drain),
            Ok(Err(fault)) => {
                log_fault(&fault);
                if matches!(fault, Fault::Limit(_)) {
                    // Its error response is on the way: no reset.
                    close(conn.sock, true);
                }
            }
            Err(_) => {
                log("internal error while serving a connection; closed it");
                bufs = Buffers::new();
            }
        }
        // However the connection ended, one large request does not leave
        // the worker holding its memory.
        bufs.trim();
        idle.fetch_add(1, Ordering::SeqCst);
    }
}

/// Writes one line to the process's standard error, where a spawning web
/// server (lighttpd, mod_fcgid) or the init system records it.
pub(crate) fn log(msg: &str) {
    let _ = writeln!(io::stderr().lock(), "fcgi-server: {msg}");
}

/// Logs why a connection was closed, unless the peer just went away
/// (nginx closes its upstream connection when a client aborts: routine).
fn log_fault(fault: &Fault) {
    use io::ErrorKind::{BrokenPipe, ConnectionReset, UnexpectedEof};
    match fault {
        Fault::Io(e) if matches!(e.kind(), BrokenPipe | ConnectionReset | UnexpectedEof) => {}
        Fault::Io(e) => log(&format!("closing connection: {e}")),
        Fault::Protocol(msg) => log(&format!("closing connection: protocol error: {msg}")),
        Fault::Limit(msg) => log(&format!("closing connection: {msg}")),
    }
}

/// Closes without a reset: shut down our side, then read what the peer
/// still sends, for a bounded time, so that unread input does not make
/// the kernel answer with RST (which can destroy the response in flight).
fn close(sock: Socket, drain: bool) {
    let _ = sock.shutdown_write();
    let mut scratch = [0u8; 4096];
    let (mut budget, deadline) = (1 << 20, Instant::now() + Duration::from_secs(1));
    let mut sock = sock;
    if drain {
        let _ = sock.set_timeouts(Duration::from_millis(200), None, None);
    }
    while budget > 0 && Instant::now() < deadline {
        let n = if drain {
            sock.read_lingering(&mut scratch)
        } else {
            sock.read_nonblocking(&mut scratch)
        };
        match n {
            Ok(n) if n > 0 => budget -= n.min(budget),
            _ => break,
        }
    }
}

/// Idle connections, waiting in epoll for their next request, and
/// connections whose peer stalled mid-request, waiting for the rest.
pub(crate) struct Parker {
    epoll: Epoll,
    state: Mutex<Parked>,
    idle_timeout: Duration,
    read_timeout: Option<Duration>,
    /// When to watch the listener again after it failed, in nanoseconds
    /// since `born`; 0 when it is not paused. Outside the lock: every
    /// wake-up reads it, and it is almost always 0.
    listener_resumes: AtomicU64,
    born: Instant,
}

/// What a worker woken by the parker is to do.
pub(crate) enum Ready {
    /// Serve this connection: it has something to read.
    Conn(Conn),
    /// Accept from the listening socket (readable, or due to be tried
    /// again after a pause).
    Listener,
}

struct Parked {
    conns: HashMap<RawFd, (Conn, Instant)>,
    closed: bool,
    next_sweep: Instant,
}

/// The epoll tokens of the shutdown eventfd and of the listening socket;
/// connections use their fd.
const STOP: u64 = u64::MAX;
const LISTENER: u64 = u64::MAX - 1;

impl Parker {
    /// A parker for connections from `listener`, until `stop` fires.
    pub(crate) fn new(
        stop: &EventFd,
        listener: RawFd,
        idle_timeout: Duration,
        read_timeout: Option<Duration>,
    ) -> io::Result<Parker> {
        let epoll = Epoll::new()?;
        epoll.watch(std::os::fd::AsFd::as_fd(stop).as_raw_fd(), STOP)?;
        epoll.arm(listener, LISTENER, true)?;
        Ok(Parker {
            epoll,
            state: Mutex::new(Parked {
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
        if let Err(e) = self.epoll.arm(fd, LISTENER, false) {
            log(&format!("cannot watch the listening socket: {e}"));
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

    /// Closes the connections past their timeout; logs how many were
    /// stalled mid-request.
    fn sweep(&self, state: &mut Parked) {
        let mut stalled = 0;
        state.conns.retain(|_, (conn, since)| match &conn.resume {
            Resume::Stalled(p) if p.expired(self.read_timeout) => {
                stalled += 1;
                false
            }
            Resume::Stalled(_) => true,
            Resume::Idle { .. } => since.elapsed() < self.idle_timeout,
        });
        if stalled > 0 {
            let limit = self.read_timeout.unwrap_or_default();
            log(&format!(
                "closed {stalled} connection(s) whose request did not arrive whole \
                 within the read timeout of {limit:?}"
            ));
        }
    }

    fn lock(&self) -> MutexGuard<'_, Parked> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds `conn` until it is readable again. After shutdown began, closes it.
    pub(crate) fn park(&self, mut conn: Conn) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        let fd = conn.sock.as_raw_fd();
        let first = !conn.registered;
        conn.registered = true;
        state.conns.insert(fd, (conn, Instant::now()));
        if let Err(e) = self.epoll.arm(fd, fd as u64, first) {
            state.conns.remove(&fd);
            drop(state);
            log(&format!(
                "cannot wait for an idle connection: {e}; closed it"
            ));
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
                    log(&format!("waiting for connections failed: {e}"));
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
