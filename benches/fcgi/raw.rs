//! The raw baselines: servers that only walk record headers and answer
//! with precomputed bytes, each a simple server of a different shape.
//! The benchmark takes, for each scenario, the best of them measured in
//! the same run: that is the ceiling of this machine.
//!
//! - `threads`: threads that each accept a connection and serve it with
//!   blocking reads and writes (one thread per connection);
//! - `epoll`: one thread, one event loop over every connection;
//! - `epoll` started once per core, every process sharing the listening
//!   socket (as `spawn-fcgi -F N` starts a program).

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::OnceLock;
use std::thread;

use mio::net::UnixListener as MioListener;
use mio::net::UnixStream as MioStream;
use mio::{Events, Interest, Poll, Token};

use fcgi_server::protocol::{
    self, EndRequest, HEADER_LEN, Header, MAX_ALIGNED_CONTENT_LEN, ProtocolStatus, record_type,
};

use super::{HEAD, HELLO_BODY, MIB};

/// The shapes of raw server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    Threads,
    Epoll,
    /// The epoll server, once per core.
    Prefork,
}

impl Shape {
    pub(super) const ALL: [Shape; 3] = [Shape::Threads, Shape::Epoll, Shape::Prefork];

    pub(super) fn name(self) -> &'static str {
        match self {
            Shape::Threads => "threads",
            Shape::Epoll => "epoll",
            Shape::Prefork => "epoll-per-core",
        }
    }

    /// The argument of `--raw-server` for one process of this shape.
    pub(super) fn arg(self) -> &'static str {
        match self {
            Shape::Threads => "threads",
            Shape::Epoll | Shape::Prefork => "epoll",
        }
    }
}

/// Serves the listening socket on fd 0 in `shape` (`threads` or `epoll`)
/// answering as `mode` says; never returns.
pub(super) fn serve(shape: &str, mode: &str) -> ! {
    let fd = io::stdin().as_fd().try_clone_to_owned().expect("fd 0");
    let listener = UnixListener::from(fd);
    let mode = Mode::parse(mode);
    match shape {
        "threads" => threads(listener, mode),
        _ => event_loop(listener, mode),
    }
    std::process::exit(0)
}

/// What the raw server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// `Hello, World!` to every request.
    Hello,
    /// 1 MiB of the alphabet pattern to every request.
    Download,
    /// The request body back, once it has all arrived.
    Echo,
}

impl Mode {
    fn parse(s: &str) -> Mode {
        match s {
            "download" => Mode::Download,
            "echo" => Mode::Echo,
            _ => Mode::Hello,
        }
    }
}

fn stdout_records(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let all = [HEAD, body].concat();
    for chunk in all.chunks(MAX_ALIGNED_CONTENT_LEN) {
        protocol::push_record(&mut out, record_type::STDOUT, 1, chunk);
    }
    out
}

fn end_records() -> Vec<u8> {
    let mut out = Header::new(record_type::STDOUT, 1, 0).encode().to_vec();
    out.extend_from_slice(&EndRequest::new(0, ProtocolStatus::RequestComplete).record(1));
    out
}

/// The whole reply of a hello or download request, built once.
fn reply(mode: Mode) -> &'static [u8] {
    static HELLO: OnceLock<Vec<u8>> = OnceLock::new();
    static DOWNLOAD: OnceLock<Vec<u8>> = OnceLock::new();
    let (cell, body): (_, fn() -> Vec<u8>) = match mode {
        Mode::Download => (&DOWNLOAD, || {
            (0..MIB).map(|i| b'a' + (i % 26) as u8).collect()
        }),
        _ => (&HELLO, || HELLO_BODY.to_vec()),
    };
    cell.get_or_init(|| [stdout_records(&body()), end_records()].concat())
}

/// The records of one connection, walked by their headers.
struct Session {
    mode: Mode,
    keep: bool,
    /// The echo reply being collected: STDIN records turned into STDOUT.
    echoed: Vec<u8>,
}

/// What a session wants written.
enum Out {
    Static(&'static [u8]),
    Echo,
}

impl Session {
    fn new(mode: Mode) -> Session {
        Session {
            mode,
            keep: true,
            echoed: Vec::with_capacity(if mode == Mode::Echo { 2 * MIB } else { 0 }),
        }
    }

    /// Handles one complete record (header and content); returns a reply
    /// when the record ends a request.
    fn record(&mut self, h: &Header, rec: &[u8]) -> Option<Out> {
        match h.record_type {
            record_type::BEGIN_REQUEST => {
                self.keep = rec[HEADER_LEN + 2] & protocol::KEEP_CONN != 0;
                self.echoed.clear();
                if self.mode == Mode::Echo {
                    self.echoed.extend_from_slice(&stdout_records(b""));
                }
                None
            }
            record_type::STDIN if h.content_len > 0 && self.mode == Mode::Echo => {
                // Each STDIN record goes back as a STDOUT record, once the
                // whole body has been read (as the echo application does).
                let at = self.echoed.len() + 1;
                self.echoed.extend_from_slice(rec);
                self.echoed[at] = record_type::STDOUT;
                None
            }
            record_type::STDIN if h.content_len == 0 => Some(match self.mode {
                Mode::Echo => {
                    self.echoed.extend_from_slice(&end_records());
                    Out::Echo
                }
                mode => Out::Static(reply(mode)),
            }),
            _ => None,
        }
    }

    /// The complete record at the front of `buf`, if there is one.
    fn next(buf: &[u8]) -> Option<(Header, usize)> {
        let h = Header::decode(buf).ok()??;
        (buf.len() >= h.record_len()).then(|| (h, h.record_len()))
    }
}

/// One thread per connection, blocking reads and writes.
fn threads(listener: UnixListener, mode: Mode) {
    let listener = std::sync::Arc::new(listener);
    let workers: Vec<_> = (0..32)
        .map(|_| {
            let listener = listener.clone();
            thread::spawn(move || {
                // One buffer per thread, reused for every connection.
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    if let Ok((stream, _)) = listener.accept() {
                        let _ = blocking(stream, mode, &mut buf);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
}

fn blocking(mut s: UnixStream, mode: Mode, buf: &mut [u8]) -> io::Result<()> {
    let mut session = Session::new(mode);
    let (mut start, mut fill) = (0, 0);
    loop {
        let Some((h, len)) = Session::next(&buf[start..fill]) else {
            buf.copy_within(start..fill, 0);
            (fill, start) = (fill - start, 0);
            let n = s.read(&mut buf[fill..])?;
            if n == 0 {
                return Ok(());
            }
            fill += n;
            continue;
        };
        match session.record(&h, &buf[start..start + len]) {
            Some(Out::Static(bytes)) => s.write_all(bytes)?,
            Some(Out::Echo) => s.write_all(&session.echoed)?,
            None => {}
        }
        if h.record_type == record_type::STDIN && h.content_len == 0 && !session.keep {
            return Ok(());
        }
        start += len;
    }
}

const LISTENER: Token = Token(usize::MAX);

/// A connection of the event loop.
struct Conn {
    stream: MioStream,
    session: Session,
    buf: Vec<u8>,
    start: usize,
    fill: usize,
    /// The reply being written, and how much of it has left.
    out: Option<(Out, usize)>,
    /// Close once the reply has left.
    closing: bool,
}

/// One thread, one event loop (edge-triggered epoll, through mio).
fn event_loop(listener: UnixListener, mode: Mode) {
    listener.set_nonblocking(true).unwrap();
    let mut listener = MioListener::from_std(listener);
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(1024);
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .unwrap();
    let mut conns: Vec<Option<Conn>> = Vec::new();
    // Buffers of closed connections, for new ones: no allocation per
    // connection.
    let mut spare: Vec<Vec<u8>> = Vec::new();
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            assert_eq!(e.kind(), io::ErrorKind::Interrupted, "{e}");
            continue;
        }
        for ev in &events {
            if ev.token() == LISTENER {
                accept_all(&listener, &poll, &mut conns, &mut spare, mode);
                continue;
            }
            let i = ev.token().0;
            let done = conns[i].as_mut().is_none_or(|c| c.ready().is_err());
            if done {
                // Closing the socket takes it out of the epoll set.
                if let Some(c) = conns[i].take() {
                    spare.push(c.buf);
                }
            }
        }
    }
}

fn accept_all(
    listener: &MioListener,
    poll: &Poll,
    conns: &mut Vec<Option<Conn>>,
    spare: &mut Vec<Vec<u8>>,
    mode: Mode,
) {
    while let Ok((stream, _)) = listener.accept() {
        let mut conn = Conn {
            stream,
            session: Session::new(mode),
            buf: spare.pop().unwrap_or_else(|| vec![0u8; 256 * 1024]),
            start: 0,
            fill: 0,
            out: None,
            closing: false,
        };
        // The request is usually there already: served at once, and a
        // connection closed after it never enters the epoll set. One that
        // stays is registered; registering reports what is ready already.
        if conn.ready().is_err() {
            spare.push(conn.buf);
            continue;
        }
        let i = conns.iter().position(Option::is_none).unwrap_or_else(|| {
            conns.push(None);
            conns.len() - 1
        });
        poll.registry()
            .register(
                &mut conn.stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )
            .unwrap();
        conns[i] = Some(conn);
    }
}

impl Conn {
    /// Makes what progress it can; `Err` when the connection is done.
    fn ready(&mut self) -> io::Result<()> {
        loop {
            self.flush()?;
            if self.out.is_some() {
                return Ok(()); // the socket is full: wait to be writable
            }
            if self.closing {
                return Err(io::ErrorKind::NotConnected.into());
            }
            if let Some((h, len)) = Session::next(&self.buf[self.start..self.fill]) {
                let rec = &self.buf[self.start..self.start + len];
                self.out = self.session.record(&h, rec).map(|o| (o, 0));
                self.closing = self.out.is_some() && !self.session.keep;
                self.start += len;
                continue;
            }
            if !self.read()? {
                return Ok(());
            }
        }
    }

    /// Reads more; `false` when nothing is there now.
    fn read(&mut self) -> io::Result<bool> {
        self.buf.copy_within(self.start..self.fill, 0);
        (self.fill, self.start) = (self.fill - self.start, 0);
        match self.stream.read(&mut self.buf[self.fill..]) {
            Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                self.fill += n;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes what it can of the reply.
    fn flush(&mut self) -> io::Result<()> {
        let Some((out, at)) = &mut self.out else {
            return Ok(());
        };
        let bytes = match out {
            Out::Static(b) => *b,
            Out::Echo => &self.session.echoed[..],
        };
        while *at < bytes.len() {
            match self.stream.write(&bytes[*at..]) {
                Ok(n) => *at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        self.out = None;
        Ok(())
    }
}
