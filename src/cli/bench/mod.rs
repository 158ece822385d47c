//! `fcgi bench`: a FastCGI load generator that drives an application as
//! a web server's event loop does (an nginx worker, lighttpd): one
//! thread, one epoll set over every connection, each connection's next
//! request sent the moment its answer is complete, with the params of
//! nginx's `fastcgi_params` and its records padded to 8 bytes.
//!
//! - `answer`: an answer checked record by record as it comes;
//! - `conn`: a connection and the request on it;
//! - `tally`: the counts, the latency histogram, the summary.
//!
//! Every request is checked: a closed connection, a protocol error, a
//! timeout or a status other than 2xx is counted as an error and shown;
//! the connection is then made again.

mod answer;
mod conn;
mod tally;

use std::io::Write as _;
use std::time::{Duration, Instant};

use super::commands;
use super::exchange::{Body, body_unreadable};
use super::exit::{self, Exit, Failure};
use super::flags::{Args, Format};
use super::params::{self, Param};
use crate::protocol::{self, BeginRequest, MAX_ALIGNED_CONTENT_LEN, record_type};
use crate::sys::{self, Epoll};
use conn::{Conn, Failed, Target};
use tally::Tally;

/// How often the loop looks at the clock for timeouts, the end of the
/// run and the progress line, at least.
const TICK: Duration = Duration::from_millis(100);

/// `fcgi bench`: runs the load and prints the summary; exits 1 when any
/// request failed.
pub(crate) fn bench(args: &Args) -> Result<Exit, Failure> {
    let request = encode(args)?;
    let target = Target::resolve(&args.addr).map_err(|e| exit::connect_failed(&args.addr, &e))?;
    let mut run = Run::new(args, &request, target)?;
    run.start()?;
    let secs = run.drive();
    let t = &run.tally;
    let out = match args.format {
        Format::Json => tally::json(t, secs, args.connections, !args.new_conn),
        _ => tally::text(t, secs),
    };
    std::io::stdout()
        .write_all(out.as_bytes())
        .map_err(|e| Failure::new(Exit::Output, format!("cannot write the summary: {e}")))?;
    Ok(if t.errors.total() == 0 {
        Exit::Complete
    } else {
        Exit::Status
    })
}

/// The whole request, encoded once: every connection writes these bytes.
fn encode(args: &Args) -> Result<Vec<u8>, Failure> {
    let (body, body_len) = commands::body(args.data.as_ref())?;
    let body = match body {
        Body::Bytes(b) => b,
        Body::File(path) => std::fs::read(&path).map_err(|e| body_unreadable(&path, &e))?,
    };
    let params: Vec<Param> = params::build(&commands::target(args, body_len))?;
    Ok(request_bytes(&params, &body, !args.new_conn))
}

/// BEGIN_REQUEST, the params in one record, the body in records of up
/// to 64 KiB, each padded to 8 bytes as nginx pads them.
fn request_bytes(params: &[Param], body: &[u8], keep: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4096);
    let flags = if keep { protocol::KEEP_CONN } else { 0 };
    let begin = BeginRequest { role: 1, flags }.encode();
    protocol::push_record(&mut out, record_type::BEGIN_REQUEST, 1, &begin);
    let mut pairs = Vec::new();
    for (name, value) in params {
        protocol::encode_pair(&mut pairs, name.as_bytes(), value);
    }
    for chunk in pairs.chunks(MAX_ALIGNED_CONTENT_LEN) {
        protocol::push_record(&mut out, record_type::PARAMS, 1, chunk);
    }
    protocol::push_record(&mut out, record_type::PARAMS, 1, b"");
    for chunk in body.chunks(MAX_ALIGNED_CONTENT_LEN) {
        protocol::push_record(&mut out, record_type::STDIN, 1, chunk);
    }
    protocol::push_record(&mut out, record_type::STDIN, 1, b"");
    out
}

/// A run: the connections, the one epoll set, what was counted.
struct Run<'a> {
    request: &'a [u8],
    target: Target,
    keep: bool,
    /// Requests to begin in all; `None`: until `duration` is over.
    requests: Option<u64>,
    duration: Duration,
    timeout: Duration,
    epoll: Epoll,
    conns: Vec<Conn>,
    /// Requests begun.
    begun: u64,
    tally: Tally,
    /// What each read goes through: answers are checked as they come.
    buf: Vec<u8>,
    started: Instant,
    progress: Progress,
}

impl<'a> Run<'a> {
    fn new(args: &Args, request: &'a [u8], target: Target) -> Result<Run<'a>, Failure> {
        let epoll = Epoll::new()
            .map_err(|e| Failure::new(Exit::Input, format!("cannot make an epoll set: {e}")))?;
        Ok(Run {
            request,
            target,
            keep: !args.new_conn,
            requests: args.requests,
            duration: args.duration.unwrap_or(Duration::from_secs(10)),
            timeout: args.timeout,
            epoll,
            conns: (0..args.connections).map(|_| Conn::new()).collect(),
            begun: 0,
            tally: Tally::new(),
            buf: vec![0; 256 * 1024],
            started: Instant::now(),
            progress: Progress::new(),
        })
    }

    /// Makes every connection (the first failure ends the run: the
    /// address is wrong) and begins a request on each.
    fn start(&mut self) -> Result<(), Failure> {
        let addr = self.describe();
        for i in 0..self.conns.len() {
            let stream = self
                .target
                .connect()
                .map_err(|e| exit::connect_failed(&addr, &e))?;
            self.watch(i, stream);
        }
        self.started = Instant::now();
        self.progress.last = self.started;
        for i in 0..self.conns.len() {
            self.next_request(i, self.started);
        }
        Ok(())
    }

    fn describe(&self) -> String {
        match &self.target {
            Target::Unix(p) => p.display().to_string(),
            Target::Tcp(a) => a.to_string(),
        }
    }

    /// Puts a new connection in slot `i` and in the epoll set.
    fn watch(&mut self, i: usize, stream: conn::Stream) {
        if self.epoll.add_both_ways(stream.fd(), i as u64).is_err() {
            self.tally.errors.connect += 1;
            return;
        }
        self.conns[i].stream = Some(stream);
    }

    /// Whether another request may begin.
    fn more(&self, now: Instant) -> bool {
        match self.requests {
            Some(n) => self.begun < n,
            None => now < self.started + self.duration,
        }
    }

    /// Begins the next request on connection `i`, making the connection
    /// first when it has none; leaves it idle once the run is over.
    fn next_request(&mut self, i: usize, now: Instant) {
        self.conns[i].since = None;
        if !self.more(now) {
            return;
        }
        if self.conns[i].stream.is_none() {
            match self.target.connect() {
                Ok(s) => self.watch(i, s),
                Err(_) => self.tally.errors.connect += 1,
            }
            if self.conns[i].stream.is_none() {
                return;
            }
        }
        self.begun += 1;
        self.conns[i].begin(now);
        if let Err(f) = self.conns[i].flush(self.request) {
            self.fail(i, f);
        }
    }

    /// Counts a failed request; the connection is made again at the next
    /// tick (an application that fails every request is not hammered).
    fn fail(&mut self, i: usize, f: Failed) {
        match f {
            Failed::Closed => self.tally.errors.closed += 1,
            Failed::Protocol => self.tally.errors.protocol += 1,
        }
        self.conns[i].stream = None;
        self.conns[i].since = None;
    }

    /// Writes and reads on connection `i` until the socket has nothing
    /// more to give: an answer that completes begins the next request.
    fn ready(&mut self, i: usize) {
        loop {
            let conn = &mut self.conns[i];
            let read = conn
                .flush(self.request)
                .and_then(|()| conn.read(&mut self.buf));
            let now = Instant::now();
            match read {
                Ok(None) => return,
                Ok(Some(done)) => {
                    let since = self.conns[i].since.unwrap_or(now);
                    self.tally.answer(done.status, done.body, now - since);
                    if !self.keep {
                        self.conns[i].stream = None;
                    }
                    self.next_request(i, now);
                }
                Err(f) => return self.fail(i, f),
            }
        }
    }

    /// Runs the loop until the run is over; returns its length in seconds.
    fn drive(&mut self) -> f64 {
        let mut tokens = [0u64; 64];
        loop {
            let now = Instant::now();
            let in_flight = self.conns.iter().any(|c| c.since.is_some());
            let over = match self.requests {
                Some(_) => !in_flight && !self.more(now),
                None => !self.more(now),
            };
            if over {
                break;
            }
            self.tick(now);
            let n = self.epoll.wait_many(&mut tokens, Some(TICK)).unwrap_or(0);
            for &t in &tokens[..n] {
                self.ready(t as usize);
            }
        }
        let end = match self.requests {
            Some(_) => Instant::now(),
            None => self.started + self.duration,
        };
        self.progress.finish();
        (end - self.started).as_secs_f64()
    }

    /// Times requests out, makes lost connections again, and shows the
    /// progress line once a second.
    fn tick(&mut self, now: Instant) {
        if now.duration_since(self.progress.checked) < TICK {
            return;
        }
        self.progress.checked = now;
        for i in 0..self.conns.len() {
            let c = &self.conns[i];
            let late = c.since.is_some_and(|s| now - s > self.timeout);
            if late {
                self.tally.errors.timeout += 1;
                self.conns[i].stream = None;
                self.next_request(i, now);
            } else if c.stream.is_none() {
                self.next_request(i, now);
            }
        }
        self.progress.show(now, self.started, &self.tally);
    }
}

/// The progress line on stderr, once a second: redrawn on a terminal,
/// a line each time otherwise.
struct Progress {
    last: Instant,
    checked: Instant,
    done_before: u64,
    tty: bool,
    shown: bool,
}

impl Progress {
    fn new() -> Progress {
        let now = Instant::now();
        Progress {
            last: now,
            checked: now,
            done_before: 0,
            tty: sys::isatty(2),
            shown: false,
        }
    }

    fn show(&mut self, now: Instant, started: Instant, t: &Tally) {
        let since = now - self.last;
        if since < Duration::from_secs(1) {
            return;
        }
        let done = t.ended();
        let rate = (done - self.done_before) as f64 / since.as_secs_f64();
        let line = format!(
            "fcgi bench: {:.0} s, {done} requests, {rate:.0}/s now, {} errors",
            (now - started).as_secs_f64(),
            t.errors.total()
        );
        if self.tty {
            eprint!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
        (self.last, self.done_before, self.shown) = (now, done, true);
    }

    fn finish(&self) {
        if self.tty && self.shown {
            eprintln!();
        }
    }
}
