//! The hooks a worker calls as it serves. Each worker thread is bound to
//! its slot (a thread-local, looked up once for the worker's life: see
//! [`with_tally`]), so that the connection code passes nothing around
//! but a [`Tally`]; on a thread that is not bound (CGI mode, tests of the
//! connection loop), there is none and nothing is counted.
//!
//! A request's life, as the hooks see it: [`serving`] (a connection taken:
//! `reading`), [`Tally::begin`] (params complete: `handler`, or a page the
//! server answers itself), [`Tally::finish`] (the handler returned:
//! counted, `writing`, one access-log line), [`Tally::ended`] (`reading`
//! again), and the end of [`Serving`] (`idle`).

use std::cell::RefCell;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime};

use super::slot::{Count, Slot, State};
use super::view::RequestView;
use super::{Metrics, Page, Registry, Run};
use crate::observe::access_log::Entry;
use crate::sys;

thread_local! {
    static BOUND: RefCell<Option<Bound>> = const { RefCell::new(None) };
}

/// A worker thread's binding to its slot. Only ever borrowed shared, so
/// that hooks may nest (the handler asking whether it was cut off while
/// its connection is served).
struct Bound {
    registry: Arc<Registry>,
    index: usize,
    /// The worker's own buffer for access-log lines.
    line: RefCell<String>,
}

/// Calls `f` with the calling thread's slot, if it is bound.
fn with<R>(f: impl FnOnce(&Run, &Slot) -> R) -> Option<R> {
    with_tally(|tally| tally.map(|t| f(t.run, t.slot)))
}

/// Binds the calling thread to slot `index` for as long as the result
/// lives.
pub(crate) fn bind(registry: &Arc<Registry>, index: usize) -> Binding {
    if let Some(slot) = registry.run().and_then(|run| run.slots.get(index)) {
        slot.tid.store(sys::thread_id(), Relaxed);
        slot.bound.store(true, Relaxed);
    }
    BOUND.set(Some(Bound {
        registry: Arc::clone(registry),
        index,
        line: RefCell::new(String::with_capacity(512)),
    }));
    Binding(crate::observe::panic_report::capture())
}

/// Keeps a worker thread bound to its slot (and its panics reported by
/// the server); see [`bind`].
#[derive(Debug)]
pub(crate) struct Binding(#[allow(dead_code)] crate::observe::panic_report::Capturing);

impl Drop for Binding {
    fn drop(&mut self) {
        BOUND.set(None);
    }
}

/// A worker's slot, as the connection code counts through it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tally<'a> {
    run: &'a Run,
    slot: &'a Slot,
    line: &'a RefCell<String>,
}

/// Calls `f` with the calling worker's [`Tally`] (`None` on a thread that
/// is not a worker's).
pub(crate) fn with_tally<R>(f: impl FnOnce(Option<Tally<'_>>) -> R) -> R {
    BOUND.with_borrow(|bound| {
        let tally = bound.as_ref().and_then(|b| {
            let run = b.registry.run()?;
            let slot = run.slots.get(b.index)?;
            Some(Tally {
                run,
                slot,
                line: &b.line,
            })
        });
        f(tally)
    })
}

/// Counts `n` of `what` in the calling worker's slot.
pub(crate) fn count(what: Count, n: u64) {
    with(|_, slot| slot.add(what, n));
}

/// Marks the worker of `tally` as serving the connection `fd` until the
/// result drops.
pub(crate) fn serving(tally: Option<Tally<'_>>, fd: RawFd) -> Serving<'_> {
    if let Some(t) = tally {
        t.slot.set_state(State::Reading);
        if t.run.tracking {
            t.slot.current().fd = fd;
        }
    }
    Serving(tally)
}

/// A worker serving a connection; see [`serving`].
#[derive(Debug)]
pub(crate) struct Serving<'a>(Option<Tally<'a>>);

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.0 {
            if t.run.tracking {
                let mut current = t.slot.current();
                current.fd = -1;
                current.in_flight = false;
            }
            t.slot.set_state(State::Idle);
        }
    }
}

/// What [`Tally::begin`] decided for a request.
#[derive(Debug)]
pub(crate) enum Begun {
    /// A page the server answers itself; not counted.
    Page(Page),
    /// A request for the handler, counted from then (nanoseconds on the
    /// monotonic clock).
    Counted(u64),
    /// Not on a worker: nothing is counted.
    Unbound,
}

/// How a handler ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    None,
    Error,
    Panic,
}

/// A request whose handler returned, as [`Tally::finish`] counts it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Finished {
    /// The status the client gets.
    pub(crate) status: u16,
    pub(crate) failure: Failure,
    /// The web server aborted the request.
    pub(crate) aborted: bool,
}

/// What the access log adds about a finished request.
#[derive(Debug)]
pub(crate) struct Detail<'v> {
    pub(crate) view: RequestView<'v>,
    /// Request body bytes read, response body bytes written.
    pub(crate) bytes: (u64, u64),
}

impl Tally<'_> {
    /// A request's params are complete: a page the server answers, or a
    /// request for the handler (then counted, and kept while tracking).
    /// `view` is called only when the request is looked at (pages,
    /// tracking).
    #[inline]
    pub(crate) fn begin<'v>(self, view: impl Fn() -> RequestView<'v>) -> Begun {
        if let Some(page) = self.run.pages.as_ref().and_then(|p| p.route(&view())) {
            return Begun::Page(page);
        }
        let started_ns = sys::monotonic_ns();
        self.slot.add(Count::Requests, 1);
        self.slot.set_state(State::Handler);
        if self.run.tracking {
            track(self.slot, &view(), started_ns);
        }
        Begun::Counted(started_ns)
    }

    /// Counts a request whose handler returned (before the end of its
    /// response is written, so that a client that has the response finds
    /// it counted), and writes its access-log line.
    /// `detail` is called only for the access log.
    #[inline]
    pub(crate) fn finish<'v>(
        self,
        started_ns: u64,
        done: Finished,
        detail: impl FnOnce() -> Detail<'v>,
    ) {
        let ns = sys::monotonic_ns().saturating_sub(started_ns);
        self.slot.observe(ns);
        if self.run.tracking {
            // From now on the watchdog leaves the request alone.
            self.slot.current().in_flight = false;
        }
        if done.failure == Failure::None && !done.aborted && !self.run.extras {
            self.slot.add(Count::response(done.status), 1);
        } else {
            let detail = self.run.access.is_some().then(detail);
            finish_rest(self, done, ns, detail);
        }
        self.slot.set_state(State::Writing);
    }

    /// The request's response is written: the worker reads again.
    #[inline]
    pub(crate) fn ended(self) {
        self.slot.set_state(State::Reading);
    }
}

/// Keeps the request's method and URI while it runs.
#[cold]
fn track(slot: &Slot, view: &RequestView<'_>, started_ns: u64) {
    let method = view.method();
    let mut current = slot.current();
    current.in_flight = true;
    current.generation = slot.get(Count::Requests);
    current.started_ns = started_ns;
    current.set_request(method, view.uri());
}

/// [`Tally::finish`] for a request that failed, was aborted or may have
/// been cut off, or when the access log is on.
#[cold]
fn finish_rest(tally: Tally<'_>, done: Finished, ns: u64, detail: Option<Detail<'_>>) {
    let slot = tally.slot;
    let outcome = outcome(slot.was_cut(), done);
    if matches!(outcome, "ok" | "error" | "panic") {
        slot.add(Count::response(done.status), 1);
    }
    match done.failure {
        Failure::Panic => slot.add(Count::HandlerPanics, 1),
        Failure::Error => slot.add(Count::HandlerErrors, 1),
        Failure::None => {}
    }
    if done.aborted {
        slot.add(Count::RequestsAborted, 1);
    }
    if let (Some(log), Some(detail)) = (&tally.run.access, detail) {
        let entry = entry(done, &detail, (ns, outcome));
        log.write(&mut tally.line.borrow_mut(), &entry);
    }
}

/// The word for how a request ended, as the access log gives it.
fn outcome(cut: bool, done: Finished) -> &'static str {
    match done.failure {
        _ if cut => "timeout",
        _ if done.aborted => "aborted",
        Failure::Panic => "panic",
        Failure::Error => "error",
        Failure::None => "ok",
    }
}

fn entry<'a>(done: Finished, detail: &Detail<'a>, (ns, outcome): (u64, &'static str)) -> Entry<'a> {
    let duration = Duration::from_nanos(ns);
    Entry {
        time: SystemTime::now() - duration,
        remote: detail.view.remote_addr(),
        method: detail.view.method(),
        uri: detail.view.uri(),
        status: done.status,
        bytes: detail.bytes,
        duration,
        outcome,
    }
}

/// Whether the calling worker's current request was cut off at the
/// request timeout.
pub(crate) fn cut_off() -> bool {
    with(|_, slot| slot.was_cut()).unwrap_or(false)
}

/// The figures, as the worker answering the status page sees them (it
/// does not count itself busy).
pub(crate) fn snapshot_here() -> Metrics {
    BOUND
        .with_borrow(|b| b.as_ref().map(|b| b.registry.snapshot(Some(b.index))))
        .unwrap_or_default()
}
