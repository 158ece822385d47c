//! A handler's panic, reported once as a server event: its message, its
//! location, and the request's method and URI.
//!
//! Rust's default panic hook prints a paragraph per panic, and with
//! `RUST_BACKTRACE` set it resolves a whole backtrace to names, loading
//! the program's debug info for good (tens of MB, on the first panic).
//! On the server's own threads the hook installed here keeps the panic's
//! location instead, for the report, and with `RUST_BACKTRACE` set (and
//! not `0`) a backtrace as return addresses, each as `object+offset`:
//! nothing to load, nothing kept. `addr2line -Cfpi -e OBJECT OFFSET...`
//! names them, on any machine with the same binary. Panics on other
//! threads go to the hook that was there before.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::panic::{self, PanicHookInfo};
use std::sync::Once;

use crate::observe::log::{self, Field, Level};
use crate::sys;

thread_local! {
    /// Whether this thread's panics are kept for a report.
    static CAPTURE: Cell<bool> = const { Cell::new(false) };
    /// The last panic kept, until it is reported.
    static CAUGHT: RefCell<Option<Caught>> = const { RefCell::new(None) };
}

/// What the hook keeps of a panic.
#[derive(Debug)]
struct Caught {
    location: String,
    backtrace: Option<String>,
}

/// Installs the hook, once per process, around the one there before.
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CAPTURE.try_with(Cell::get).unwrap_or(false) {
                let _ = CAUGHT.try_with(|c| c.replace(Some(caught(info))));
            } else {
                previous(info);
            }
        }));
    });
}

/// Keeps the calling thread's panics for a report until the result drops.
pub(crate) fn capture() -> Capturing {
    Capturing(CAPTURE.replace(true))
}

/// A thread whose panics are reported by the server; see [`capture`].
#[derive(Debug)]
pub(crate) struct Capturing(bool);

impl Drop for Capturing {
    fn drop(&mut self) {
        CAPTURE.set(self.0);
    }
}

fn caught(info: &PanicHookInfo<'_>) -> Caught {
    Caught {
        location: info
            .location()
            .map_or_else(|| "unknown".to_owned(), ToString::to_string),
        backtrace: backtrace_wanted().then(backtrace),
    }
}

fn backtrace_wanted() -> bool {
    std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0")
}

/// The return addresses on the stack as `object+0xoffset`, innermost
/// first (the first few are the panic machinery's).
fn backtrace() -> String {
    let mut ips = [0usize; 48];
    let n = sys::backtrace(&mut ips);
    let mut out = String::with_capacity(n * 24);
    for &ip in ips[..n].iter().filter(|&&ip| ip != 0) {
        // A return address is past its call: name the call's byte.
        let ip = ip - 1;
        if !out.is_empty() {
            out.push(' ');
        }
        match sys::object_of(ip) {
            Some((path, base)) => {
                let name = path.file_name().unwrap_or(path.as_os_str());
                let _ = write!(out, "{}+{:#x}", name.to_string_lossy(), ip - base);
            }
            None => {
                let _ = write!(out, "{ip:#x}");
            }
        }
    }
    out
}

/// Reports a handler's panic with message `msg`, with what the hook kept.
pub(crate) fn report(msg: &str, method: &[u8], uri: &[u8]) {
    let caught = CAUGHT.take();
    let location = caught.as_ref().map_or("unknown", |c| c.location.as_str());
    let (method, uri) = (
        String::from_utf8_lossy(method),
        String::from_utf8_lossy(uri),
    );
    let mut fields: Vec<Field<'_>> =
        vec![("method", &method), ("uri", &uri), ("location", &location)];
    let backtrace = caught.as_ref().and_then(|c| c.backtrace.as_deref());
    if let Some(bt) = &backtrace {
        fields.push(("backtrace", bt));
    }
    log::event(Level::Error, "handler_panic", &fields, msg);
}

/// Reports a panic in the server's own code while it served a connection.
pub(crate) fn report_internal() {
    let caught = CAUGHT.take();
    let location = caught.as_ref().map_or("unknown", |c| c.location.as_str());
    let msg = "internal error while serving a connection; closed it";
    log::event(
        Level::Error,
        "internal_error",
        &[("location", &location)],
        msg,
    );
}
