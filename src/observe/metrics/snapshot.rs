//! The figures as a program reads them: [`Metrics`], from a
//! [`MetricsHandle`].

use std::sync::Arc;
use std::time::Duration;

use super::Registry;

/// The server's figures at one moment; see [`MetricsHandle::snapshot`].
///
/// The fields carry the figures of the status page under the same names
/// (without the `fcgi_` prefix and the `_total` suffix of counters).
/// Counters start at zero when the server starts and only grow. Requests
/// to the status page and the ping path are not counted.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Metrics {
    /// When the server started, in seconds since the Unix epoch (0 before).
    pub start_time_seconds: f64,
    /// How many hand-overs (SIGUSR2, or recycling after `max_requests`)
    /// led to this process: 0 for one started otherwise.
    pub generation: u64,
    /// The most workers the pool may start.
    pub workers_max: u64,
    /// Workers started so far.
    pub workers_started: u64,
    /// Workers serving a connection now (reading a request, in the
    /// handler, or writing a response).
    pub workers_busy: u64,
    /// Connections accepted.
    pub connections_accepted: u64,
    /// Connections open now: being served, or kept open between requests.
    pub connections_open: u64,
    /// Requests handed to the handler.
    pub requests: u64,
    /// Responses by status class: `[1xx, 2xx, 3xx, 4xx, 5xx]`. A failed
    /// handler's 500 counts as 5xx; an aborted or timed-out request
    /// counts none.
    pub responses: [u64; 5],
    /// Handlers that panicked.
    pub handler_panics: u64,
    /// Handlers that returned an error.
    pub handler_errors: u64,
    /// Requests the web server aborted (`FCGI_ABORT_REQUEST`).
    pub requests_aborted: u64,
    /// Connections closed for breaking the protocol.
    pub protocol_errors: u64,
    /// Requests refused for going over a limit (params size or count,
    /// records).
    pub limit_rejections: u64,
    /// Connections closed at a timeout, by kind.
    pub timeouts: Timeouts,
    /// Requests that ran longer than the slow-request threshold.
    pub slow_requests: u64,
    /// How long requests took, from their params' arrival to their
    /// response handed to the connection.
    pub request_duration: Histogram,
    /// Connections waiting in the kernel's accept queue; `None` where the
    /// kernel does not tell, or before the server started.
    pub listen_queue: Option<u64>,
    /// One entry per worker started.
    pub workers: Vec<WorkerStatus>,
}

/// Connections closed at a timeout, by kind; see [`Metrics::timeouts`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// A request that did not arrive, or a body read that waited, past
    /// the read timeout.
    pub read: u64,
    /// A write that waited past the write timeout.
    pub write: u64,
    /// A kept-open connection idle past the idle timeout.
    pub idle: u64,
    /// A request that ran past the request timeout.
    pub request: u64,
}

/// A histogram of durations; see [`Metrics::request_duration`].
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Histogram {
    /// The upper bounds of the buckets, in seconds, ascending; a last
    /// bucket above them all (`+Inf`) follows.
    pub bounds: Vec<f64>,
    /// How many observations fell in each bucket (not cumulative); one
    /// more entry than `bounds`.
    pub counts: Vec<u64>,
    /// The sum of all observations, in seconds.
    pub sum_seconds: f64,
    /// How many observations there were.
    pub count: u64,
}

/// What one worker is doing; see [`Metrics::workers`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStatus {
    /// The worker's number, from 0 (its thread is `fcgi-worker-N`).
    pub worker: usize,
    /// What it is doing.
    pub state: WorkerState,
    /// Requests it has been handed.
    pub requests: u64,
    /// The request it serves now, when in the handler or writing its
    /// response.
    pub current: Option<CurrentRequest>,
}

/// What a worker is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerState {
    /// Waiting for a connection.
    Idle,
    /// Reading a request, or waiting a moment for the next one on a
    /// kept-open connection.
    Reading,
    /// Running the handler.
    Handler,
    /// Writing the end of a response after the handler returned.
    Writing,
}

impl WorkerState {
    /// The state's name on the status page: `idle`, `reading`, `handler`,
    /// `writing`.
    pub fn name(self) -> &'static str {
        match self {
            WorkerState::Idle => "idle",
            WorkerState::Reading => "reading",
            WorkerState::Handler => "handler",
            WorkerState::Writing => "writing",
        }
    }
}

/// A request in flight; see [`WorkerStatus::current`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CurrentRequest {
    /// `REQUEST_METHOD`.
    pub method: String,
    /// `REQUEST_URI` (its first 240 bytes, then `...`).
    pub uri: String,
    /// How long it has been running.
    pub elapsed: Duration,
}

/// Reads a server's figures from any thread: for programs that export
/// them elsewhere than the status page. See [`Server::metrics_handle`](crate::Server::metrics_handle).
///
/// # Examples
///
/// ```no_run
/// use std::io::Write;
///
/// let server = fcgi_server::Server::new(|_req, res| res.write_all(b"hi\n"));
/// let metrics = server.metrics_handle();
/// std::thread::spawn(move || loop {
///     let m = metrics.snapshot();
///     eprintln!("{} requests, {} workers busy", m.requests, m.workers_busy);
///     std::thread::sleep(std::time::Duration::from_secs(60));
/// });
/// server.run().unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct MetricsHandle {
    pub(crate) registry: Arc<Registry>,
}

impl MetricsHandle {
    /// The figures now. Before the server runs, all are zero.
    pub fn snapshot(&self) -> Metrics {
        self.registry.snapshot(None)
    }
}
