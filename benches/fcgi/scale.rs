//! The scaling run (`cargo bench --bench fcgi -- --scale`): the server
//! pinned to N cores, the load pinned to other cores, for N = 1, 2, 4, ...
//! up to half the machine, against the raw event-loop server started once
//! per core on the same N cores (as `spawn-fcgi -F N` would start it).
//!
//! The load runs in separate processes (this binary again, `--load`), one
//! per load core, each an event loop over its share of the connections,
//! so that the load side is never the limit: each reports its own CPU
//! time, and the table shows how busy the load cores were.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mio::net::UnixStream as MioStream;
use mio::{Events, Interest, Poll, Token};

use fcgi_server::protocol::{self, EndRequest, record_type};

use super::{HEAD, HELLO_BODY, SCENARIOS, Server, encode_request, median, num_cpus};

/// Connections driven at once, in every run.
const CONNS: usize = 64;

/// One load process: drives `conns` connections to `path` for `secs`,
/// keeping them open or not, and prints what it measured on one line.
pub(super) fn load_child(path: &str, conns: usize, keep_conn: bool, secs: f64) -> ! {
    let scenario = if keep_conn {
        SCENARIOS[1]
    } else {
        SCENARIOS[2]
    };
    let request = encode_request(&scenario);
    let cpu0 = cpu_seconds();
    let m = drive(Path::new(path), conns, &request, keep_conn, secs);
    let buckets: Vec<String> = m.hist.iter().map(|(b, n)| format!("{b}:{n}")).collect();
    println!(
        "requests {} errors {} cpu {:.4} wall {:.4} hist {}",
        m.requests,
        m.errors,
        cpu_seconds() - cpu0,
        m.wall,
        buckets.join(",")
    );
    std::process::exit(0)
}

/// This process's user and system CPU time, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // The fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// The log-scale bucket of a latency (5% wide).
fn bucket(d: Duration) -> u32 {
    let us = d.as_secs_f64() * 1e6;
    (us.max(1.0).ln() / 1.05f64.ln()) as u32
}

fn bucket_us(b: u32) -> f64 {
    1.05f64.powi(b as i32 + 1)
}

#[derive(Default)]
struct Measured {
    requests: u64,
    errors: u64,
    wall: f64,
    hist: BTreeMap<u32, u64>,
}

/// One connection of the load.
struct Conn {
    stream: Option<MioStream>,
    buf: Vec<u8>,
    fill: usize,
    /// The response's STDOUT content so far.
    stdout: Vec<u8>,
    sent: Instant,
}

fn drive(path: &Path, conns: usize, request: &[u8], keep: bool, secs: f64) -> Measured {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(256);
    let mut all: Vec<Conn> = (0..conns)
        .map(|_| Conn {
            stream: None,
            buf: vec![0; 4096],
            fill: 0,
            stdout: Vec::with_capacity(128),
            sent: Instant::now(),
        })
        .collect();
    let mut m = Measured::default();
    let start = Instant::now();
    for (i, c) in all.iter_mut().enumerate() {
        c.start(&poll, i, path, request);
    }
    while start.elapsed().as_secs_f64() < secs {
        poll.poll(&mut events, Some(Duration::from_millis(1)))
            .unwrap();
        for ev in &events {
            let i = ev.token().0;
            match all[i].progress() {
                Ok(Some(latency)) => {
                    m.requests += 1;
                    *m.hist.entry(bucket(latency)).or_default() += 1;
                    all[i].next(&poll, i, path, request, keep);
                }
                Ok(None) => {}
                Err(_) => {
                    m.errors += 1;
                    all[i].restart(&poll, i, path, request);
                }
            }
        }
        // Connections refused for a full backlog try again.
        for (i, c) in all.iter_mut().enumerate() {
            if c.stream.is_none() {
                c.start(&poll, i, path, request);
            }
        }
    }
    m.wall = start.elapsed().as_secs_f64();
    m
}

impl Conn {
    /// Connects and sends the request; leaves `stream` empty on failure.
    fn start(&mut self, poll: &Poll, i: usize, path: &Path, request: &[u8]) {
        let Ok(mut s) = MioStream::connect(path) else {
            return;
        };
        poll.registry()
            .register(&mut s, Token(i), Interest::READABLE)
            .unwrap();
        self.stream = Some(s);
        self.send(request);
    }

    fn send(&mut self, request: &[u8]) {
        (self.fill, self.sent) = (0, Instant::now());
        self.stdout.clear();
        let s = self.stream.as_mut().unwrap();
        // A small request fits in an empty socket buffer at once.
        if s.write_all(request).is_err() {
            self.stream = None;
        }
    }

    fn next(&mut self, poll: &Poll, i: usize, path: &Path, request: &[u8], keep: bool) {
        if keep {
            self.send(request);
        } else {
            self.restart(poll, i, path, request);
        }
    }

    fn restart(&mut self, poll: &Poll, i: usize, path: &Path, request: &[u8]) {
        if let Some(mut s) = self.stream.take() {
            let _ = poll.registry().deregister(&mut s);
        }
        self.start(poll, i, path, request);
    }

    /// Reads what is there; the latency once the response is complete
    /// and checked.
    fn progress(&mut self) -> io::Result<Option<Duration>> {
        let s = self.stream.as_mut().ok_or(io::ErrorKind::NotConnected)?;
        // The server may close right after the response (no keep-conn):
        // the end of stream counts only if the response is not complete.
        let mut eof = false;
        while !eof {
            match s.read(&mut self.buf[self.fill..]) {
                Ok(0) => eof = true,
                Ok(n) => self.fill += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
            if self.fill == self.buf.len() {
                self.buf.resize(self.fill * 2, 0);
            }
        }
        let mut at = 0;
        let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_owned());
        while let Some((rec, used)) =
            protocol::decode_record(&self.buf[at..self.fill]).map_err(|e| bad(&e.to_string()))?
        {
            at += used;
            match rec.header.record_type {
                record_type::STDOUT => self.stdout.extend_from_slice(rec.content),
                record_type::END_REQUEST => {
                    let end = EndRequest::decode(rec.content).map_err(|e| bad(&e.to_string()))?;
                    let want = [HEAD, HELLO_BODY].concat();
                    if end.protocol_status != 0 || self.stdout != want {
                        return Err(bad("wrong response"));
                    }
                    return Ok(Some(self.sent.elapsed()));
                }
                _ => {}
            }
        }
        if eof {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.copy_within(at..self.fill, 0);
        self.fill -= at;
        Ok(None)
    }
}

/// What the load processes of one run measured together.
#[derive(Default)]
struct Run {
    rate: f64,
    p99_us: f64,
    errors: u64,
    /// CPU time of the load processes over their wall time and cores.
    load_busy: f64,
}

/// Runs the load processes on `cores` against `path`.
fn run_load(path: &Path, cores: &[usize], keep: bool, secs: f64) -> Run {
    let per = CONNS / cores.len();
    let children: Vec<_> = cores
        .iter()
        .map(|core| {
            Command::new("taskset")
                .args(["-c", &core.to_string()])
                .arg(std::env::current_exe().unwrap())
                .args(["--load", path.to_str().unwrap(), &per.to_string()])
                .arg(if keep { "keep" } else { "new" })
                .arg(secs.to_string())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let (mut requests, mut cpu, mut wall) = (0u64, 0.0, 0.0f64);
    let mut run = Run::default();
    let mut hist: BTreeMap<u32, u64> = BTreeMap::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let line = String::from_utf8(out.stdout).unwrap();
        let f: Vec<&str> = line.split_whitespace().collect();
        requests += f[1].parse::<u64>().unwrap();
        run.errors += f[3].parse::<u64>().unwrap();
        cpu += f[5].parse::<f64>().unwrap();
        wall = wall.max(f[7].parse().unwrap());
        for pair in f.get(9).unwrap_or(&"").split(',').filter(|p| !p.is_empty()) {
            let (b, n) = pair.split_once(':').unwrap();
            *hist.entry(b.parse().unwrap()).or_default() += n.parse::<u64>().unwrap();
        }
    }
    run.rate = requests as f64 / wall;
    run.load_busy = cpu / wall / cores.len() as f64;
    let mut seen = 0;
    for (b, n) in &hist {
        seen += n;
        if seen as f64 >= 0.99 * requests as f64 {
            run.p99_us = bucket_us(*b);
            break;
        }
    }
    run
}

/// A command run under `taskset` on `cores`.
fn pinned(cores: &[usize], program: &Path, args: &[&str]) -> Command {
    let list: Vec<String> = cores.iter().map(usize::to_string).collect();
    let mut c = Command::new("taskset");
    c.args(["-c", &list.join(",")]).arg(program).args(args);
    c
}

/// The scaling table.
pub(super) fn run(apps: &Path, rounds: usize, secs: f64) {
    let cpus = num_cpus();
    let exe = std::env::current_exe().unwrap();
    println!(
        "fcgi-server scaling: {CONNS} connections of hello; server on N cores, load on others; \
         {rounds} rounds of {secs:.1} s, medians\nmachine: {cpus} CPUs\n"
    );
    println!(
        "{:>3} {:>10} {:>10} {:>6} {:>11} {:>10} {:>10} {:>6} {:>11}  load busy (raw keep/new)",
        "N",
        "keep ours",
        "keep raw",
        "ratio",
        "p99 us o/r",
        "new ours",
        "new raw",
        "ratio",
        "p99 us o/r",
    );
    let mut n = 1;
    let mut load_bound = false;
    while n == 1 || 2 * n <= cpus {
        let server_cores: Vec<usize> = (0..n).collect();
        let load_cores: Vec<usize> = (n..cpus.min(n + n.max(cpus / 2))).collect();
        let ours = || {
            let cmd = pinned(&server_cores, &apps.join("hello"), &[]);
            Server::start(vec![cmd])
        };
        let raw = || {
            let cmds = (0..n)
                .map(|_| pinned(&server_cores, &exe, &["--raw-server", "epoll", "hello"]))
                .collect();
            Server::start(cmds)
        };
        let mut cells = Vec::new();
        for keep in [true, false] {
            let (mut o, mut r) = (Vec::new(), Vec::new());
            for _ in 0..rounds {
                for (out, start) in [(&mut o, &ours as &dyn Fn() -> Server), (&mut r, &raw)] {
                    let server = start();
                    let _ = run_load(&server.path, &load_cores, keep, secs.min(0.2));
                    out.push(run_load(&server.path, &load_cores, keep, secs));
                }
            }
            cells.push((summary(&mut o), summary(&mut r)));
        }
        let [(ko, kr), (no, nr)] = [cells[0], cells[1]];
        load_bound |= kr.2 >= LOAD_BOUND || nr.2 >= LOAD_BOUND;
        println!(
            "{n:>3} {:>10.0} {:>10.0} {:>6} {:>5.0}/{:<5.0} {:>10.0} {:>10.0} {:>6} {:>5.0}/{:<5.0}  {:.2}/{:.2}{}",
            ko.0,
            kr.0,
            ratio(ko.0, kr.0, kr.2),
            ko.1,
            kr.1,
            no.0,
            nr.0,
            ratio(no.0, nr.0, nr.2),
            no.1,
            nr.1,
            kr.2,
            nr.2,
            if ko.3 + kr.3 + no.3 + nr.3 > 0 {
                "  (errors!)"
            } else {
                ""
            }
        );
        n *= 2;
    }
    if load_bound {
        println!(
            "\n<= : the load cores were at least {:.0}% busy against the raw server, so its \
             figure is a floor of the ceiling and the ratio an upper bound (n/a where that \
             bound is above 1.0); give the load more cores (a machine with 4 CPUs or more) \
             for a ratio to quote.",
            LOAD_BOUND * 100.0
        );
    }
}

/// Load cores busier than this (CPU time over wall time) may be what
/// limits the rate, rather than the server.
const LOAD_BOUND: f64 = 0.9;

/// `ours / raw`, marked as an upper bound where the load was the limit;
/// none at all where that bound is above 1.0 (the raw figure is then
/// plainly not the ceiling, and says nothing of the server).
fn ratio(ours: f64, raw: f64, raw_load_busy: f64) -> String {
    let r = ours / raw;
    match (raw_load_busy >= LOAD_BOUND, r > 1.0) {
        (true, true) => "n/a".to_owned(),
        (true, false) => format!("<={r:.2}"),
        (false, _) => format!("{r:.2}"),
    }
}

/// Medians of rate, p99, load busy; total errors.
fn summary(runs: &mut [Run]) -> (f64, f64, f64, u64) {
    let mut rate: Vec<f64> = runs.iter().map(|r| r.rate).collect();
    let mut p99: Vec<f64> = runs.iter().map(|r| r.p99_us).collect();
    let mut busy: Vec<f64> = runs.iter().map(|r| r.load_busy).collect();
    let errors = runs.iter().map(|r| r.errors).sum();
    (
        median(&mut rate),
        median(&mut p99),
        median(&mut busy),
        errors,
    )
}
