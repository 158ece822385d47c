//! The fixed pool of workers, and how a worker spends its life.
//!
//! There is no accept thread and no dispatcher: workers look for work in
//! the [`Poller`] themselves, as [`Rota`] arranges: a worker that has
//! answered takes the next ready connection at once if there is one; one
//! worker at a time waits in the poller, the others park, and a monitor
//! brings another in when a handler is slow or a backlog builds.
//! The worker that finds the listening socket ready accepts a connection
//! and serves it itself, then accepts the next one straight away while
//! any wait (up to [`ACCEPT_STREAK`] in a row); other workers may accept
//! from the same socket meanwhile. The worker that finds a parked
//! connection ready serves it.
//! A worker serves a connection until it has nothing to read (then parks
//! it in the poller) or is done (then closes it), and looks again.
//! Workers start as load needs them, up to the configured number.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use crate::connection::{self, Buffers, Config, Control, Fault, Resume};
use crate::mux::{Env, Job, Mux};
use crate::observe::log;
use crate::observe::metrics::worker::Tally;
use crate::observe::metrics::{Registry, worker as metrics};
use crate::runtime::accept::Acceptor;
use crate::runtime::listener::{AllowList, Listener};
use crate::runtime::poller::{Conn, Poller, Ready};
use crate::runtime::rota::Rota;
use crate::runtime::serve::{self, Handler, Outcome, serve};
use crate::sys::{self, EventFd, Socket};

/// What the pool is started with, besides the handler and the socket.
pub(crate) struct Settings {
    pub(crate) cfg: Config,
    pub(crate) idle_timeout: Duration,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) max_requests: Option<u64>,
    /// Notified each time `max_requests` more requests are served, when
    /// the server recycles by handing over (`None`: it stops instead).
    pub(crate) recycle: Option<Arc<EventFd>>,
    /// The TCP peers allowed, when limited.
    pub(crate) allow: Option<AllowList>,
    /// Where the workers count.
    pub(crate) metrics: Arc<Registry>,
}

/// What every worker shares.
struct Shared {
    cfg: Config,
    handler: Box<Handler>,
    stopping: AtomicBool,
    poller: Poller,
    /// Who looks for work, and when another worker is woken.
    rota: Rota,
    /// Fires to stop the server (and wakes the workers in the poller).
    stop: Arc<EventFd>,
    served: AtomicU64,
    max_requests: Option<u64>,
    recycle: Option<Arc<EventFd>>,
    workers: Workers,
    acceptor: Acceptor,
    /// Fires when a worker wants another started (see [`Running::supervise`]).
    grow: EventFd,
    metrics: Arc<Registry>,
}

/// The worker threads: how many started, how many wait in the poller.
struct Workers {
    /// What a new worker needs; taken away at shutdown so that no worker
    /// starts after it, and so that `done` can disconnect.
    spawner: Mutex<Option<Sender<()>>>,
    started: AtomicUsize,
    /// Workers waiting in the poller for a ready connection.
    idle: AtomicUsize,
    /// The most workers there may be; 0 until the supervisor has stored it.
    max: AtomicUsize,
}

/// A running pool. [`Running::shut_down`] ends it.
pub(crate) struct Running {
    shared: Arc<Shared>,
    /// Disconnects once every worker has exited.
    done: Receiver<()>,
}

/// Starts the pool on `listener`: one worker at first, more as load
/// needs them. It runs until `stop` fires.
pub(crate) fn start(
    settings: Settings,
    handler: Box<Handler>,
    listener: Listener,
    stop: Arc<EventFd>,
) -> io::Result<Running> {
    let Settings {
        cfg,
        idle_timeout,
        write_timeout,
        max_requests,
        recycle,
        allow,
        metrics,
    } = settings;
    let (done_tx, done) = bounded::<()>(0);
    let poller = Poller::new(
        &stop,
        listener.as_fd().as_raw_fd(),
        idle_timeout,
        cfg.read_timeout,
    )?;
    let timeouts = (cfg.read_timeout, write_timeout);
    let shared = Arc::new(Shared {
        workers: Workers {
            spawner: Mutex::new(Some(done_tx)),
            started: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
            max: AtomicUsize::new(0),
        },
        grow: EventFd::new()?,
        cfg,
        handler,
        stopping: AtomicBool::new(false),
        poller,
        rota: Rota::new(),
        stop,
        served: AtomicU64::new(0),
        max_requests,
        recycle,
        acceptor: Acceptor::new(listener, allow, timeouts)?,
        metrics,
    });
    let parked = Arc::downgrade(&shared);
    let probe = move || parked.upgrade().map_or(0, |s| s.poller.waiting());
    shared.metrics.set_parked(Some(Box::new(probe)));
    grow(&shared);
    Ok(Running { shared, done })
}

impl Running {
    /// Starts workers as the running ones ask for them, until `stop`
    /// fires. Threads are started here, on the thread that called `run`,
    /// so that starting one is never in the way of a request.
    pub(crate) fn supervise(&self, stop: &EventFd) {
        let shared = &self.shared;
        let max = shared.cfg.workers();
        shared.workers.max.store(max, Ordering::Relaxed);
        shared.rota.set_cpus(connection::cpus());
        loop {
            match sys::poll_readable(&[stop.as_fd(), shared.grow.as_fd()], None) {
                Ok([true, _]) => return,
                Ok([false, true]) => {
                    shared.grow.drain();
                    grow(shared);
                }
                Ok(_) => {}
                Err(e) => {
                    log::error("poll_failed", &format!("waiting for shutdown failed: {e}"));
                    thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// What makes the pool stop accepting while it goes on serving what
    /// it has: for a hand-over, once the new process accepts from the
    /// same socket. Does nothing once the pool is gone.
    pub(crate) fn accept_stopper(&self) -> impl Fn() + Send + Sync + 'static {
        let shared = Arc::downgrade(&self.shared);
        move || {
            if let Some(shared) = shared.upgrade() {
                shared.poller.stop_listening();
                shared.acceptor.close_now();
            }
        }
    }

    /// Stops accepting, lets the workers finish the requests in flight
    /// within `grace`, and returns (without the workers still running).
    pub(crate) fn shut_down(self, grace: Duration) {
        let shared = &self.shared;
        shared.stopping.store(true, Ordering::Relaxed);
        shared.stop.notify();
        shared.acceptor.close();
        // No worker starts after this, and `done` disconnects once the
        // running ones have exited.
        shared
            .workers
            .spawner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match self.done.recv_deadline(Instant::now() + grace) {
            Err(RecvTimeoutError::Disconnected) | Ok(()) => {}
            Err(RecvTimeoutError::Timeout) => log::warn(
                "grace_expired",
                &format!(
                    "requests still running after the grace period of {grace:?}; returning without them"
                ),
            ),
        }
        // The last reference, unless a worker outlived the grace period;
        // its drop closes the listener.
    }
}

/// Starts a worker if none is left waiting in the poller and the pool is
/// not full. A failure to start one is logged; the workers already running
/// go on.
fn grow(shared: &Arc<Shared>) {
    let w = &shared.workers;
    let started = w.started.load(Ordering::SeqCst);
    if w.idle.load(Ordering::SeqCst) > 0 || (started > 0 && started >= shared.cfg.workers()) {
        return;
    }
    let guard = w.spawner.lock().unwrap_or_else(|e| e.into_inner());
    let Some(done) = guard.as_ref() else {
        return;
    };
    // Counted (and idle) before it runs: it may take a connection at once.
    w.started.fetch_add(1, Ordering::SeqCst);
    w.idle.fetch_add(1, Ordering::SeqCst);
    let (shared2, done) = (Arc::clone(shared), done.clone());
    let spawned = thread::Builder::new()
        .name(format!("fcgi-worker-{started}"))
        .spawn(move || {
            let _bound = metrics::bind(&shared2.metrics, started);
            metrics::with_tally(|tally| work(&shared2, tally));
            // Before `done`: whoever learns that all workers are gone then
            // holds the last reference, and its drop closes the listener.
            drop(shared2);
            drop(done);
        });
    if let Err(e) = spawned {
        w.started.fetch_sub(1, Ordering::SeqCst);
        w.idle.fetch_sub(1, Ordering::SeqCst);
        log::error(
            "worker_start_failed",
            &format!("cannot start worker thread {started}: {e}"),
        );
    }
}

impl Workers {
    /// Whether the pool is not full (or not yet known to be).
    fn may_grow(&self) -> bool {
        let max = self.max.load(Ordering::Relaxed);
        max == 0 || self.started.load(Ordering::Relaxed) < max
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

    fn request_done(&self) {
        let Some(max) = self.max_requests else {
            return;
        };
        let served = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        match &self.recycle {
            // Asked again after as many more, should a hand-over fail.
            Some(recycle) if served % max == 0 => recycle.notify(),
            None if served == max => self.stop(),
            _ => {}
        }
    }
}

/// The most connections a worker accepts in a row, straight from the
/// listening socket, before it looks at the poller again: parked
/// connections that became readable meanwhile are not kept waiting long.
const ACCEPT_STREAK: usize = 32;

/// A worker's life: wait in the poller, serve what it hands over, repeat
/// until shutdown.
fn work(shared: &Arc<Shared>, tally: Option<Tally<'_>>) {
    let mut bufs = Buffers::new();
    let idle = &shared.workers.idle;
    shared.rota.enter();
    while let Some(ready) = shared.rota.find(&shared.poller) {
        // The last worker watching the poller leaves it: have another
        // started, if the pool is not full.
        if idle.fetch_sub(1, Ordering::SeqCst) == 1 && shared.workers.may_grow() {
            shared.grow.notify();
        }
        match ready {
            Ready::Conn(conn) => serve_conn(shared, &mut bufs, conn, tally),
            Ready::Listener => accept_streak(shared, &mut bufs, tally),
            Ready::Mux(mux) => mux.pump(),
            Ready::Job(job) => run_job(shared, &mut bufs, job, tally),
        }
        idle.fetch_add(1, Ordering::SeqCst);
    }
}

/// Accepts and serves connections one after the other while more are
/// waiting (up to [`ACCEPT_STREAK`]): when they come fast, a worker goes
/// from one to the next without a round through epoll.
fn accept_streak(shared: &Arc<Shared>, bufs: &mut Buffers, tally: Option<Tally<'_>>) {
    for _ in 0..ACCEPT_STREAK {
        if shared.stopping() {
            return;
        }
        match shared.acceptor.accept(&shared.poller) {
            Some(conn) if shared.cfg.multiplex > 1 => start_mux(shared, conn),
            Some(conn) => serve_conn(shared, bufs, conn, tally),
            None => return,
        }
    }
}

/// Takes a new connection in as a multiplexed one, and reads what it has
/// sent (see `crate::mux`).
fn start_mux(shared: &Arc<Shared>, conn: Conn) {
    let env: Weak<dyn Env> = Arc::downgrade(shared) as Weak<Shared>;
    let mux = Mux::new(Box::new(shared.poller.release(conn)), &shared.cfg, env);
    match shared.poller.add_mux(&mux) {
        Ok(()) => mux.pump(),
        Err(e) => log::error(
            "poll_failed",
            &format!("cannot wait for a multiplexed connection: {e}; closed it"),
        ),
    }
}

/// Runs a request of a multiplexed connection.
fn run_job(shared: &Arc<Shared>, bufs: &mut Buffers, job: Job, tally: Option<Tally<'_>>) {
    let _serving = metrics::serving(tally, job.mux.fd());
    let (cfg, handler) = (&shared.cfg, &*shared.handler);
    let ran = catch_unwind(AssertUnwindSafe(|| {
        serve::run_job(job, bufs, (cfg, handler), tally);
    }));
    if ran.is_err() {
        crate::observe::panic_report::report_internal();
        *bufs = Buffers::new();
    }
    bufs.trim();
}

impl Env for Shared {
    fn run(&self, job: Job) {
        self.poller.push_job(job);
    }

    fn closed(&self, mux: &Mux) {
        self.poller.forget_mux(mux);
    }
}

/// Serves `conn` until it is parked or closed.
fn serve_conn(shared: &Arc<Shared>, bufs: &mut Buffers, mut conn: Conn, tally: Option<Tally<'_>>) {
    let _serving = metrics::serving(tally, conn.sock.as_raw_fd());
    loop {
        let resume = std::mem::replace(&mut conn.resume, Resume::NEW);
        let served = catch_unwind(AssertUnwindSafe(|| {
            serve(
                &conn.sock,
                bufs,
                &shared.cfg,
                &*shared.handler,
                &**shared,
                resume,
                tally,
            )
        }));
        // However the connection ended, one large request does not leave
        // the worker holding its memory.
        bufs.trim();
        match served {
            Ok(Ok(Outcome::Park(resume))) => {
                conn.resume = resume;
                match shared.poller.park(conn) {
                    // More arrived while it was served: go on.
                    Some(again) => conn = again,
                    None => return,
                }
            }
            Ok(Ok(Outcome::Close { drain })) => return close(shared.poller.release(conn), drain),
            Ok(Err(fault)) => {
                crate::observe::events::connection_fault(&fault);
                let sock = shared.poller.release(conn);
                if matches!(fault, Fault::Limit(_)) {
                    // Its error response is on the way: no reset.
                    close(sock, true);
                }
                return;
            }
            Err(_) => {
                crate::observe::panic_report::report_internal();
                drop(shared.poller.release(conn));
                *bufs = Buffers::new();
                return;
            }
        }
    }
}

/// Closes without a reset. Unread input would make the kernel answer
/// with RST, which can destroy the response in flight: what is there is
/// read first; with `drain` (the request body may still be on the way),
/// our side is shut down and what the peer still sends is read, for a
/// bounded time and amount.
fn close(sock: Socket, drain: bool) {
    let mut scratch = [0u8; 4096];
    let mut budget = 1usize << 20;
    let deadline = Instant::now() + Duration::from_secs(1);
    if drain {
        let _ = sock.shutdown_write();
    }
    while budget > 0 && Instant::now() < deadline {
        let n = if drain {
            sock.read_within(&mut scratch, Some(Duration::from_millis(200)))
        } else {
            sock.read_nonblocking(&mut scratch)
        };
        match n {
            Ok(n) if n > 0 => budget -= n.min(budget),
            _ => break,
        }
    }
}
