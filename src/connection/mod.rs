//! The connection layer: one connection's records, below the handler.
//!
//! - [`transport`]: where the bytes come from and go to, and the read buffer.
//! - [`dispatch`]: what each record means; the one place that decides what
//!   may arrive while a request is active and what the protocol answers.
//! - [`gather`]: reading a request until its params are complete, or until
//!   the peer stalls and the connection is set aside.
//! - [`body`]: the request's input, read as the handler reads it: the
//!   body (`FCGI_STDIN`), then a filter's data stream (`FCGI_DATA`).
//! - [`early`]: data stream bytes that came before the body ended, kept
//!   (bounded) until the handler reads them.
//! - [`output`]: the response's records (`FCGI_STDOUT`, `FCGI_STDERR`,
//!   `FCGI_END_REQUEST`), framed in the worker's buffers.
//! - [`params`]: the params index, built in place.
//!
//! The life of a connection, which strings these together around the
//! handler, is drawn and coded in the `serve` module, above this one.

pub(crate) mod body;
pub(crate) mod dispatch;
pub(crate) mod early;
pub(crate) mod gather;
pub(crate) mod output;
pub(crate) mod params;
pub(crate) mod pipe;
pub(crate) mod transport;

use std::fmt;
use std::io;
use std::sync::OnceLock;
use std::time::Duration;

use crate::protocol::{self, Role};

pub(crate) use dispatch::Active;
pub(crate) use gather::Resume;
pub(crate) use transport::{ReadBuf, Transport, Wait};

/// The roles the application plays, as a set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Roles(u8);

impl Roles {
    /// The responder role alone, the default.
    pub(crate) const RESPONDER: Roles = Roles(1);

    fn bit(role: Role) -> u8 {
        1 << (u16::from(role) - 1)
    }

    /// The set of `roles`.
    pub(crate) fn of(roles: &[Role]) -> Roles {
        Roles(roles.iter().fold(0, |set, &r| set | Roles::bit(r)))
    }

    /// Whether `role` is in the set.
    pub(crate) fn plays(self, role: Role) -> bool {
        self.0 & Roles::bit(role) != 0
    }
}

/// The settings the connection obeys.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// The pool's size; `None`: [`default_workers`].
    pub(crate) workers: Option<usize>,
    pub(crate) roles: Roles,
    /// Limits on one request before its handler runs.
    pub(crate) max_params_bytes: usize,
    pub(crate) max_params: usize,
    pub(crate) max_records: u32,
    /// How long a request may take to arrive (its params); also the
    /// longest wait for one read of its body.
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) root_mount: bool,
    pub(crate) debug: bool,
    /// Requests served at once on one connection; 0 or 1: one at a time.
    pub(crate) multiplex: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            workers: None,
            roles: Roles::RESPONDER,
            max_params_bytes: 1 << 20,
            max_params: 1000,
            max_records: 10_000,
            read_timeout: Some(Duration::from_secs(60)),
            root_mount: false,
            debug: false,
            multiplex: 0,
        }
    }
}

impl Config {
    /// The number of workers.
    pub(crate) fn workers(&self) -> usize {
        self.workers.unwrap_or_else(default_workers)
    }
}

/// Eight workers per CPU this process may run on (its affinity), at least
/// 8 and at most 128; counted once, with one system call (a process
/// started for one request answers it sooner without reading the cgroup
/// files that [`cpus`] reads).
///
/// Workers start only as load needs them, so the limit costs nothing
/// until connections come. It is high because a worker that waits a
/// moment on its connection for the next request serves a busy kept-open
/// connection best, and that is possible for as many connections as there
/// are workers: with 16 kept-open connections on 2 CPUs, 8 workers gave
/// the slowest 1% of requests 3.2 to 3.6 times the latency of one thread
/// per connection, 16 workers 1.5 to 1.7 times (docs/performance.md).
pub(crate) fn default_workers() -> usize {
    static AFFINITY: OnceLock<usize> = OnceLock::new();
    let cpus = *AFFINITY.get_or_init(|| crate::sys::affinity_cpus().unwrap_or(2));
    (cpus * 8).clamp(8, 128)
}

/// The CPUs this process may use (its affinity, and its cgroup's CPU
/// quota), counted once, after the first worker has started; 2 where that
/// cannot be read.
pub(crate) fn cpus() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// What the connection asks of the server around it.
pub(crate) trait Control {
    /// Whether the server is shutting down: a kept-open connection is then
    /// closed after its current request.
    fn stopping(&self) -> bool;
    /// Called once a request has been answered.
    fn request_done(&self);
}

/// No server around: never stopping, nothing counted.
pub(crate) struct NoControl;

impl Control for NoControl {
    fn stopping(&self) -> bool {
        false
    }
    fn request_done(&self) {}
}

/// A connection-level failure: the connection is closed and the reason
/// logged once.
#[derive(Debug)]
pub(crate) enum Fault {
    /// The peer closed the connection or the socket failed.
    Io(io::Error),
    /// The peer broke the protocol.
    Protocol(String),
    /// The request went over a limit; it was answered with an error, and
    /// the connection is closed after a drain.
    Limit(String),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Io(e) => write!(f, "{e}"),
            Fault::Protocol(msg) => write!(f, "protocol error: {msg}"),
            Fault::Limit(msg) => f.write_str(msg),
        }
    }
}

impl Fault {
    /// The error a reader of the request body sees for this fault: the
    /// same kind for an I/O failure, `InvalidData` for the others.
    pub(crate) fn to_io_error(&self) -> io::Error {
        let kind = match self {
            Fault::Io(e) => e.kind(),
            Fault::Protocol(_) | Fault::Limit(_) => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, self.to_string())
    }
}

impl From<Fault> for io::Error {
    fn from(fault: Fault) -> io::Error {
        match fault {
            Fault::Io(e) => e,
            other => other.to_io_error(),
        }
    }
}

impl From<io::Error> for Fault {
    fn from(e: io::Error) -> Fault {
        Fault::Io(e)
    }
}

impl From<protocol::Error> for Fault {
    fn from(e: protocol::Error) -> Fault {
        Fault::Protocol(e.to_string())
    }
}

/// The error of a body read or a response write after the web server
/// aborted the request.
pub(crate) fn aborted_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "request aborted by the web server",
    )
}

/// A worker's buffers, reused for every request it serves. They carry no
/// state from one connection served to the next: what
/// a parked connection had buffered travels with it, as a [`Resume`].
#[derive(Debug)]
pub(crate) struct Buffers {
    pub(crate) rbuf: ReadBuf,
    /// The params stream of the request, as received.
    pub(crate) params: Vec<u8>,
    /// Where each pair sits in `params`.
    pub(crate) index: Vec<params::Span>,
    /// A filter's data stream bytes that came before its body ended.
    pub(crate) early: early::EarlyData,
    pub(crate) out: output::OutBufs,
    /// Response header lines, set by the handler, not yet placed.
    pub(crate) head: Vec<u8>,
    /// Where the request's method, URI and paths are in `index`.
    pub(crate) found: params::PathParams,
}

impl Buffers {
    pub(crate) fn new() -> Buffers {
        Buffers {
            rbuf: ReadBuf::new(),
            params: Vec::with_capacity(4096),
            index: Vec::with_capacity(64),
            early: early::EarlyData::default(),
            out: output::OutBufs::new(),
            head: Vec::with_capacity(1024),
            found: params::PathParams::default(),
        }
    }

    /// Gives back memory that one unusually large request made the
    /// buffers grow to.
    pub(crate) fn trim(&mut self) {
        const KEEP: usize = 64 * 1024;
        if self.params.capacity() > KEEP {
            self.params = Vec::with_capacity(4096);
        }
        if self.head.capacity() > KEEP {
            self.head = Vec::with_capacity(1024);
        }
        self.early.trim(KEEP);
        self.out.trim(KEEP);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_a_set() {
        let set = Roles::of(&[Role::Responder, Role::Filter]);
        assert!(set.plays(Role::Responder) && set.plays(Role::Filter));
        assert!(!set.plays(Role::Authorizer));
        assert!(Roles::RESPONDER.plays(Role::Responder));
        assert!(!Roles::of(&[]).plays(Role::Responder));
    }
}
