//! One connection's request loop over the protocol.
//!
//! Bytes come in through a [`Transport`] (a real socket, or an in-memory
//! stream in tests and fuzzing). The worker's reusable [`Buffers`] carry no
//! state between calls to [`serve`]: what a connection handed to the
//! parker has buffered travels with it, as a [`Resume`].

use std::cell::Cell;
use std::io::{self, IoSlice};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use crate::protocol::{
    self, BeginRequest, HEADER_LEN, Header, MAX_RECORD_LEN, Pairs, ProtocolStatus, Role,
    record_type,
};
use crate::request::{Body, PathParams, Request, Span};
use crate::response::{OutBufs, Response};

/// Where a connection's bytes come from and go to.
pub(crate) trait Transport {
    /// Reads, blocking until something arrives (or a timeout).
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Reads when the connection is between requests: lingering briefly
    /// for the next one, or not waiting at all; `WouldBlock` when nothing came.
    fn read_idle(&self, buf: &mut [u8], linger: bool) -> io::Result<usize>;
    /// Writes from several buffers, possibly partially.
    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
}

impl Transport for crate::sys::Socket {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        crate::sys::Socket::read(self, buf)
    }
    fn read_idle(&self, buf: &mut [u8], linger: bool) -> io::Result<usize> {
        if linger {
            self.read_lingering(buf)
        } else {
            self.read_nonblocking(buf)
        }
    }
    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        crate::sys::Socket::write_vectored(self, bufs)
    }
}

/// Writes every byte of every buffer.
pub(crate) fn write_all(io: &dyn Transport, bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
    let mut bufs = &mut bufs[..];
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match io.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The settings the connection loop obeys.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) workers: usize,
    pub(crate) roles: [bool; 3],
    /// Limits on one request before its handler runs.
    pub(crate) max_params_bytes: usize,
    pub(crate) max_params: usize,
    pub(crate) max_records: u32,
    /// How long a request may take to arrive (its params); also the
    /// longest wait for one read of its body.
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) root_mount: bool,
    pub(crate) debug: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            workers: 1,
            roles: [true, false, false],
            max_params_bytes: 1 << 20,
            max_params: 1000,
            max_records: 10_000,
            read_timeout: Some(Duration::from_secs(60)),
            root_mount: false,
            debug: false,
        }
    }
}

/// What the connection loop asks of the server around it.
pub(crate) trait Control {
    /// Whether the server is shutting down: a kept-open connection is then
    /// closed after its current request.
    fn stopping(&self) -> bool;
    /// Called once a request has been answered.
    fn request_done(&self);
    /// Whether a worker may wait a moment on an idle connection for its
    /// next request (nothing else is waiting for a worker).
    fn may_linger(&self) -> bool;
}

/// No server around: never stopping, nothing counted.
pub(crate) struct NoControl;

impl Control for NoControl {
    fn stopping(&self) -> bool {
        false
    }
    fn request_done(&self) {}
    fn may_linger(&self) -> bool {
        false
    }
}

impl Config {
    fn role_enabled(&self, role: Role) -> bool {
        self.roles[role.to_u16() as usize - 1]
    }
}

/// The request handler, as the connection loop calls it.
pub(crate) type Handler =
    dyn Fn(&mut Request<'_>, &mut Response<'_>) -> io::Result<()> + Send + Sync;

/// A read buffer that holds at least one whole record.
///
/// It starts small, enough for the params and bodies of most requests,
/// and grows once, to two records of the largest size, when a record does
/// not fit: an idle worker holds 16 KiB, not 128.
#[derive(Debug)]
pub(crate) struct ReadBuf {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    const SMALL: usize = 16 * 1024;
    const LARGE: usize = 2 * MAX_RECORD_LEN;

    /// Puts back bytes set aside earlier (less than one record).
    fn restore(&mut self, bytes: &[u8]) {
        if bytes.len() > self.buf.len() {
            self.grow();
        }
        self.buf[..bytes.len()].copy_from_slice(bytes);
        self.start = 0;
        self.end = bytes.len();
    }

    fn new() -> ReadBuf {
        ReadBuf {
            buf: vec![0; ReadBuf::SMALL].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Grows to the largest size, keeping what is held in place.
    fn grow(&mut self) {
        if self.buf.len() < ReadBuf::LARGE {
            let mut large = vec![0; ReadBuf::LARGE].into_boxed_slice();
            large[..self.end].copy_from_slice(&self.buf[..self.end]);
            self.buf = large;
        }
    }

    /// Forgets everything held: the next connection starts clean.
    fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads more bytes after what is held; `Ok(0)` at end of stream.
    /// `idle`: between requests (see [`Transport::read_idle`]).
    pub(crate) fn fill(&mut self, io: &dyn Transport, idle: Option<bool>) -> io::Result<usize> {
        // The record at the front, whole: its length once its header is in.
        let want = match Header::decode(self.data()) {
            Ok(Some(h)) => h.record_len(),
            _ => HEADER_LEN,
        };
        if want > self.buf.len() {
            self.grow();
        }
        // Move what is held to the front when little room is left behind
        // it (the record cannot be whole before that; once it is, the
        // buffer holds it: `want` fits).
        if self.start > 0 && self.buf.len() - self.end < self.buf.len() / 2 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let spare = &mut self.buf[self.end..];
        let n = match idle {
            Some(linger) => io.read_idle(spare, linger)?,
            None => io.read(spare)?,
        };
        self.end += n;
        Ok(n)
    }
}

/// A worker's buffers, reused for every request it serves.
#[derive(Debug)]
pub(crate) struct Buffers {
    rbuf: ReadBuf,
    params: Vec<u8>,
    index: Vec<Span>,
    out: OutBufs,
}

impl Buffers {
    pub(crate) fn new() -> Buffers {
        Buffers {
            rbuf: ReadBuf::new(),
            params: Vec::with_capacity(4096),
            index: Vec::with_capacity(64),
            out: OutBufs::new(),
        }
    }

    /// Gives back memory that one unusually large request made the
    /// buffers grow to.
    pub(crate) fn trim(&mut self) {
        const KEEP: usize = 64 * 1024;
        if self.params.capacity() > KEEP {
            self.params = Vec::with_capacity(4096);
        }
        self.out.trim(KEEP);
    }
}

/// A request begun but not yet complete, set aside with the bytes of it
/// already read while its connection waits in the parker: a slow peer
/// holds memory (bounded by the limits), never a worker.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Partial {
    active: Option<Active>,
    params: Vec<u8>,
    /// Bytes read but not yet decoded: less than one record.
    pending: Vec<u8>,
    records: u32,
    /// When the peer first kept the request waiting.
    since: Instant,
}

impl Partial {
    /// Whether the request has taken longer than `limit` to arrive.
    pub(crate) fn expired(&self, limit: Option<Duration>) -> bool {
        limit.is_some_and(|t| self.since.elapsed() >= t)
    }
}

/// Where [`serve`] takes up a connection again.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Resume {
    /// Between requests, `records` records since the last one (management
    /// records, strays): carried so that the limit on them does not
    /// depend on where the peer paused. Costs no allocation.
    Idle { records: u32 },
    /// In the middle of a request.
    Stalled(Box<Partial>),
}

impl Resume {
    /// A connection just accepted.
    pub(crate) const NEW: Resume = Resume::Idle { records: 0 };
}

/// What the worker does with the connection after [`serve`] returns.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Nothing to read: hand it to the parker, with where to resume.
    Park(Resume),
    /// Close it. `drain` asks for a bounded wait for the peer's end of
    /// stream first (its request body may still be on the way).
    Close { drain: bool },
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

/// The state of the request in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Active {
    pub(crate) id: u16,
    pub(crate) role: Role,
    pub(crate) keep_conn: bool,
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
) -> Result<Outcome, Fault> {
    // A connection never inherits bytes that another one left behind.
    bufs.rbuf.clear();
    let mut resume = Some(resume);
    loop {
        let from = resume.take().unwrap_or(Resume::NEW);
        let active = match gather(io, bufs, cfg, ctl, from)? {
            Gathered::Request(active) => active,
            Gathered::Paused(r) if !ctl.stopping() => return Ok(Outcome::Park(r)),
            Gathered::Paused(_) | Gathered::Close => {
                return Ok(Outcome::Close { drain: false });
            }
        };
        let ended = run_request(io, bufs, cfg, handler, active);
        ctl.request_done();
        let ended = ended?;
        if !active.keep_conn || !ended.clean {
            return Ok(Outcome::Close {
                drain: !ended.stdin_done,
            });
        }
        if ctl.stopping() {
            return Ok(Outcome::Close { drain: false });
        }
    }
}

/// What [`gather`] found.
enum Gathered {
    /// A request whose params are complete.
    Request(Active),
    /// Nothing more to read yet, between requests or in one.
    Paused(Resume),
    /// The peer closed between requests, or a request ended early on a
    /// connection that is not kept open.
    Close,
}

/// Reads records until a request's params are complete, starting from
/// the part of one set aside earlier, if any.
fn gather(
    io: &dyn Transport,
    bufs: &mut Buffers,
    cfg: &Config,
    ctl: &dyn Control,
    resume: Resume,
) -> Result<Gathered, Fault> {
    bufs.params.clear();
    let (mut active, mut records, since) = match resume {
        Resume::Idle { records } => (None, records, None),
        Resume::Stalled(p) => {
            if p.expired(cfg.read_timeout) {
                return Err(read_timed_out());
            }
            bufs.params.extend_from_slice(&p.params);
            bufs.rbuf.restore(&p.pending);
            (p.active, p.records, Some(p.since))
        }
    };
    loop {
        let Some((rec, used)) = protocol::decode_record(bufs.rbuf.data())? else {
            let idle = active.is_none() && bufs.rbuf.data().is_empty();
            // Mid-request too, the worker waits only a moment, and only
            // when no other connection waits for it: a peer that stalls is
            // set aside with what it sent, not waited for.
            match bufs.rbuf.fill(io, Some(ctl.may_linger())) {
                Ok(0) if idle => return Ok(Gathered::Close),
                Ok(0) => {
                    return Err(Fault::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the web server closed the connection in the middle of a record",
                    )));
                }
                Ok(_) => continue,
                Err(e) if idle && e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(Gathered::Paused(Resume::Idle { records }));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let p = Partial {
                        active,
                        params: bufs.params.clone(),
                        pending: bufs.rbuf.data().to_vec(),
                        records,
                        since: since.unwrap_or_else(Instant::now),
                    };
                    if p.expired(cfg.read_timeout) {
                        return Err(read_timed_out());
                    }
                    return Ok(Gathered::Paused(Resume::Stalled(Box::new(p))));
                }
                Err(e) => return Err(e.into()),
            }
        };
        let h = rec.header;
        records += 1;
        if records > cfg.max_records {
            let msg = format!(
                "more than {} records before a request was complete",
                cfg.max_records
            );
            return over_limit(io, active, "400 Bad Request", msg);
        }
        let mut done = false;
        match classify(&h, active.as_ref()) {
            Kind::Management => management(io, &h, rec.content, cfg)?,
            Kind::Begin => {
                let begin = BeginRequest::decode(rec.content)?;
                // Params of a request aborted before they ended are dropped.
                bufs.params.clear();
                active = begin_request(io, &h, &begin, cfg)?;
                if active.is_none() && !begin.keep_conn() {
                    return Ok(Gathered::Close);
                }
            }
            Kind::Concurrent => refuse(io, h.request_id, ProtocolStatus::CantMpxConn)?,
            Kind::Ours if h.record_type == record_type::PARAMS => {
                if rec.content.is_empty() {
                    done = true;
                } else if bufs.params.len() + rec.content.len() > cfg.max_params_bytes {
                    let msg = format!(
                        "the request's params exceed the limit of {} bytes",
                        cfg.max_params_bytes
                    );
                    return over_limit(io, active, TOO_LARGE, msg);
                } else {
                    bufs.params.extend_from_slice(rec.content);
                }
            }
            Kind::Ours if h.record_type == record_type::ABORT_REQUEST => {
                let a = active.take().expect("ours implies active");
                refuse(io, a.id, ProtocolStatus::RequestComplete)?;
                if !a.keep_conn {
                    return Ok(Gathered::Close);
                }
            }
            Kind::Ours | Kind::Ignore => {}
            Kind::Invalid => return Err(invalid_type(&h)),
        }
        bufs.rbuf.consume(used);
        if done {
            let a = active.expect("params end implies active");
            let paths = index_params(&bufs.params, &mut bufs.index, cfg.max_params_bytes)?;
            if bufs.index.len() > cfg.max_params {
                let msg = format!(
                    "the request has {} params, over the limit of {}",
                    bufs.index.len(),
                    cfg.max_params
                );
                return over_limit(io, active, TOO_LARGE, msg);
            }
            crate::request::fix_paths(&mut bufs.params, &mut bufs.index, paths, cfg.root_mount);
            return Ok(Gathered::Request(a));
        }
    }
}

fn read_timed_out() -> Fault {
    Fault::Io(io::Error::new(
        io::ErrorKind::TimedOut,
        "the request did not arrive whole within the read timeout",
    ))
}

const TOO_LARGE: &str = "431 Request Header Fields Too Large";

/// Ends a request that went over a limit with an error response, `msg`
/// on its error stream too, and the fault that closes the connection.
fn over_limit(
    io: &dyn Transport,
    active: Option<Active>,
    status: &str,
    msg: String,
) -> Result<Gathered, Fault> {
    if let Some(a) = active {
        let head = format!("Status: {status}\r\nContent-Type: text/plain\r\n\r\n{msg}\n");
        let err = format!("fcgi-server: {msg}\n");
        let mut out = Vec::with_capacity(head.len() + err.len() + 64);
        protocol::push_record(&mut out, record_type::STDERR, a.id, err.as_bytes());
        protocol::push_record(&mut out, record_type::STDOUT, a.id, head.as_bytes());
        protocol::push_record(&mut out, record_type::STDOUT, a.id, b"");
        out.extend_from_slice(&protocol::encode_end_request(
            a.id,
            0,
            ProtocolStatus::RequestComplete,
        ));
        write_all(io, &mut [IoSlice::new(&out)])?;
    }
    Err(Fault::Limit(msg))
}

/// How a record relates to the request in progress.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Request id 0: a management record.
    Management,
    /// A begin-request with no request in progress.
    Begin,
    /// A begin-request while another request is in progress.
    Concurrent,
    /// A record for the request in progress.
    Ours,
    /// A record for an inactive request id, or of a type we do not know.
    Ignore,
    /// A type that only an application sends: the peer is confused.
    Invalid,
}

pub(crate) fn classify(h: &Header, active: Option<&Active>) -> Kind {
    use record_type::*;
    match h.record_type {
        END_REQUEST | STDOUT | STDERR | GET_VALUES_RESULT | UNKNOWN_TYPE if h.request_id != 0 => {
            Kind::Invalid
        }
        _ if h.request_id == protocol::NULL_REQUEST_ID => Kind::Management,
        BEGIN_REQUEST if active.is_some() => Kind::Concurrent,
        BEGIN_REQUEST => Kind::Begin,
        ABORT_REQUEST | PARAMS | STDIN | DATA if active.is_some_and(|a| a.id == h.request_id) => {
            Kind::Ours
        }
        _ => Kind::Ignore,
    }
}

/// The fault for a record type that only applications send.
pub(crate) fn invalid_type(h: &Header) -> Fault {
    Fault::Protocol(format!(
        "record type {} (sent only by applications) from the web server",
        h.record_type
    ))
}

/// Starts a request, or refuses a role that is not enabled.
fn begin_request(
    io: &dyn Transport,
    h: &Header,
    begin: &BeginRequest,
    cfg: &Config,
) -> io::Result<Option<Active>> {
    match begin.role() {
        Some(role) if cfg.role_enabled(role) => Ok(Some(Active {
            id: h.request_id,
            role,
            keep_conn: begin.keep_conn(),
        })),
        _ => {
            refuse(io, h.request_id, ProtocolStatus::UnknownRole)?;
            Ok(None)
        }
    }
}

/// Ends request `id` at once with an end-request record.
pub(crate) fn refuse(io: &dyn Transport, id: u16, status: ProtocolStatus) -> io::Result<()> {
    let rec = protocol::encode_end_request(id, 0, status);
    write_all(io, &mut [IoSlice::new(&rec)])
}

/// Answers a management record: `FCGI_GET_VALUES` with the names asked for
/// that we know, anything else with `FCGI_UNKNOWN_TYPE`.
pub(crate) fn management(
    io: &dyn Transport,
    h: &Header,
    content: &[u8],
    cfg: &Config,
) -> Result<(), Fault> {
    if h.record_type != record_type::GET_VALUES {
        let reply = protocol::encode_unknown_type(h.record_type);
        return Ok(write_all(io, &mut [IoSlice::new(&reply)])?);
    }
    let mut reply = Vec::with_capacity(128);
    let mut body = Vec::with_capacity(96);
    let workers = cfg.workers.to_string();
    for pair in Pairs::new(content, cfg.max_params_bytes as u32) {
        let (name, _) = pair?;
        let value = match name {
            protocol::value_name::MAX_CONNS | protocol::value_name::MAX_REQS => workers.as_bytes(),
            protocol::value_name::MPXS_CONNS => b"0",
            _ => continue,
        };
        protocol::encode_pair(&mut body, name, value);
    }
    body.truncate(protocol::MAX_ALIGNED_CONTENT_LEN);
    protocol::push_record(&mut reply, record_type::GET_VALUES_RESULT, 0, &body);
    Ok(write_all(io, &mut [IoSlice::new(&reply)])?)
}

/// Indexes the params stream in place: offsets, no copies.
/// Also returns where the pairs that [`fix_paths`](crate::request::fix_paths)
/// needs are, found on the way.
fn index_params(params: &[u8], index: &mut Vec<Span>, limit: usize) -> Result<PathParams, Fault> {
    index.clear();
    let mut paths = PathParams::default();
    let base = params.as_ptr() as usize;
    for pair in Pairs::new(params, limit.min(u32::MAX as usize) as u32) {
        let (name, value) = pair?;
        paths.note(name, index.len());
        let at = |s: &[u8]| (s.as_ptr() as usize - base) as u32;
        index.push(Span {
            name: (at(name), name.len() as u32),
            value: (at(value), value.len() as u32),
        });
    }
    Ok(paths)
}

/// How a request ended.
struct Ended {
    /// The connection is in a state to serve another request.
    clean: bool,
    /// The request body was read to its end.
    stdin_done: bool,
}

/// Calls the handler for one request and ends the request.
fn run_request(
    io: &dyn Transport,
    bufs: &mut Buffers,
    cfg: &Config,
    handler: &Handler,
    active: Active,
) -> Result<Ended, Fault> {
    let aborted = Cell::new(false);
    let Buffers {
        rbuf,
        params,
        index,
        out,
    } = bufs;
    let body = Body::new(io, rbuf, cfg, active, &aborted);
    let mut req = Request::new(params, index, body, active);
    let mut res = Response::new(io, out, active.id, &aborted);
    let result = catch_unwind(AssertUnwindSafe(|| handler(&mut req, &mut res)));
    let body = &mut req.body;
    let failure = match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("handler failed: {e}")),
        Err(panic) => Some(format!("handler panicked: {}", panic_message(&*panic))),
    };
    let fault = body.fault.take();
    let ended = res.end(failure.as_deref(), cfg.debug);
    body.skip_rest_of_record();
    // A failure to read the request explains a failure to answer it.
    if let Some(f) = fault {
        return Err(f);
    }
    Ok(Ended {
        clean: ended?,
        stdin_done: body.is_done(),
    })
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
    use crate::memio::Mem;
    use crate::protocol::{BeginRequest, encode_pair};
    use std::io::{Read, Write};

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
            workers: 4,
            max_params_bytes: 4096,
            ..Config::default()
        }
    }

    fn run(input: &[u8], chunk: usize) -> (Vec<u8>, Outcome) {
        let io = mem(input, chunk, false);
        let mut bufs = Buffers::new();
        let outcome = serve(
            &io,
            &mut bufs,
            &test_config(),
            &handler,
            &NoControl,
            Resume::NEW,
        );
        let outcome = outcome.unwrap();
        (io.out.into_inner(), outcome)
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
        serve(&io, &mut bufs, &cfg, &handler, &NoControl, Resume::NEW).unwrap();
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
        let first = serve(&io, &mut bufs, &cfg, &handler, &NoControl, Resume::NEW).unwrap();
        assert_eq!(first, Outcome::Park(Resume::NEW));
        let parked = serve(&io, &mut bufs, &cfg, &handler, &NoControl, Resume::NEW).unwrap();
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

    #[test]
    fn classify_cases() {
        use record_type::*;
        let active = Active {
            id: 1,
            role: Role::Responder,
            keep_conn: true,
        };
        let h = |t, id| Header::new(t, id, 0);
        let cases = [
            (h(GET_VALUES, 0), None, Kind::Management),
            (h(BEGIN_REQUEST, 0), None, Kind::Management),
            (h(BEGIN_REQUEST, 1), None, Kind::Begin),
            (h(BEGIN_REQUEST, 2), Some(active), Kind::Concurrent),
            (h(STDIN, 1), Some(active), Kind::Ours),
            (h(STDIN, 2), Some(active), Kind::Ignore),
            (h(STDIN, 1), None, Kind::Ignore),
            (h(ABORT_REQUEST, 1), Some(active), Kind::Ours),
            (h(STDOUT, 1), Some(active), Kind::Invalid),
            (h(END_REQUEST, 5), None, Kind::Invalid),
            (h(200, 1), Some(active), Kind::Ignore),
        ];
        for (header, act, want) in cases {
            assert_eq!(classify(&header, act.as_ref()), want, "{header:?} {act:?}");
        }
    }
}
