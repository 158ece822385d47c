//! Which worker looks for work, and when another one is woken: how a
//! thread pool costs close to an event loop when requests come in
//! bursts (as Jetty's `AdaptiveExecutionStrategy` and Go's scheduler,
//! `wakep` and `sysmon`, arrange theirs).
//!
//! - A worker that has answered looks for the next ready connection at
//!   once, without waiting (`epoll_wait` with no timeout), and serves it
//!   with its caches warm: under load, one worker goes from connection
//!   to connection as an event loop does, and no thread is woken.
//! - Only when nothing is ready does a worker wait in the poller, and
//!   only one at a time does (the *watcher*): an event wakes that one,
//!   never a crowd. The others park here.
//! - One parked worker, the *monitor*, looks every [`PERIOD`] while the
//!   server is busy. It joins the workers that serve when no worker has
//!   looked for work during a whole period (a slow handler holds the
//!   only one that would: so another ready connection waits at most
//!   about a period while a worker is free), or when every look found
//!   work during a whole period (a backlog) and fewer workers serve than
//!   there are CPUs. The next parked worker becomes the monitor.
//! - An idle server's monitor dozes; the first request after that wakes
//!   it.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::poller::{Look, Poller, Ready};

/// How often the monitor looks while the server is busy.
pub(crate) const PERIOD: Duration = Duration::from_micros(250);

/// How long an idle server's monitor sleeps between looks (it is woken
/// earlier by the first request).
const DOZE: Duration = Duration::from_millis(500);

/// The coordination of the workers' looking for work.
pub(crate) struct Rota {
    /// A worker waits in the poller (or is about to).
    watching: AtomicBool,
    /// Times a worker began to look for work, waiting or not.
    looks: AtomicU64,
    /// Looks that found nothing ready.
    dry: AtomicU64,
    /// Workers that are not parked here (serving, or looking).
    active: AtomicUsize,
    /// The monitor sleeps long: the next watcher that finds work wakes it.
    dozing: AtomicBool,
    parked: Mutex<Parked>,
    /// Where parked workers other than the monitor wait.
    bench: Condvar,
    /// Where the monitor waits.
    tower: Condvar,
    /// The most workers that serve at once because of a backlog: the
    /// CPUs, once the supervisor has counted them.
    cpus: AtomicUsize,
}

#[derive(Default)]
struct Parked {
    /// Workers parked, the monitor among them.
    count: usize,
    monitor: bool,
    closed: bool,
}

fn lock(m: &Mutex<Parked>) -> MutexGuard<'_, Parked> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Rota {
    pub(crate) fn new() -> Rota {
        Rota {
            watching: AtomicBool::new(false),
            looks: AtomicU64::new(0),
            dry: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            dozing: AtomicBool::new(false),
            parked: Mutex::new(Parked::default()),
            bench: Condvar::new(),
            tower: Condvar::new(),
            cpus: AtomicUsize::new(1),
        }
    }

    /// Sets the number of CPUs.
    pub(crate) fn set_cpus(&self, cpus: usize) {
        self.cpus.store(cpus.max(1), Ordering::Relaxed);
    }

    /// A worker begins (it is active until it parks).
    pub(crate) fn enter(&self) {
        self.active.fetch_add(1, Ordering::SeqCst);
    }

    /// The next thing for this worker to do; `None` once the server
    /// shuts down.
    pub(crate) fn find(&self, poller: &Poller) -> Option<Ready> {
        loop {
            self.looks.fetch_add(1, Ordering::Relaxed);
            match poller.look(false) {
                Look::Ready(r) => return Some(r),
                Look::Closed => return self.close(),
                Look::Nothing => {}
            }
            self.dry.fetch_add(1, Ordering::Relaxed);
            if !self.watching.swap(true, Ordering::AcqRel) {
                let got = poller.look(true);
                self.watching.store(false, Ordering::SeqCst);
                match got {
                    Look::Ready(r) => {
                        self.rouse();
                        return Some(r);
                    }
                    Look::Closed => return self.close(),
                    Look::Nothing => continue,
                }
            }
            if !self.park() {
                return None;
            }
        }
    }

    /// Wakes a dozing monitor: the server is busy again.
    fn rouse(&self) {
        // After `watching` went false (SeqCst both): a monitor about to
        // doze sees one or the other (see `monitor`).
        if self.dozing.load(Ordering::SeqCst) && self.dozing.swap(false, Ordering::SeqCst) {
            let _parked = lock(&self.parked);
            self.tower.notify_one();
        }
    }

    /// Wakes every parked worker to leave: the server shuts down.
    fn close(&self) -> Option<Ready> {
        lock(&self.parked).closed = true;
        self.bench.notify_all();
        self.tower.notify_all();
        None
    }

    /// Parks this worker until it is needed; `false` at shutdown.
    fn park(&self) -> bool {
        let mut p = lock(&self.parked);
        p.count += 1;
        self.active.fetch_sub(1, Ordering::SeqCst);
        let open = loop {
            if p.closed {
                break false;
            }
            if !p.monitor {
                p.monitor = true;
                let (q, open) = self.monitor(p);
                p = q;
                break open;
            }
            p = self.bench.wait(p).unwrap_or_else(PoisonError::into_inner);
        };
        p.count -= 1;
        self.active.fetch_add(1, Ordering::SeqCst);
        open
    }

    /// The monitor's watch: returns (its role handed on) when a worker is
    /// needed, or at shutdown (`false`).
    fn monitor<'a>(&self, mut p: MutexGuard<'a, Parked>) -> (MutexGuard<'a, Parked>, bool) {
        let mut seen = (
            self.looks.load(Ordering::Relaxed),
            self.dry.load(Ordering::Relaxed),
        );
        let mut period = PERIOD;
        loop {
            p = self
                .tower
                .wait_timeout(p, period)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            if p.closed {
                p.monitor = false;
                return (p, false);
            }
            let now = (
                self.looks.load(Ordering::Relaxed),
                self.dry.load(Ordering::Relaxed),
            );
            let watching = self.watching.load(Ordering::Acquire);
            let stalled = now.0 == seen.0 && !watching;
            let backlog = now.1 == seen.1
                && now.0 != seen.0
                && self.active.load(Ordering::SeqCst) < self.cpus.load(Ordering::Relaxed);
            let idle = now.0 == seen.0 && watching;
            seen = now;
            if stalled || backlog {
                p.monitor = false;
                if p.count > 1 {
                    // Another parked worker becomes the monitor.
                    self.bench.notify_one();
                }
                return (p, true);
            }
            period = PERIOD;
            if idle {
                self.dozing.store(true, Ordering::SeqCst);
                // The watcher that leaves now sees `dozing`, or this sees
                // that it left.
                if self.watching.load(Ordering::SeqCst) {
                    period = DOZE;
                } else {
                    self.dozing.store(false, Ordering::SeqCst);
                }
            }
        }
    }
}
