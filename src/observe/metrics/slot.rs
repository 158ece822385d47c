//! One worker's counters and what it is doing, in memory of its own.
//!
//! Only the worker bound to a slot writes its counters, so an increment is
//! a plain load and store (no locked instruction), and slots sit on cache
//! lines of their own: counting touches no line that another worker
//! writes. Readers (the status page, the watchdog) sum the slots.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

/// The per-worker counters, as indexes into [`Slot::counts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Count {
    /// Requests begun (handed to the handler); also the number of the
    /// worker's current request.
    Requests,
    /// Responses of class 1xx; 2xx to 5xx follow.
    Responses1xx,
    Responses2xx,
    Responses3xx,
    Responses4xx,
    Responses5xx,
    HandlerPanics,
    HandlerErrors,
    RequestsAborted,
    ConnectionsAccepted,
    ProtocolErrors,
    LimitRejections,
    TimeoutsRead,
    TimeoutsWrite,
    TimeoutsIdle,
}

/// How many [`Count`]s there are.
pub(crate) const COUNTS: usize = Count::TimeoutsIdle as usize + 1;

impl Count {
    /// The response counter for HTTP status `status` (below 200 is 1xx,
    /// 500 and above is 5xx).
    pub(crate) fn response(status: u16) -> Count {
        const CLASSES: [Count; 5] = [
            Count::Responses1xx,
            Count::Responses2xx,
            Count::Responses3xx,
            Count::Responses4xx,
            Count::Responses5xx,
        ];
        CLASSES[usize::from(status / 100).clamp(1, 5) - 1]
    }
}

/// The upper bounds of the request-duration histogram's buckets, in
/// seconds (the last bucket, above them all, is `+Inf`).
pub(crate) const BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// The same bounds in nanoseconds, for the worker's comparison.
const BUCKET_NS: [u64; 16] = [
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
];

/// What a worker is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum State {
    /// Waiting for a connection to serve.
    Idle = 0,
    /// Reading a request (or waiting a moment for the next one).
    Reading = 1,
    /// In the handler.
    Handler = 2,
    /// The handler returned; the rest of the response is being written.
    Writing = 3,
}

impl State {
    fn from_u8(v: u8) -> State {
        match v {
            1 => State::Reading,
            2 => State::Handler,
            3 => State::Writing,
            _ => State::Idle,
        }
    }
}

/// The longest method and URI kept of a request in flight.
const METHOD_MAX: usize = 16;
const URI_MAX: usize = 240;

/// The request a worker serves now, kept (under the slot's lock) while
/// tracking is on: for the status page, the watchdog and reports.
#[derive(Debug)]
pub(crate) struct Current {
    /// The connection being served, or -1. The watchdog may shut it down
    /// only while holding the lock and seeing `in_flight`: the worker
    /// clears that under the same lock before it can close the socket.
    pub(crate) fd: RawFd,
    pub(crate) in_flight: bool,
    /// Which of the worker's requests it is (its `Count::Requests`).
    pub(crate) generation: u64,
    /// When it began, in nanoseconds of the registry's clock.
    pub(crate) started_ns: u64,
    method: [u8; METHOD_MAX],
    method_len: usize,
    uri: [u8; URI_MAX],
    uri_len: usize,
}

impl Current {
    const NONE: Current = Current {
        fd: -1,
        in_flight: false,
        generation: 0,
        started_ns: 0,
        method: [0; METHOD_MAX],
        method_len: 0,
        uri: [0; URI_MAX],
        uri_len: 0,
    };

    /// Keeps (the start of) a request's method and URI.
    pub(crate) fn set_request(&mut self, method: &[u8], uri: &[u8]) {
        self.method_len = method.len().min(METHOD_MAX);
        self.method[..self.method_len].copy_from_slice(&method[..self.method_len]);
        self.uri_len = uri.len().min(URI_MAX);
        self.uri[..self.uri_len].copy_from_slice(&uri[..self.uri_len]);
    }

    pub(crate) fn method(&self) -> String {
        String::from_utf8_lossy(&self.method[..self.method_len]).into_owned()
    }

    /// The URI; one cut at the length kept ends in `...`.
    pub(crate) fn uri(&self) -> String {
        let mut uri = String::from_utf8_lossy(&self.uri[..self.uri_len]).into_owned();
        if self.uri_len == URI_MAX {
            uri.push_str("...");
        }
        uri
    }
}

/// One worker's slot. Aligned so that no two slots share a cache line
/// (128 bytes: adjacent-line prefetching pairs 64-byte lines).
#[repr(align(128))]
#[derive(Debug)]
pub(crate) struct Slot {
    state: AtomicU8,
    /// A worker thread was started on this slot.
    pub(crate) bound: AtomicBool,
    /// That thread's kernel id.
    pub(crate) tid: AtomicI32,
    counts: [AtomicU64; COUNTS],
    buckets: [AtomicU64; BUCKETS.len() + 1],
    duration_ns: AtomicU64,
    current: Mutex<Current>,
    /// The number of the request the watchdog cut off at the request
    /// timeout (0: none); written by the watchdog.
    cut: AtomicU64,
}

/// Adds `n` to a counter that only one thread writes: no locked
/// instruction. Readers see either value.
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
}

impl Slot {
    pub(crate) fn new() -> Slot {
        Slot {
            state: AtomicU8::new(State::Idle as u8),
            bound: AtomicBool::new(false),
            tid: AtomicI32::new(0),
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            duration_ns: AtomicU64::new(0),
            current: Mutex::new(Current::NONE),
            cut: AtomicU64::new(0),
        }
    }

    /// Marks request number `generation` as cut off (by the watchdog).
    pub(crate) fn cut(&self, generation: u64) {
        self.cut.store(generation, Relaxed);
    }

    /// Whether the worker's current request was cut off.
    pub(crate) fn was_cut(&self) -> bool {
        self.cut.load(Relaxed) == self.get(Count::Requests)
    }

    /// Counts `n` of `what`; only the slot's worker calls it.
    pub(crate) fn add(&self, what: Count, n: u64) {
        bump(&self.counts[what as usize], n);
    }

    pub(crate) fn get(&self, what: Count) -> u64 {
        self.counts[what as usize].load(Relaxed)
    }

    pub(crate) fn set_state(&self, state: State) {
        self.state.store(state as u8, Relaxed);
    }

    pub(crate) fn state(&self) -> State {
        State::from_u8(self.state.load(Relaxed))
    }

    /// Counts one request's duration.
    pub(crate) fn observe(&self, ns: u64) {
        let bucket = BUCKET_NS
            .iter()
            .position(|&bound| ns <= bound)
            .unwrap_or(BUCKET_NS.len());
        bump(&self.buckets[bucket], 1);
        bump(&self.duration_ns, ns);
    }

    /// The histogram's counts per bucket (not cumulative) and the sum.
    pub(crate) fn durations(&self) -> ([u64; BUCKETS.len() + 1], u64) {
        let counts = std::array::from_fn(|i| self.buckets[i].load(Relaxed));
        (counts, self.duration_ns.load(Relaxed))
    }

    pub(crate) fn current(&self) -> MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_do_not_share_cache_lines() {
        assert!(std::mem::align_of::<Slot>() >= 128);
        assert_eq!(std::mem::size_of::<Slot>() % 128, 0);
    }

    #[test]
    fn buckets_in_seconds_and_nanoseconds_agree() {
        for (s, ns) in BUCKETS.iter().zip(BUCKET_NS) {
            assert_eq!((s * 1e9).round() as u64, ns);
        }
        let slot = Slot::new();
        for ns in [1, 500_000, 500_001, 60_000_000_000, 60_000_000_001] {
            slot.observe(ns);
        }
        let (counts, sum) = slot.durations();
        assert_eq!(counts[0], 2);
        assert_eq!(counts[1], 1);
        assert_eq!(counts[15], 1);
        assert_eq!(counts[16], 1);
        assert_eq!(sum, 1 + 500_000 + 500_001 + 60_000_000_000 + 60_000_000_001);
    }

    #[test]
    fn response_classes() {
        let cases = [
            (100, Count::Responses1xx),
            (199, Count::Responses1xx),
            (200, Count::Responses2xx),
            (302, Count::Responses3xx),
            (404, Count::Responses4xx),
            (500, Count::Responses5xx),
            (999, Count::Responses5xx),
        ];
        for (status, want) in cases {
            assert_eq!(Count::response(status), want, "{status}");
        }
    }
}
