//! The poller: one epoll set in which every connection not being served
//! waits (idle between requests, or stalled in the middle of one), with
//! the listening socket and the shutdown event beside them.
//!
//! Idle workers wait in it themselves (leader/follower style: the kernel
//! wakes one of them per ready event), so a connection that becomes
//! readable goes to a worker with no hand-off between threads.
//!
//! - **The listening socket** is level-triggered: while connections wait
//!   to be accepted, every worker that looks may accept one, in parallel.
//!   No system call re-arms it between two accepts.
//! - **A connection** is added to the set once, edge-triggered, the first
//!   time it is parked, and stays there until it is closed: parking it
//!   again costs no system call. It lives in a [`Slots`] entry, which the
//!   event's token names (with the entry's generation, so that the token
//!   of a closed connection is ignored). One worker at a time serves it:
//!   that worker takes it out of its slot. An event that arrives
//!   meanwhile finds the slot empty and leaves a note (`pending`); the
//!   worker that parks the connection finds the note and serves it again
//!   instead. So every byte that arrives after the serving worker's last
//!   read leads to a read, and none to two workers at once.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::Duration;

use crate::connection::Resume;
use crate::mux::{Job, Mux};
use crate::observe::log;
use crate::sys::{self, Epoll, EventFd, Socket, Trigger};

/// A connection on its way to a worker.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) sock: Socket,
    /// Its slot, once it has been parked (and so added to the epoll set).
    slot: Option<SlotId>,
    /// Where serving it resumes: between requests, or with the part of a
    /// request that arrived before the peer stalled.
    pub(crate) resume: Resume,
}

impl Conn {
    pub(crate) fn new(sock: Socket) -> Conn {
        Conn {
            sock,
            slot: None,
            resume: Resume::NEW,
        }
    }
}

/// What a worker woken by the poller is to do.
pub(crate) enum Ready {
    /// Serve this connection: it has something to read.
    Conn(Conn),
    /// Read what this multiplexed connection has sent.
    Mux(Arc<Mux>),
    /// Run this request of a multiplexed connection.
    Job(Job),
    /// Accept from the listening socket.
    Listener,
}

/// What a look at the poller found.
pub(crate) enum Look {
    Ready(Ready),
    /// Nothing ready (a look that does not wait), or a sweep is due.
    Nothing,
    /// The server shuts down.
    Closed,
}

/// The epoll tokens of the shutdown eventfd and of the listening socket;
/// connections use their slot's.
const STOP: u64 = u64::MAX;
const LISTENER: u64 = u64::MAX - 1;
const JOBS: u64 = u64::MAX - 2;

/// A slot of the table, and the generation of its current occupant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SlotId {
    index: u32,
    generation: u32,
}

impl SlotId {
    fn token(self) -> u64 {
        u64::from(self.generation) << 32 | u64::from(self.index)
    }

    fn from_token(token: u64) -> SlotId {
        SlotId {
            index: token as u32,
            generation: (token >> 32) as u32,
        }
    }
}

/// What a slot holds.
#[derive(Debug, Default)]
struct Slot {
    /// Counts the connections that held the slot; a token whose
    /// generation differs names one that is gone.
    generation: u32,
    /// The parked connection and since when it waits (coarse
    /// nanoseconds); `None` while a worker serves it (or while the slot is
    /// free).
    conn: Option<(Conn, u64)>,
    /// A multiplexed connection, which stays in its slot while served
    /// (its workers coordinate among themselves: see `crate::mux`).
    mux: Option<Arc<Mux>>,
    /// An event came while a worker served the connection.
    pending: bool,
}

/// The table of slots, in chunks that double in size as connections
/// grow in number (64, 128, 256, ...), allocated once and never moved: a
/// token leads to its slot without a lock on the table.
struct Slots {
    chunks: [OnceLock<Box<[Mutex<Slot>]>>; 32],
    /// Indices free for reuse, and the next never used.
    free: Mutex<(Vec<u32>, u32)>,
}

impl Slots {
    const FIRST: u64 = 64;

    fn new() -> Slots {
        Slots {
            chunks: std::array::from_fn(|_| OnceLock::new()),
            free: Mutex::new((Vec::new(), 0)),
        }
    }

    /// The chunk of `index`, and its position there.
    fn place(index: u32) -> (usize, usize) {
        let k = 63 - (u64::from(index) / Slots::FIRST + 1).leading_zeros() as usize;
        let start = Slots::FIRST * ((1 << k) - 1);
        (k, (u64::from(index) - start) as usize)
    }

    fn lock(&self, index: u32) -> MutexGuard<'_, Slot> {
        let (k, at) = Slots::place(index);
        let chunk = self.chunks[k].get_or_init(|| {
            let len = Slots::FIRST << k;
            (0..len).map(|_| Mutex::default()).collect()
        });
        chunk[at].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many indices have been used (the slots to look at in a sweep).
    fn used(&self) -> u32 {
        lock(&self.free).1
    }

    fn allocate(&self) -> SlotId {
        let index = {
            let mut free = lock(&self.free);
            match free.0.pop() {
                Some(i) => i,
                None => {
                    free.1 += 1;
                    free.1 - 1
                }
            }
        };
        let generation = self.lock(index).generation;
        SlotId { index, generation }
    }

    /// Frees slot `id` (its occupant is gone); tokens of it go stale.
    fn release(&self, id: SlotId) {
        {
            let mut slot = self.lock(id.index);
            slot.generation = slot.generation.wrapping_add(1);
            slot.pending = false;
            slot.conn = None;
            slot.mux = None;
        }
        lock(&self.free).0.push(id.index);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Idle connections, waiting in epoll for their next request, and
/// connections whose peer stalled mid-request, waiting for the rest.
pub(crate) struct Poller {
    epoll: Epoll,
    slots: Slots,
    listener: RawFd,
    /// Requests of multiplexed connections, ready to run, and one count
    /// per request on an eventfd in the epoll set.
    jobs: Mutex<VecDeque<Job>>,
    jobs_ready: EventFd,
    closed: AtomicBool,
    idle_timeout: Duration,
    read_timeout: Option<Duration>,
    /// When the next sweep for connections past their timeouts is due
    /// (coarse nanoseconds).
    next_sweep: AtomicU64,
    /// When to watch the listener again after it failed (coarse
    /// nanoseconds); 0 when it is not paused.
    listener_resumes: AtomicU64,
}

impl Poller {
    /// A poller for connections from `listener`, until `stop` fires.
    pub(crate) fn new(
        stop: &EventFd,
        listener: RawFd,
        idle_timeout: Duration,
        read_timeout: Option<Duration>,
    ) -> io::Result<Poller> {
        let epoll = Epoll::new()?;
        epoll.add(stop.as_fd().as_raw_fd(), STOP, Trigger::Level)?;
        epoll.add(listener, LISTENER, Trigger::Level)?;
        let jobs_ready = EventFd::counting()?;
        epoll.add(jobs_ready.as_fd().as_raw_fd(), JOBS, Trigger::Level)?;
        Ok(Poller {
            epoll,
            slots: Slots::new(),
            listener,
            jobs: Mutex::new(VecDeque::new()),
            jobs_ready,
            closed: AtomicBool::new(false),
            idle_timeout,
            read_timeout,
            next_sweep: AtomicU64::new(0),
            listener_resumes: AtomicU64::new(0),
        })
    }

    /// Takes out a connection that is readable, or finds the listener
    /// ready; with `wait`, waits for one (until a sweep is due). Closed
    /// once shutdown began (every connection it held is then closed).
    /// Connections past their timeouts are closed on the way.
    pub(crate) fn look(&self, wait: bool) -> Look {
        let every = self.sweep_every();
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Look::Closed;
            }
            self.housekeeping(every.as_nanos() as u64);
            // While the listener pauses, wake often enough to resume it.
            let paused = self.listener_resumes.load(Ordering::Relaxed) != 0;
            let timeout = match (wait, paused) {
                (false, _) => Duration::ZERO,
                (true, true) => every.min(Duration::from_millis(10)),
                (true, false) => every,
            };
            let token = self.epoll.wait_one(Some(timeout)).unwrap_or_else(|e| {
                log::error(
                    "poll_failed",
                    &format!("waiting for connections failed: {e}"),
                );
                thread::sleep(Duration::from_millis(100));
                None
            });
            match token {
                None => return Look::Nothing,
                Some(STOP) => {
                    self.close_all();
                    return Look::Closed;
                }
                Some(LISTENER) => return Look::Ready(Ready::Listener),
                Some(JOBS) => {
                    if let Some(job) = self.next_job() {
                        return Look::Ready(Ready::Job(job));
                    }
                }
                Some(token) => {
                    if let Some(ready) = self.take(SlotId::from_token(token)) {
                        return Look::Ready(ready);
                    }
                }
            }
        }
    }

    /// The connection in slot `id`, unless it is gone (a stale token) or
    /// a worker serves it (which then learns that more has come).
    fn take(&self, id: SlotId) -> Option<Ready> {
        let mut slot = self.slots.lock(id.index);
        if slot.generation != id.generation {
            return None;
        }
        if let Some(mux) = &slot.mux {
            return Some(Ready::Mux(Arc::clone(mux)));
        }
        match slot.conn.take() {
            Some((conn, _)) => Some(Ready::Conn(conn)),
            None => {
                slot.pending = true;
                None
            }
        }
    }

    /// Sweeps when a sweep is due, and resumes a paused listener.
    fn housekeeping(&self, every_ns: u64) {
        let now = sys::coarse_nanos();
        let due = self.next_sweep.load(Ordering::Relaxed);
        if now >= due
            && self
                .next_sweep
                .compare_exchange(due, now + every_ns, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.sweep();
        }
        let resumes = self.listener_resumes.load(Ordering::Relaxed);
        if resumes != 0
            && now >= resumes
            && self
                .listener_resumes
                .compare_exchange(resumes, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.watch_listener(true);
        }
    }

    /// Holds `conn` until it is readable again; after shutdown began,
    /// closes it. Returns it at once when more arrived while it was served.
    pub(crate) fn park(&self, mut conn: Conn) -> Option<Conn> {
        let (id, new) = match conn.slot {
            Some(id) => (id, false),
            None => (self.slots.allocate(), true),
        };
        conn.slot = Some(id);
        let fd = conn.sock.as_raw_fd();
        {
            let mut slot = self.slots.lock(id.index);
            if self.closed.load(Ordering::Acquire) {
                drop(slot);
                self.release(conn);
                return None;
            }
            if std::mem::take(&mut slot.pending) {
                return Some(conn);
            }
            slot.conn = Some((conn, sys::coarse_nanos()));
        }
        // Added after it is in its slot: an event may come at once, for
        // bytes that came before.
        let watched = if new {
            self.epoll.add(fd, id.token(), Trigger::Edge)
        } else {
            Ok(())
        };
        if let Err(e) = watched {
            log::error(
                "poll_failed",
                &format!("cannot wait for an idle connection: {e}; closed it"),
            );
            self.slots.release(id);
        }
        None
    }

    /// Takes `conn` off the poller's books (its slot is freed; closing its
    /// socket takes it out of the epoll set) and gives back its socket.
    pub(crate) fn release(&self, conn: Conn) -> Socket {
        if let Some(id) = conn.slot {
            self.slots.release(id);
        }
        conn.sock
    }

    /// Has a worker try the listening socket again after `d`.
    pub(crate) fn pause_listener(&self, d: Duration) {
        self.watch_listener(false);
        let at = (sys::coarse_nanos() + d.as_nanos() as u64).max(1);
        self.listener_resumes.store(at, Ordering::SeqCst);
    }

    /// Stops watching the listening socket for good: after a hand-over,
    /// another process accepts from it.
    pub(crate) fn stop_listening(&self) {
        self.listener_resumes.store(0, Ordering::SeqCst);
        self.watch_listener(false);
    }

    fn watch_listener(&self, on: bool) {
        if let Err(e) = self.epoll.set_level(self.listener, LISTENER, on) {
            log::error(
                "poll_failed",
                &format!("cannot watch the listening socket: {e}"),
            );
        }
    }

    /// How often to look for connections past their timeout: often enough
    /// that none overstays by more than a quarter of its timeout (or 1 s).
    fn sweep_every(&self) -> Duration {
        let shortest = self
            .read_timeout
            .map_or(self.idle_timeout, |r| r.min(self.idle_timeout));
        (shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// Closes the parked connections past their timeout; counts them, and
    /// logs how many were stalled mid-request.
    fn sweep(&self) {
        let now = sys::coarse_nanos();
        let idle_limit = self.idle_timeout.as_nanos() as u64;
        let (mut stalled, mut idle) = (0, 0);
        let mut expired_muxes = Vec::new();
        // Closed only once counted: a peer that sees its connection close
        // must find it in the figures.
        let mut expired_conns = Vec::new();
        for index in 0..self.slots.used() {
            let mut slot = self.slots.lock(index);
            if let Some(mux) = &slot.mux {
                if mux.expired(now, self.idle_timeout) {
                    expired_muxes.push(Arc::clone(mux));
                }
                continue;
            }
            let expired = match &slot.conn {
                Some((conn, since)) => match &conn.resume {
                    Resume::Stalled(p) => p.expired(self.read_timeout),
                    Resume::Idle { .. } => now.saturating_sub(*since) >= idle_limit,
                },
                None => false,
            };
            if expired {
                let (conn, _) = slot.conn.take().expect("checked");
                match conn.resume {
                    Resume::Stalled(_) => stalled += 1,
                    Resume::Idle { .. } => idle += 1,
                }
                drop(slot);
                expired_conns.push(conn);
            }
        }
        crate::observe::events::swept(idle, stalled, self.read_timeout);
        for conn in expired_conns {
            drop(self.release(conn));
        }
        for mux in expired_muxes {
            mux.fail(crate::connection::Fault::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                "a multiplexed connection past its idle or read timeout",
            )));
        }
    }

    /// How many connections wait in the poller now (for the figures:
    /// counted when asked, which costs the hot path nothing).
    pub(crate) fn waiting(&self) -> usize {
        (0..self.slots.used())
            .filter(|&index| {
                let slot = self.slots.lock(index);
                slot.conn.is_some() || slot.mux.is_some()
            })
            .count()
    }

    /// Takes in a multiplexed connection: it stays in the epoll set, and
    /// in a slot, until [`forget_mux`](Poller::forget_mux).
    pub(crate) fn add_mux(&self, mux: &Arc<Mux>) -> io::Result<()> {
        let id = self.slots.allocate();
        mux.token.store(id.token(), Ordering::SeqCst);
        {
            let mut slot = self.slots.lock(id.index);
            if self.closed.load(Ordering::Acquire) {
                return Err(io::ErrorKind::ConnectionAborted.into());
            }
            slot.mux = Some(Arc::clone(mux));
        }
        let added = self.epoll.add(mux.fd(), id.token(), Trigger::Edge);
        if added.is_err() {
            self.slots.release(id);
        }
        added
    }

    /// Lets a multiplexed connection go (it closes once the requests that
    /// still hold it are done).
    pub(crate) fn forget_mux(&self, mux: &Mux) {
        let id = SlotId::from_token(mux.token.load(Ordering::SeqCst));
        let ours = {
            let slot = self.slots.lock(id.index);
            slot.generation == id.generation
                && slot.mux.as_ref().is_some_and(|m| std::ptr::eq(&**m, mux))
        };
        if ours {
            self.slots.release(id);
        }
    }

    /// Queues a request of a multiplexed connection for a worker.
    pub(crate) fn push_job(&self, job: Job) {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(job);
        self.jobs_ready.notify();
    }

    fn next_job(&self) -> Option<Job> {
        if !self.jobs_ready.try_take() {
            return None;
        }
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }

    /// Closes every parked connection; no connection is parked after this.
    fn close_all(&self) {
        self.closed.store(true, Ordering::Release);
        for index in 0..self.slots.used() {
            let (conn, mux) = {
                let mut slot = self.slots.lock(index);
                (slot.conn.take(), slot.mux.take())
            };
            if let Some((conn, _)) = conn {
                drop(self.release(conn));
            }
            if let Some(mux) = mux {
                mux.shut_down();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_indices_map_to_chunks_that_double() {
        let cases = [
            (0, (0, 0)),
            (63, (0, 63)),
            (64, (1, 0)),
            (191, (1, 127)),
            (192, (2, 0)),
            (447, (2, 255)),
            (448, (3, 0)),
        ];
        for (index, want) in cases {
            assert_eq!(Slots::place(index), want, "index {index}");
        }
        let (k, at) = Slots::place(u32::MAX);
        assert!(k < 32 && at < (64 << k), "{k} {at}");
    }

    #[test]
    fn tokens_round_trip_and_stale_ones_are_told_apart() {
        let slots = Slots::new();
        let a = slots.allocate();
        assert_eq!(SlotId::from_token(a.token()), a);
        slots.release(a);
        let b = slots.allocate();
        assert_eq!(b.index, a.index, "a freed slot is reused");
        assert_ne!(b.generation, a.generation, "with a new generation");
        assert_eq!(slots.used(), 1);
    }
}
