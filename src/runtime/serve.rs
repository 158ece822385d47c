//! Serving one connection: its life from the first byte to the close, as
//! one worker sees it, around the handler.
//!
//! ```text
//!              accepted
//!                 |
//!                 v
//!    +-------> Idle ----- nothing to read ------------> Outcome::Park(Resume::Idle)
//!    |            |                                      (waits in epoll; a worker
//!    |            | FCGI_BEGIN_REQUEST                    resumes it in Idle)
//!    |            v
//!    |        Gathering -- the peer stalls -----------> Outcome::Park(Resume::Stalled)
//!    |            |                                      (resumed in Gathering; closed
//!    |            | empty FCGI_PARAMS                     past the read timeout)
//!    |            v
//!    |        Handling: the handler reads FCGI_STDIN (BodyReader), then
//!    |            |     a filter's FCGI_DATA; writes FCGI_STDOUT/FCGI_STDERR
//!    |            |     (Response); a kept-open filter's unread input is
//!    |            |     read and dropped
//!    |            | FCGI_END_REQUEST sent
//!    |            v
//!    +------- Ended ---- not kept open, cut off, -------> Outcome::Close { drain }
//!   kept open            or the server is stopping
//! ```
//!
//! The states, in the code: `Idle` and `Gathering` are
//! [`gather`](crate::connection::gather::gather), started from a
//! [`Resume`]; `Handling` is [`handle`]; `Ended` is what it returns.
//!
//! In `Handling`, a request for the status page or the ping path is
//! answered by the server instead of the handler; any other is counted
//! ([`metrics::begin`] and [`metrics::finish`], before the end of its
//! response leaves) and a handler's panic is reported once.
//!
//! Every other way out is a [`Fault`], which closes the connection (the
//! pool logs it once):
//! - `Fault::Io`: the peer closed in the middle of a record, or the socket
//!   failed (Gathering, Handling); a request that did not arrive whole
//!   within the read timeout (Gathering).
//! - `Fault::Protocol`: a version other than 1, a malformed body or
//!   name-value pair, a record type only applications send (the record
//!   dispatch, in any state).
//! - `Fault::Limit`: params over `max_params_bytes` or `max_params`,
//!   records over `max_records` (Gathering); answered with 431 or 400
//!   before the close.

use std::cell::Cell;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::connection::body::{BodyReader, Input};
use crate::connection::gather;
use crate::connection::gather::{Gathered, gather};
use crate::connection::pipe::{Pipe, PipeReader};
use crate::connection::{Active, Buffers, Config, Control, Fault, Resume, Transport};
use crate::handler::request::Request;
use crate::handler::response::Response;
use crate::mux::{Job, Mux};
use crate::observe::metrics::view::RequestView;
use crate::observe::metrics::worker::{self as metrics, Begun, Detail, Failure, Finished, Tally};
use crate::observe::panic_report;
use crate::status;

/// The request handler, as a worker calls it.
pub(crate) type Handler =
    dyn Fn(&mut Request<'_>, &mut Response<'_>) -> io::Result<()> + Send + Sync;

/// What the worker does with the connection after [`serve`] returns.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Nothing to read: let it wait in epoll, with where to resume.
    Park(Resume),
    /// Close it. `drain` asks for a bounded wait for the peer's end of
    /// stream first (its request body may still be on the way).
    Close { drain: bool },
}

/// Serves requests on one connection until it should be parked or closed.
///
/// `ctl.stopping()` is checked between requests: once it is true, a
/// keep-conn connection is closed after its current request instead of
/// waiting for the next one.
pub(crate) fn serve(
    io: &dyn Transport,
    bufs: &mut Buffers,
    cfg: &Config,
    handler: &Handler,
    ctl: &dyn Control,
    resume: Resume,
    tally: Option<Tally<'_>>,
) -> Result<Outcome, Fault> {
    // A connection never inherits bytes that another one left behind.
    bufs.rbuf.clear();
    let mut resume = Some(resume);
    loop {
        let from = resume.take().unwrap_or(Resume::NEW);
        let active = match gather(io, bufs, cfg, from)? {
            Gathered::Request(active) => active,
            Gathered::Paused(r) if !ctl.stopping() => return Ok(Outcome::Park(r)),
            Gathered::Paused(_) | Gathered::Close => {
                return Ok(Outcome::Close { drain: false });
            }
        };
        let ended = handle(io, bufs, (cfg, handler), active, tally);
        ctl.request_done();
        tally.inspect(|t| t.ended());
        let ended = ended?;
        if !active.keep_conn || !ended.clean {
            return Ok(Outcome::Close {
                drain: !ended.input_done,
            });
        }
        if ctl.stopping() {
            return Ok(Outcome::Close { drain: false });
        }
        if bufs.rbuf.data().is_empty() {
            // The web server sends the next request once it has this
            // answer; reading at once would mostly find nothing. A byte
            // that comes after the last read leads the poller to the
            // connection again.
            return Ok(Outcome::Park(Resume::NEW));
        }
    }
}

/// How a request ended.
struct Ended {
    /// The connection is in a state to serve another request.
    clean: bool,
    /// The request's input (body, and a filter's data) was read to its end.
    input_done: bool,
}

/// Calls the handler for one request and ends the request.
fn handle(
    io: &dyn Transport,
    bufs: &mut Buffers,
    (cfg, handler): (&Config, &Handler),
    active: Active,
    tally: Option<Tally<'_>>,
) -> Result<Ended, Fault> {
    let aborted = Cell::new(false);
    let Buffers {
        rbuf,
        params,
        index,
        early,
        out,
        head,
        found,
    } = bufs;
    // Built only where the bookkeeping reads the request.
    let view = || RequestView::new(params, index, found);
    let body = BodyReader::new(io, rbuf, early, cfg, active, &aborted);
    let mut req = Request::new(params, index, Input::Socket(body), active);
    let mut res = Response::new(io, out, head, active.id, &aborted);
    let failure = call(handler, (&mut req, &mut res), view, tally, &aborted);
    let Input::Socket(body) = &mut req.body else {
        unreachable!("the body was made from the socket above")
    };
    body.drop_unread_filter_input();
    let fault = body.take_fault();
    let ended = res.end(failure.as_deref(), cfg.debug);
    body.skip_arrived();
    // A failure to read the request explains a failure to answer it.
    if let Some(f) = fault {
        return Err(f);
    }
    Ok(Ended {
        clean: ended?,
        input_done: body.is_done(),
    })
}

/// Runs a request of a multiplexed connection on this worker's buffers
/// (see `crate::mux`): its params indexed as a request's on any
/// connection, its input from its pipe, its output written whole record
/// batches at a time between the other requests'.
pub(crate) fn run_job(
    job: Job,
    bufs: &mut Buffers,
    (cfg, handler): (&Config, &Handler),
    tally: Option<Tally<'_>>,
) {
    let Job { mux, ready } = job;
    let id = ready.active.id;
    let saved = std::mem::replace(&mut bufs.params, ready.params);
    let ran = run_ready(&mux, &ready.pipe, bufs, (cfg, handler), ready.active, tally);
    bufs.params = saved;
    match ran {
        Ok(()) => mux.finish(id),
        Err(fault) => mux.fail(fault),
    }
}

fn run_ready(
    mux: &Mux,
    pipe: &Pipe,
    bufs: &mut Buffers,
    (cfg, handler): (&Config, &Handler),
    active: Active,
    tally: Option<Tally<'_>>,
) -> Result<(), Fault> {
    gather::complete(mux, bufs, cfg, active)?;
    let aborted = Cell::new(false);
    let Buffers {
        params,
        index,
        out,
        head,
        found,
        ..
    } = bufs;
    let view = || RequestView::new(params, index, found);
    let body = PipeReader::new(pipe, mux, cfg.read_timeout);
    let mut req = Request::new(params, index, Input::Pipe(body), active);
    let mut res = Response::new(mux, out, head, active.id, &aborted);
    let failure = call(handler, (&mut req, &mut res), view, tally, &aborted);
    aborted.set(pipe.is_aborted());
    if res.end(failure.as_deref(), cfg.debug)? {
        return Ok(());
    }
    // A response cut off: the web server can tell only by the connection.
    Err(Fault::Io(io::Error::new(
        io::ErrorKind::BrokenPipe,
        "a response on the multiplexed connection was cut off",
    )))
}

/// Calls the handler, or answers a page that the server answers itself,
/// and counts the request; returns the message of a handler that failed.
fn call<'v>(
    handler: &Handler,
    (req, res): (&mut Request<'_>, &mut Response<'_>),
    view: impl Fn() -> RequestView<'v> + Copy,
    tally: Option<Tally<'_>>,
    aborted: &Cell<bool>,
) -> Option<String> {
    let begun = tally.map_or(Begun::Unbound, |t| t.begin(view));
    let result = catch_unwind(AssertUnwindSafe(|| match begun {
        Begun::Page(page) => status::answer(page, req, res, metrics::snapshot_here),
        _ => handler(req, res),
    }));
    let (failure, how) = failure_of(result, view);
    if let (Begun::Counted(started), Some(tally)) = (begun, tally) {
        count(tally, started, (req, res), (how, aborted.get()), view);
    }
    failure
}

/// Counts a request whose handler returned (started at `started_ns`).
#[inline]
fn count<'v>(
    tally: Tally<'_>,
    started_ns: u64,
    (req, res): (&Request<'_>, &Response<'_>),
    (failure, aborted): (Failure, bool),
    view: impl Fn() -> RequestView<'v>,
) {
    let done = Finished {
        status: res.final_status(failure != Failure::None),
        failure,
        aborted,
    };
    let detail = || Detail {
        view: view(),
        bytes: (req.body.bytes_read(), res.body_bytes()),
    };
    tally.finish(started_ns, done, detail);
}

/// The message a handler's failure puts on the error stream, if it
/// failed; a panic is reported (once) on the way.
fn failure_of<'v>(
    result: std::thread::Result<io::Result<()>>,
    view: impl Fn() -> RequestView<'v>,
) -> (Option<String>, Failure) {
    match result {
        Ok(Ok(())) => (None, Failure::None),
        Ok(Err(e)) => {
            crate::observe::events::handler_error(&e);
            (Some(format!("handler failed: {e}")), Failure::Error)
        }
        Err(panic) => {
            let msg = panic_message(&*panic);
            let view = view();
            panic_report::report(msg, view.method(), view.uri());
            (Some(format!("handler panicked: {msg}")), Failure::Panic)
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(a non-string panic payload)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::NoControl;
    use crate::memio::Mem;
    use crate::protocol::{BeginRequest, Header, encode_pair, record_type};
    use std::io::{Read, Write};
    use std::time::Duration;

    fn rec(out: &mut Vec<u8>, t: u8, id: u16, content: &[u8], pad: u8) {
        let mut h = Header::new(t, id, content.len() as u16);
        h.padding_len = pad;
        out.extend_from_slice(&h.encode());
        out.extend_from_slice(content);
        out.extend(std::iter::repeat_n(0, pad as usize));
    }

    fn begin(out: &mut Vec<u8>, id: u16) {
        let b = BeginRequest { role: 1, flags: 1 };
        rec(out, record_type::BEGIN_REQUEST, id, &b.encode(), 3);
    }

    /// A session of several keep-conn requests, exercising what arrives
    /// between and inside them.
    fn script() -> Vec<u8> {
        use record_type::*;
        let mut s = Vec::new();
        let mut params = Vec::new();
        encode_pair(&mut params, b"REQUEST_METHOD", b"POST");
        encode_pair(&mut params, b"LONG", &[b'x'; 300]);
        rec(&mut s, GET_VALUES, 0, b"\x0f\x00FCGI_MPXS_CONNS", 1);
        begin(&mut s, 1);
        rec(&mut s, PARAMS, 1, &params[..7], 0);
        rec(&mut s, PARAMS, 1, &params[7..], 5);
        rec(&mut s, PARAMS, 1, b"", 0);
        rec(&mut s, STDIN, 1, b"hello ", 2);
        begin(&mut s, 2);
        rec(&mut s, 99, 0, b"", 0);
        rec(&mut s, STDIN, 1, b"world", 0);
        rec(&mut s, STDIN, 1, b"", 7);
        begin(&mut s, 1);
        rec(&mut s, PARAMS, 1, &params, 0);
        rec(&mut s, PARAMS, 1, b"", 0);
        rec(&mut s, STDIN, 1, &[b'z'; 70_000][..65535], 255);
        rec(&mut s, STDIN, 1, &[b'z'; 4465], 0);
        rec(&mut s, STDIN, 1, b"", 0);
        begin(&mut s, 3);
        rec(&mut s, PARAMS, 3, &params, 0);
        rec(&mut s, PARAMS, 3, b"", 0);
        rec(&mut s, STDIN, 3, b"cut", 0);
        rec(&mut s, ABORT_REQUEST, 3, b"", 0);
        s
    }

    fn handler(req: &mut Request<'_>, res: &mut Response<'_>) -> io::Result<()> {
        let mut body = Vec::new();
        let read = req.read_to_end(&mut body);
        res.header("X-Id", &req.id().to_string());
        write!(res, "{} {} {:?} ", req.method(), body.len(), read.is_ok())?;
        res.write_all(&body[..body.len().min(20)])
    }

    fn mem(input: &[u8], chunk: usize, stalls: bool) -> Mem {
        Mem::new(input, &[chunk], stalls)
    }

    fn test_config() -> Config {
        Config {
            workers: Some(4),
            max_params_bytes: 4096,
            ..Config::default()
        }
    }

    /// Serves `input` read in pieces of `chunk` bytes, resuming the
    /// connection each time it is parked (as the pool does once more
    /// bytes arrive), on one worker's buffers.
    fn run(input: &[u8], chunk: usize) -> (Vec<u8>, Outcome) {
        let io = mem(input, chunk, false);
        let mut bufs = Buffers::new();
        let mut resume = Resume::NEW;
        loop {
            let outcome = serve(
                &io,
                &mut bufs,
                &test_config(),
                &handler,
                &NoControl,
                resume,
                None,
            );
            match outcome.unwrap() {
                Outcome::Park(r) => resume = r,
                end => return (io.out.into_inner(), end),
            }
        }
    }

    /// Like [`run`], with the peer stalling at every other read between
    /// records: the connection is parked (with its partial request) and
    /// resumed by the other of two workers each time.
    fn run_stalling(input: &[u8], chunk: usize) -> (Vec<u8>, Outcome, usize) {
        let io = mem(input, chunk, true);
        let mut workers = [Buffers::new(), Buffers::new()];
        let (end, parks) = crate::memio::serve_parking(&mut workers, &io, &test_config(), &handler);
        (io.out.into_inner(), end.unwrap(), parks)
    }

    #[test]
    fn a_peer_stalling_anywhere_gives_the_same_output() {
        let input = script();
        let (whole, _) = run(&input, usize::MAX);
        let mut chunks: Vec<usize> = (1..=40).collect();
        chunks.extend([97, 300, 4096, 70_000]);
        for chunk in chunks {
            let (out, outcome, parks) = run_stalling(&input, chunk);
            assert!(
                out == whole,
                "chunk size {chunk} with stalls changed the output"
            );
            assert_eq!(outcome, Outcome::Close { drain: false });
            assert!(parks > 0, "chunk size {chunk}: never parked");
        }
    }

    /// Found by the connection fuzz target: the params of a request
    /// aborted before they ended were prepended to the next request's.
    #[test]
    fn params_of_an_aborted_request_do_not_reach_the_next() {
        let mut input = Vec::new();
        begin(&mut input, 1);
        rec(&mut input, record_type::PARAMS, 1, b"\x05\x01ab", 0);
        rec(&mut input, record_type::ABORT_REQUEST, 1, b"", 0);
        begin(&mut input, 1);
        let mut params = Vec::new();
        encode_pair(&mut params, b"REQUEST_METHOD", b"GET");
        rec(&mut input, record_type::PARAMS, 1, &params, 0);
        rec(&mut input, record_type::PARAMS, 1, b"", 0);
        rec(&mut input, record_type::STDIN, 1, b"", 0);
        let (out, outcome) = run(&input, usize::MAX);
        assert_eq!(outcome, Outcome::Close { drain: false });
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("GET 0 true"), "{text}");
    }

    #[test]
    fn buffers_shrink_back_after_a_large_request() {
        let mut input = Vec::new();
        begin(&mut input, 1);
        let mut params = Vec::new();
        encode_pair(&mut params, b"BIG", &[b'b'; 300_000]);
        for piece in params.chunks(65_535) {
            rec(&mut input, record_type::PARAMS, 1, piece, 0);
        }
        rec(&mut input, record_type::PARAMS, 1, b"", 0);
        rec(&mut input, record_type::STDIN, 1, b"", 0);
        let io = mem(&input, usize::MAX, false);
        let cfg = Config::default();
        let mut bufs = Buffers::new();
        serve(
            &io,
            &mut bufs,
            &cfg,
            &handler,
            &NoControl,
            Resume::NEW,
            None,
        )
        .unwrap();
        assert!(
            io.out.borrow().windows(4).any(|w| w == b"X-Id"),
            "not answered"
        );
        assert!(bufs.params.capacity() >= 300_000, "the test proves nothing");
        bufs.trim();
        assert!(bufs.params.capacity() <= 64 * 1024);
    }

    #[test]
    fn a_stalled_request_past_the_read_timeout_is_given_up() {
        let mut input = Vec::new();
        begin(&mut input, 1);
        rec(&mut input, record_type::PARAMS, 1, b"\x01\x01ab", 0);
        let io = mem(&input, usize::MAX, true);
        let mut bufs = Buffers::new();
        let cfg = Config {
            read_timeout: Some(Duration::from_millis(30)),
            ..test_config()
        };
        // Parked with nothing, then with the request begun.
        let first = serve(
            &io,
            &mut bufs,
            &cfg,
            &handler,
            &NoControl,
            Resume::NEW,
            None,
        )
        .unwrap();
        assert_eq!(first, Outcome::Park(Resume::NEW));
        let parked = serve(
            &io,
            &mut bufs,
            &cfg,
            &handler,
            &NoControl,
            Resume::NEW,
            None,
        )
        .unwrap();
        let Outcome::Park(Resume::Stalled(p)) = parked else {
            panic!("not parked with a partial request");
        };
        assert!(p.active.is_some() && p.params == b"\x01\x01ab" && !p.expired(cfg.read_timeout));
        std::thread::sleep(Duration::from_millis(40));
        assert!(p.expired(cfg.read_timeout));
        match serve(
            &io,
            &mut bufs,
            &cfg,
            &handler,
            &NoControl,
            Resume::Stalled(p),
            None,
        ) {
            Err(Fault::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::TimedOut),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_split_of_the_input_gives_the_unsplit_output() {
        let input = script();
        let (whole, outcome) = run(&input, usize::MAX);
        assert_eq!(outcome, Outcome::Close { drain: false });
        let text = String::from_utf8_lossy(&whole);
        assert!(text.contains("FCGI_MPXS_CONNS0"), "{text}");
        assert!(text.contains("POST 11 true hello world"), "{text}");
        assert!(text.contains("POST 70000 true zzzz"), "{text}");
        assert!(
            !text.contains("POST 3"),
            "the aborted request wrote nothing: {text}"
        );
        let mut chunks: Vec<usize> = (1..=300).collect();
        chunks.extend([511, 4096, 65_536, 65_544, 70_000]);
        for chunk in chunks {
            let (out, outcome) = run(&input, chunk);
            assert!(out == whole, "chunk size {chunk} changed the output");
            assert_eq!(
                outcome,
                Outcome::Close { drain: false },
                "chunk size {chunk}"
            );
        }
    }
}
