//! Server events that are both counted and logged: a connection closed on
//! a fault, connections closed at a timeout, a refused peer.

use std::io;
use std::time::Duration;

use crate::connection::Fault;
use crate::observe::log::{self, Level};
use crate::observe::metrics::slot::Count;
use crate::observe::metrics::worker::count;
use crate::sys::WRITE_TIMED_OUT;

/// A connection closed on `fault`: counted by kind, and logged unless the
/// peer just went away (nginx closes its upstream connection when a
/// client aborts: routine).
pub(crate) fn connection_fault(fault: &Fault) {
    use io::ErrorKind::{BrokenPipe, ConnectionReset, TimedOut, UnexpectedEof};
    let msg = format!("closing connection: {fault}");
    match fault {
        Fault::Io(e) if matches!(e.kind(), BrokenPipe | ConnectionReset | UnexpectedEof) => {}
        Fault::Io(e) if e.kind() == TimedOut => {
            let write = e.to_string() == WRITE_TIMED_OUT;
            let (what, kind) = if write {
                (Count::TimeoutsWrite, "write")
            } else {
                (Count::TimeoutsRead, "read")
            };
            count(what, 1);
            log::event(Level::Warn, "timeout", &[("kind", &kind)], &msg);
        }
        Fault::Io(_) => log::warn("connection_error", &msg),
        Fault::Protocol(_) => {
            count(Count::ProtocolErrors, 1);
            log::warn("protocol_error", &msg);
        }
        Fault::Limit(_) => {
            count(Count::LimitRejections, 1);
            log::warn("limit", &msg);
        }
    }
}

/// The poller closed `idle` kept-open connections past the idle timeout
/// (routine: counted only) and `stalled` ones whose request did not arrive
/// whole within the read timeout (counted and logged).
pub(crate) fn swept(idle: usize, stalled: usize, read_timeout: Option<Duration>) {
    count(Count::TimeoutsIdle, idle as u64);
    if stalled == 0 {
        return;
    }
    count(Count::TimeoutsRead, stalled as u64);
    let limit = read_timeout.unwrap_or_default();
    let msg = format!(
        "closed {stalled} connection(s) whose request did not arrive whole \
         within the read timeout of {limit:?}"
    );
    log::event(
        Level::Warn,
        "timeout",
        &[("kind", &"read"), ("connections", &stalled)],
        &msg,
    );
}

/// A handler returned `e`: counted as a write timeout when it is one (the
/// handler passed on the error of a write that waited too long).
pub(crate) fn handler_error(e: &io::Error) {
    if e.kind() == io::ErrorKind::TimedOut && e.to_string() == WRITE_TIMED_OUT {
        count(Count::TimeoutsWrite, 1);
    }
}

/// A TCP peer refused by `FCGI_WEB_SERVER_ADDRS`.
pub(crate) fn refused_peer(who: &str) {
    let msg = format!("refused a connection from {who}: not in FCGI_WEB_SERVER_ADDRS");
    log::event(Level::Warn, "refused_peer", &[("peer", &who)], &msg);
}

/// A connection accepted.
pub(crate) fn accepted() {
    count(Count::ConnectionsAccepted, 1);
}
