//! One connection's request loop over the protocol.
//!
//! Bytes come in through a [`Transport`] (a real socket, or an in-memory
//! stream in tests and fuzzing). The worker's reusable [`Buffers`] carry no
//! state between calls to [`serve`]: a connection handed to the parker has
//! nothing buffered.

use std::cell::Cell;
use std::io::{self, IoSlice};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::protocol::{
    self, BeginRequest, Header, MAX_RECORD_LEN, Pairs, ProtocolStatus, Role, record_type,
};
use crate::request::{Body, Request, Span};
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
    pub(crate) max_params_bytes: usize,
    pub(crate) root_mount: bool,
    pub(crate) debug: bool,
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
#[derive(Debug)]
pub(crate) struct ReadBuf {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    fn new() -> ReadBuf {
        ReadBuf {
            buf: vec![0; 2 * MAX_RECORD_LEN].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
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
        if self.buf.len() - self.end < MAX_RECORD_LEN {
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
    fn trim(&mut self) {
        const KEEP: usize = 64 * 1024;
        if self.params.capacity() > KEEP {
            self.params = Vec::with_capacity(4096);
        }
        self.out.trim(KEEP);
    }
}

/// What the worker does with the connection after [`serve`] returns.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Keep-conn and nothing to read: hand it to the parker.
    Park,
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
#[derive(Clone, Copy, Debug)]
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
) -> Result<Outcome, Fault> {
    // A connection never inherits bytes that another one left behind.
    bufs.rbuf.clear();
    loop {
        let active = match gather(io, bufs, cfg, ctl)? {
            Gathered::Request(active) => active,
            Gathered::Idle if !ctl.stopping() => return Ok(Outcome::Park),
            Gathered::Idle | Gathered::Close => return Ok(Outcome::Close { drain: false }),
        };
        let ended = run_request(io, bufs, cfg, handler, active);
        ctl.request_done();
        let ended = ended?;
        bufs.trim();
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
    /// No request under way and nothing more to read yet.
    Idle,
    /// The peer closed between requests, or a request ended early on a
    /// connection that is not kept open.
    Close,
}

/// Reads records until a request's params are complete.
fn gather(
    io: &dyn Transport,
    bufs: &mut Buffers,
    cfg: &Config,
    ctl: &dyn Control,
) -> Result<Gathered, Fault> {
    let mut active: Option<Active> = None;
    bufs.params.clear();
    loop {
        let Some((rec, used)) = protocol::decode_record(bufs.rbuf.data())? else {
            let idle = active.is_none() && bufs.rbuf.data().is_empty();
            match bufs.rbuf.fill(io, idle.then(|| ctl.may_linger())) {
                Ok(0) if idle => return Ok(Gathered::Close),
                Ok(0) => {
                    return Err(Fault::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the web server closed the connection in the middle of a record",
                    )));
                }
                Ok(_) => continue,
                Err(e) if idle && e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(Gathered::Idle);
                }
                Err(e) => return Err(e.into()),
            }
        };
        let h = rec.header;
        let mut done = false;
        match classify(&h, active.as_ref()) {
            Kind::Management => management(io, &h, rec.content, cfg)?,
            Kind::Begin => {
                let begin = BeginRequest::decode(rec.content)?;
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
                    return Err(Fault::Protocol(format!(
                        "params exceed the limit of {} bytes",
                        cfg.max_params_bytes
                    )));
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
            index_params(&bufs.params, &mut bufs.index, cfg.max_params_bytes)?;
            crate::request::fix_paths(&mut bufs.params, &mut bufs.index, cfg.root_mount);
            return Ok(Gathered::Request(a));
        }
    }
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
    let header = Header::aligned(record_type::GET_VALUES_RESULT, 0, body.len() as u16);
    reply.extend_from_slice(&header.encode());
    reply.extend_from_slice(&body);
    reply.extend_from_slice(&[0; 8][..header.padding_len as usize]);
    Ok(write_all(io, &mut [IoSlice::new(&reply)])?)
}

/// Indexes the params stream in place: offsets, no copies.
fn index_params(params: &[u8], index: &mut Vec<Span>, limit: usize) -> Result<(), Fault> {
    index.clear();
    let base = params.as_ptr() as usize;
    for pair in Pairs::new(params, limit.min(u32::MAX as usize) as u32) {
        let (name, value) = pair?;
        let at = |s: &[u8]| (s.as_ptr() as usize - base) as u32;
        index.push(Span {
            name: (at(name), name.len() as u32),
            value: (at(value), value.len() as u32),
        });
    }
    Ok(())
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
    use crate::protocol::{BeginRequest, encode_pair};
    use std::cell::RefCell;
    use std::io::{Read, Write};

    /// Input delivered `chunk` bytes at a time; output collected.
    struct Mem {
        input: Vec<u8>,
        pos: Cell<usize>,
        chunk: usize,
        out: RefCell<Vec<u8>>,
    }

    impl Transport for Mem {
        fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
            let rest = &self.input[self.pos.get()..];
            let n = rest.len().min(buf.len()).min(self.chunk);
            buf[..n].copy_from_slice(&rest[..n]);
            self.pos.set(self.pos.get() + n);
            Ok(n)
        }
        fn read_idle(&self, buf: &mut [u8], _linger: bool) -> io::Result<usize> {
            self.read(buf)
        }
        fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let mut out = self.out.borrow_mut();
            bufs.iter().for_each(|b| out.extend_from_slice(b));
            Ok(bufs.iter().map(|b| b.len()).sum())
        }
    }

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

    fn run(input: &[u8], chunk: usize) -> (Vec<u8>, Outcome) {
        let io = Mem {
            input: input.to_vec(),
            pos: Cell::new(0),
            chunk,
            out: RefCell::new(Vec::new()),
        };
        let cfg = Config {
            workers: 4,
            roles: [true, false, false],
            max_params_bytes: 4096,
            root_mount: false,
            debug: false,
        };
        let mut bufs = Buffers::new();
        let outcome = serve(&io, &mut bufs, &cfg, &handler, &NoControl).unwrap();
        (io.out.into_inner(), outcome)
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
