//! The server's figures: counted per worker, off the hot path's shared
//! cache lines, and summed by whoever reads them (the status page, the
//! status socket, a [`MetricsHandle`]).
//!
//! - [`slot`]: one worker's counters and current request, on cache lines
//!   of its own, written by that worker alone.
//! - [`worker`]: the hooks a worker calls as it serves, through the slot
//!   its thread is bound to.
//! - [`view`]: what the bookkeeping reads of a request.
//! - [`listen_queue`]: the kernel's accept queue of the listening socket.
//! - [`snapshot`]: the figures as the public API gives them.

pub(crate) mod listen_queue;
pub(crate) mod slot;
mod snapshot;
pub(crate) mod view;
pub(crate) mod worker;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::observe::access_log::AccessLog;
use listen_queue::ListenProbe;
use slot::{BUCKETS, COUNTS, Count, Slot, State};
use view::RequestView;

pub use snapshot::{
    CurrentRequest, Histogram, Metrics, MetricsHandle, Timeouts, WorkerState, WorkerStatus,
};

/// A request the server answers itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Page {
    /// The status page.
    Status,
    /// The ping path: `pong`.
    Ping,
}

/// The paths the server answers itself.
#[derive(Clone, Debug, Default)]
pub(crate) struct Pages {
    pub(crate) status: Option<String>,
    pub(crate) ping: Option<String>,
}

impl Pages {
    /// The page `view` asks for, if any.
    pub(crate) fn route(&self, view: &RequestView<'_>) -> Option<Page> {
        if self.status.as_deref().is_some_and(|p| view.path_is(p)) {
            Some(Page::Status)
        } else if self.ping.as_deref().is_some_and(|p| view.path_is(p)) {
            Some(Page::Ping)
        } else {
            None
        }
    }
}

/// What `Server::run` sets up for the figures.
#[derive(Debug)]
pub(crate) struct Setup {
    pub(crate) workers: usize,
    /// Keep each request's method and URI while it runs (for the status
    /// page's workers, the watchdog and reports).
    pub(crate) tracking: bool,
    /// A request timeout is set: a request may be cut off.
    pub(crate) cuts: bool,
    pub(crate) pages: Pages,
    pub(crate) access: Option<AccessLog>,
}

/// The figures of a running server.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) started: SystemTime,
    pub(crate) slots: Box<[Slot]>,
    pub(crate) tracking: bool,
    /// Something beyond the counters is done at the end of each request
    /// (the access log; a request may have been cut off): the worker takes
    /// the longer way.
    pub(crate) extras: bool,
    pub(crate) pages: Option<Pages>,
    pub(crate) access: Option<AccessLog>,
}

/// Counts the connections parked in the poller.
pub(crate) type ParkedProbe = Box<dyn Fn() -> usize + Send + Sync>;

/// Everything counted for one server.
pub(crate) struct Registry {
    run: OnceLock<Run>,
    /// Counted by the watchdog, which has no slot.
    pub(crate) slow_requests: AtomicU64,
    pub(crate) timeouts_request: AtomicU64,
    listen: Mutex<Option<ListenProbe>>,
    parked: Mutex<Option<ParkedProbe>>,
    handle_taken: AtomicBool,
    /// How many hand-overs led to this process.
    generation: AtomicU64,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    pub(crate) fn new() -> Arc<Registry> {
        Arc::new(Registry {
            run: OnceLock::new(),
            slow_requests: AtomicU64::new(0),
            timeouts_request: AtomicU64::new(0),
            listen: Mutex::new(None),
            parked: Mutex::new(None),
            handle_taken: AtomicBool::new(false),
            generation: AtomicU64::new(0),
        })
    }

    /// A handle for the program; from now on requests are tracked.
    pub(crate) fn handle(self: &Arc<Registry>) -> MetricsHandle {
        self.handle_taken.store(true, Relaxed);
        MetricsHandle {
            registry: Arc::clone(self),
        }
    }

    /// Records how many hand-overs led to this process.
    pub(crate) fn set_generation(&self, generation: u64) {
        self.generation.store(generation, Relaxed);
    }

    /// Whether a program holds a [`MetricsHandle`].
    pub(crate) fn handle_taken(&self) -> bool {
        self.handle_taken.load(Relaxed)
    }

    /// Sets the slots up, before the first worker starts.
    pub(crate) fn start(&self, setup: Setup) {
        let pages = setup.pages;
        let _ = self.run.set(Run {
            started: SystemTime::now(),
            slots: (0..setup.workers).map(|_| Slot::new()).collect(),
            tracking: setup.tracking,
            extras: setup.cuts || setup.access.is_some(),
            pages: (pages.status.is_some() || pages.ping.is_some()).then_some(pages),
            access: setup.access,
        });
    }

    pub(crate) fn run(&self) -> Option<&Run> {
        self.run.get()
    }

    /// The listening socket to measure (`None`: stop measuring, and close
    /// the duplicate).
    pub(crate) fn set_listener(&self, probe: Option<ListenProbe>) {
        *self.listen.lock().unwrap_or_else(|e| e.into_inner()) = probe;
    }

    /// How to count the connections parked in the poller.
    pub(crate) fn set_parked(&self, probe: Option<ParkedProbe>) {
        *self.parked.lock().unwrap_or_else(|e| e.into_inner()) = probe;
    }

    /// The figures now. `me`: the worker asking (answering the status
    /// page), which does not count as busy.
    pub(crate) fn snapshot(&self, me: Option<usize>) -> Metrics {
        let mut m = Metrics {
            slow_requests: self.slow_requests.load(Relaxed),
            request_duration: Histogram {
                bounds: BUCKETS.to_vec(),
                counts: vec![0; BUCKETS.len() + 1],
                ..Histogram::default()
            },
            ..Metrics::default()
        };
        m.timeouts.request = self.timeouts_request.load(Relaxed);
        if let Some(run) = self.run() {
            self.add_run(&mut m, run, me);
        }
        m
    }

    fn add_run(&self, m: &mut Metrics, run: &Run, me: Option<usize>) {
        let since = run.started.duration_since(UNIX_EPOCH).unwrap_or_default();
        m.start_time_seconds = since.as_secs_f64();
        m.generation = self.generation.load(Relaxed);
        m.workers_max = run.slots.len() as u64;
        let now = crate::sys::monotonic_ns();
        let mut counts = [0u64; COUNTS];
        for (i, slot) in run.slots.iter().enumerate() {
            if slot.bound.load(Relaxed) {
                add_slot(m, &mut counts, slot, me == Some(i));
                m.workers.push(worker_status(i, slot, now, run.tracking));
            }
        }
        set_totals(m, &counts);
        let parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
        m.connections_open += parked.as_ref().map_or(0, |count| count()) as u64;
        let listen = self.listen.lock().unwrap_or_else(|e| e.into_inner());
        m.listen_queue = listen.as_ref().and_then(ListenProbe::queued);
    }
}

/// Adds one worker's slot to the figures.
fn add_slot(m: &mut Metrics, counts: &mut [u64; COUNTS], slot: &Slot, me: bool) {
    m.workers_started += 1;
    let state = slot.state();
    if state != State::Idle {
        m.connections_open += 1;
        m.workers_busy += u64::from(!me);
    }
    for (i, total) in counts.iter_mut().enumerate() {
        *total += slot.get(COUNT_ORDER[i]);
    }
    let (buckets, sum_ns) = slot.durations();
    let h = &mut m.request_duration;
    for (total, n) in h.counts.iter_mut().zip(buckets) {
        *total += n;
        h.count += n;
    }
    h.sum_seconds += Duration::from_nanos(sum_ns).as_secs_f64();
}

/// Every counter, in the order of their indexes.
const COUNT_ORDER: [Count; COUNTS] = [
    Count::Requests,
    Count::Responses1xx,
    Count::Responses2xx,
    Count::Responses3xx,
    Count::Responses4xx,
    Count::Responses5xx,
    Count::HandlerPanics,
    Count::HandlerErrors,
    Count::RequestsAborted,
    Count::ConnectionsAccepted,
    Count::ProtocolErrors,
    Count::LimitRejections,
    Count::TimeoutsRead,
    Count::TimeoutsWrite,
    Count::TimeoutsIdle,
];

/// Puts the summed counters in their fields.
fn set_totals(m: &mut Metrics, c: &[u64; COUNTS]) {
    let at = |what: Count| c[what as usize];
    m.requests = at(Count::Requests);
    m.responses = [
        at(Count::Responses1xx),
        at(Count::Responses2xx),
        at(Count::Responses3xx),
        at(Count::Responses4xx),
        at(Count::Responses5xx),
    ];
    m.handler_panics = at(Count::HandlerPanics);
    m.handler_errors = at(Count::HandlerErrors);
    m.requests_aborted = at(Count::RequestsAborted);
    m.connections_accepted = at(Count::ConnectionsAccepted);
    m.protocol_errors = at(Count::ProtocolErrors);
    m.limit_rejections = at(Count::LimitRejections);
    m.timeouts.read = at(Count::TimeoutsRead);
    m.timeouts.write = at(Count::TimeoutsWrite);
    m.timeouts.idle = at(Count::TimeoutsIdle);
}

/// One worker's entry.
fn worker_status(i: usize, slot: &Slot, now: u64, tracking: bool) -> WorkerStatus {
    let state = match slot.state() {
        State::Idle => WorkerState::Idle,
        State::Reading => WorkerState::Reading,
        State::Handler => WorkerState::Handler,
        State::Writing => WorkerState::Writing,
    };
    let current = tracking.then(|| slot.current()).and_then(|c| {
        c.in_flight.then(|| CurrentRequest {
            method: c.method(),
            uri: c.uri(),
            elapsed: Duration::from_nanos(now.saturating_sub(c.started_ns)),
        })
    });
    WorkerStatus {
        worker: i,
        state,
        requests: slot.get(Count::Requests),
        current,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_order_matches_the_indexes() {
        for (i, c) in COUNT_ORDER.iter().enumerate() {
            assert_eq!(*c as usize, i);
        }
    }
}
