//! Throughput, latency, memory and start-up of the server, as ratios to a
//! raw baseline measured in the same run.
//!
//! `cargo bench --bench fcgi` runs every scenario against two servers, each
//! started as lighttpd starts a FastCGI program (a unix listening socket on
//! fd 0): the project's `examples/hello` / `examples/echo`, and raw
//! servers (this binary, re-executed with `--raw-server`) that only walk
//! record headers and write a precomputed response, in three shapes (see
//! `raw.rs`); the best of them per scenario is the ceiling of this
//! machine. Rounds alternate between the servers; the table shows medians,
//! and the ratio is the median of the rounds' ratios.
//! `cargo bench --bench fcgi -- --smoke` is a short run that only checks
//! that everything works; `-- --only S4,S5` runs some scenarios alone
//! (`E2E` names the end-to-end table); `-- --no-adapters` leaves the
//! adapters out;
//! `-- --scale` is the scaling run (`scale.rs`).
//!
//! Two load generators drive S1-S5, one after the other on the same
//! server process, and each has its own ratio:
//! - the main one is the crate's `fcgi bench` (`src/cli/bench/`): one
//!   thread, one epoll set over every connection, each connection's next
//!   request sent the moment its answer is complete, as a web server's
//!   event loop (an nginx worker, lighttpd) drives an application;
//! - the second is one blocking thread per connection (as Apache
//!   mod_proxy_fcgi's threads drive one), through the crate's protocol
//!   codec.
//!
//! Both check every response (record framing, END_REQUEST status, the
//! status and the body's length; the thread client the exact hello body
//! too); an error fails the run.
//!
//! Then the end-to-end table (`e2e.rs`): wrk -> nginx or lighttpd -> the
//! application, against the raw server behind the same front end
//! (`-- --only E2E` runs it alone).

use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use fcgi_server::protocol::{self, BeginRequest, EndRequest, MAX_ALIGNED_CONTENT_LEN, record_type};

#[path = "fcgi/cold.rs"]
mod cold;
#[path = "fcgi/e2e.rs"]
mod e2e;
#[path = "fcgi/evloop.rs"]
mod evloop;
#[path = "fcgi/raw.rs"]
mod raw;
#[path = "fcgi/scale.rs"]
mod scale;

use raw::Shape;

const HELLO_BODY: &[u8] = b"Hello, World!\n";
const HEAD: &[u8] = b"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n";
const MIB: usize = 1 << 20;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--raw-server") {
        raw::serve(&args[i + 1], &args[i + 2]);
    }
    if let Some(i) = args.iter().position(|a| a == "--load") {
        let secs = args[i + 4].parse().unwrap();
        scale::load_child(
            &args[i + 1],
            args[i + 2].parse().unwrap(),
            args[i + 3] == "keep",
            secs,
        );
    }
    let smoke = args.iter().any(|a| a == "--smoke");
    let others: Vec<Other> = args
        .windows(2)
        .filter(|w| w[0] == "--other")
        .map(|w| Other::parse(&w[1]))
        .collect();
    // `--only S4,S5` runs those scenarios alone (S6 needs S2's peak).
    let only: Vec<String> = args
        .windows(2)
        .filter(|w| w[0] == "--only")
        .flat_map(|w| w[1].split(',').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    let (rounds, secs, starts) = if smoke { (1, 0.2, 2) } else { (5, 1.0, 15) };
    let apps = build_examples();
    let mut cfg = Bench {
        rounds,
        secs,
        starts,
        others,
        only,
        fcgi: apps.parent().unwrap().join("fcgi"),
        post_body: TempDir::new(),
        smoke,
    };
    if args.iter().any(|a| a == "--scale") {
        scale::run(&apps, cfg.rounds, cfg.secs);
    } else {
        if !args.iter().any(|a| a == "--no-adapters") {
            cfg.others.extend(Other::adapters(&apps));
        }
        cfg.run(&apps);
    }
}

/// Builds the example applications in release mode, those on the adapters
/// too (with every feature, as `cargo test --release --all-features`
/// builds them, so that a CI run builds them once); returns their
/// directory.
fn build_examples() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let ok = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--examples",
            "--bins",
            "--quiet",
            "--all-features",
        ])
        .current_dir(manifest)
        .status()
        .expect("cargo");
    assert!(ok.success(), "building the examples failed");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or(manifest.join("target"), PathBuf::from);
    target.join("release").join("examples")
}

/// A server under test: one process or several, each started with the
/// same listening socket on fd 0.
struct Server {
    children: Vec<Child>,
    path: PathBuf,
    _dir: TempDir,
}

impl Server {
    fn start(cmds: Vec<Command>) -> Server {
        let dir = TempDir::new();
        let path = dir.0.join("bench.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let children = cmds
            .into_iter()
            .map(|mut cmd| {
                let fd = listener.try_clone().unwrap();
                // The servers' own log lines (start-up, shutdown) would
                // interleave with the table.
                cmd.stdin(Stdio::from(OwnedFd::from(fd)))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        Server {
            children,
            path,
            _dir: dir,
        }
    }

    /// A `/proc/PID/status` figure of the (first) process, in KiB.
    fn status_kib(&self, key: &str) -> u64 {
        let pid = self.children[0].id();
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        use std::sync::atomic::AtomicUsize;
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("fcgi-bench-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Ours,
    /// One shape of the raw baseline.
    Raw(Shape),
    /// Another implementation, from `--other`.
    Other(usize),
}

/// Another FastCGI implementation to run through the same scenarios
/// (`benches/compare.sh` builds them): `--other NAME=HELLO|ECHO`, each
/// command a space-separated argument list, started like the others.
struct Other {
    name: String,
    hello: Vec<String>,
    echo: Vec<String>,
    /// One of the project's adapters: its targets are ratios to the plain
    /// closure (`examples/hello`, `examples/echo`), not to the raw server.
    adapter: Option<[&'static str; 5]>,
}

impl Other {
    fn parse(spec: &str) -> Other {
        let (name, cmds) = spec.split_once('=').expect("--other NAME=HELLO|ECHO");
        let (hello, echo) = cmds.split_once('|').expect("--other NAME=HELLO|ECHO");
        let argv = |c: &str| c.split_whitespace().map(str::to_owned).collect();
        Other {
            name: name.to_owned(),
            hello: argv(hello),
            echo: argv(echo),
            adapter: None,
        }
    }

    /// The `http` and `tower` adapters' hello and echo, run beside the
    /// plain closure in every scenario.
    fn adapters(apps: &Path) -> Vec<Other> {
        let app = |name: &str| vec![apps.join(name).to_string_lossy().into_owned()];
        vec![
            Other {
                name: "http adapter".into(),
                hello: app("http_hello"),
                echo: app("http_echo"),
                adapter: Some([">= 0.85", ">= 0.85", ">= 0.85", ">= 0.80", ">= 0.80"]),
            },
            Other {
                name: "tower adapter (axum)".into(),
                hello: app("axum_hello"),
                echo: app("axum_echo"),
                adapter: Some([">= 0.60", ">= 0.60", ">= 0.60", ">= 0.80", ">= 0.80"]),
            },
        ]
    }
}

/// What one scenario sends and expects.
#[derive(Clone, Copy)]
struct Scenario {
    name: &'static str,
    what: &'static str,
    app: &'static str,
    raw_mode: &'static str,
    conns: usize,
    keep_conn: bool,
    query: &'static str,
    body_len: usize,
    /// Bytes of response body expected (after the header block).
    expect_len: usize,
    /// Report MB/s of body instead of requests/s.
    bytes: bool,
    target: &'static str,
}

const SCENARIOS: [Scenario; 5] = [
    Scenario {
        name: "S1",
        what: "hello, keep-conn, 1 connection",
        app: "hello",
        raw_mode: "hello",
        conns: 1,
        keep_conn: true,
        query: "",
        body_len: 0,
        expect_len: 14,
        bytes: false,
        target: ">= 1.00",
    },
    Scenario {
        name: "S2",
        what: "hello, keep-conn, 16 connections",
        app: "hello",
        raw_mode: "hello",
        conns: 16,
        keep_conn: true,
        query: "",
        body_len: 0,
        expect_len: 14,
        bytes: false,
        target: ">= 0.75",
    },
    Scenario {
        name: "S3",
        what: "hello, new connection per request, 16 at once",
        app: "hello",
        raw_mode: "hello",
        conns: 16,
        keep_conn: false,
        query: "",
        body_len: 0,
        expect_len: 14,
        bytes: false,
        target: ">= 0.85",
    },
    Scenario {
        name: "S4",
        what: "GET size=1048576, 4 connections",
        app: "echo",
        raw_mode: "download",
        conns: 4,
        keep_conn: true,
        query: "size=1048576",
        body_len: 0,
        expect_len: MIB,
        bytes: true,
        target: ">= 1.00",
    },
    Scenario {
        name: "S5",
        what: "1 MiB POST echoed, 4 connections",
        app: "echo",
        raw_mode: "echo",
        conns: 4,
        keep_conn: true,
        query: "",
        body_len: MIB,
        expect_len: MIB,
        bytes: true,
        target: ">= 0.75",
    },
];

/// About 25 params, as nginx's fastcgi_params sends them.
fn nginx_params(method: &str, query: &str, body_len: usize) -> Vec<(&'static str, String)> {
    let len = if body_len > 0 {
        body_len.to_string()
    } else {
        String::new()
    };
    let uri = if query.is_empty() {
        "/app/bench".to_owned()
    } else {
        format!("/app/bench?{query}")
    };
    vec![
        ("QUERY_STRING", query.to_owned()),
        ("REQUEST_METHOD", method.to_owned()),
        (
            "CONTENT_TYPE",
            if body_len > 0 {
                "application/octet-stream".into()
            } else {
                String::new()
            },
        ),
        ("CONTENT_LENGTH", len),
        ("SCRIPT_NAME", "/app".into()),
        ("REQUEST_URI", uri),
        ("DOCUMENT_URI", "/app/bench".into()),
        ("DOCUMENT_ROOT", "/var/www/html".into()),
        ("SERVER_PROTOCOL", "HTTP/1.1".into()),
        ("REQUEST_SCHEME", "http".into()),
        ("GATEWAY_INTERFACE", "CGI/1.1".into()),
        ("SERVER_SOFTWARE", "nginx/1.22.1".into()),
        ("REMOTE_ADDR", "127.0.0.1".into()),
        ("REMOTE_PORT", "51234".into()),
        ("SERVER_ADDR", "127.0.0.1".into()),
        ("SERVER_PORT", "80".into()),
        ("SERVER_NAME", "localhost".into()),
        ("REDIRECT_STATUS", "200".into()),
        ("PATH_INFO", "/bench".into()),
        ("HTTP_HOST", "localhost".into()),
        (
            "HTTP_USER_AGENT",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0".into(),
        ),
        (
            "HTTP_ACCEPT",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8".into(),
        ),
        ("HTTP_ACCEPT_LANGUAGE", "en-US,en;q=0.5".into()),
        ("HTTP_ACCEPT_ENCODING", "gzip, deflate, br".into()),
        ("HTTP_CONNECTION", "keep-alive".into()),
    ]
}

/// The whole request, encoded once.
fn encode_request(s: &Scenario) -> Vec<u8> {
    let method = if s.body_len > 0 { "POST" } else { "GET" };
    let mut out = Vec::new();
    let push = |out: &mut Vec<u8>, t: u8, content: &[u8]| protocol::push_record(out, t, 1, content);
    let flags = if s.keep_conn { protocol::KEEP_CONN } else { 0 };
    push(
        &mut out,
        record_type::BEGIN_REQUEST,
        &BeginRequest { role: 1, flags }.encode(),
    );
    let mut params = Vec::new();
    for (k, v) in nginx_params(method, s.query, s.body_len) {
        protocol::encode_pair(&mut params, k.as_bytes(), v.as_bytes());
    }
    push(&mut out, record_type::PARAMS, &params);
    push(&mut out, record_type::PARAMS, b"");
    let body: Vec<u8> = (0..s.body_len).map(|i| (i % 251) as u8).collect();
    for chunk in body.chunks(MAX_ALIGNED_CONTENT_LEN) {
        push(&mut out, record_type::STDIN, chunk);
    }
    push(&mut out, record_type::STDIN, b"");
    out
}

/// Reads one response off `stream`, checking it; returns the body length.
struct Reader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Reader {
    fn new() -> Reader {
        Reader {
            buf: vec![0; 512 * 1024],
            start: 0,
            end: 0,
        }
    }

    fn response(&mut self, stream: &mut UnixStream, check_hello: bool) -> io::Result<usize> {
        let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_owned());
        // The first bytes of STDOUT (headers and the start of the body) and the total.
        let mut first = [0u8; 512];
        let mut stdout = 0usize;
        loop {
            let Some((rec, used)) = protocol::decode_record(&self.buf[self.start..self.end])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            else {
                if self.start > 0 {
                    self.buf.copy_within(self.start..self.end, 0);
                    self.end -= self.start;
                    self.start = 0;
                }
                let n = stream.read(&mut self.buf[self.end..])?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                self.end += n;
                continue;
            };
            match rec.header.record_type {
                record_type::STDOUT => {
                    let c = rec.content;
                    if stdout < first.len() {
                        let n = c.len().min(first.len() - stdout);
                        first[stdout..stdout + n].copy_from_slice(&c[..n]);
                    }
                    stdout += c.len();
                }
                record_type::STDERR => {}
                record_type::END_REQUEST => {
                    let end = EndRequest::decode(rec.content)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    self.start += used;
                    if end.protocol_status != 0 {
                        return Err(bad("request not complete"));
                    }
                    return body_len(&first[..stdout.min(first.len())], stdout, check_hello);
                }
                _ => return Err(bad("unexpected record")),
            }
            self.start += used;
        }
    }
}

/// Checks a CGI response from its first bytes (`Status`, if sent, must be
/// 200; a hello body must be exactly that) and returns the body's length.
fn body_len(first: &[u8], total: usize, check_hello: bool) -> io::Result<usize> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_owned());
    let (head_end, sep) = match first.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (i, 4),
        None => (
            first
                .windows(2)
                .position(|w| w == b"\n\n")
                .ok_or_else(|| bad("no header end"))?,
            2,
        ),
    };
    let head = std::str::from_utf8(&first[..head_end]).map_err(|_| bad("headers not UTF-8"))?;
    let status_ok = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("status"))
        .is_none_or(|(_, v)| v.trim().starts_with("200"));
    if !status_ok {
        return Err(bad("not a 200"));
    }
    let body_at = head_end + sep;
    if check_hello && first.get(body_at..) != Some(HELLO_BODY) {
        return Err(bad("wrong hello body"));
    }
    Ok(total - body_at)
}

/// What a load run measured.
#[derive(Default, Clone)]
struct Load {
    requests: u64,
    body_bytes: u64,
    secs: f64,
    latencies: Vec<Duration>,
    /// p50 and p99 in microseconds, when the client gave them (`fcgi bench`).
    percentiles: Option<(f64, f64)>,
    per_conn: Vec<u64>,
}

/// Drives `s.conns` connections for `secs` seconds.
fn load(path: &Path, s: &Scenario, secs: f64) -> Load {
    let request = Arc::new(encode_request(s));
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(s.conns + 1));
    let workers: Vec<_> = (0..s.conns)
        .map(|_| {
            let (request, stop, barrier) = (request.clone(), stop.clone(), barrier.clone());
            let (path, s) = (path.to_owned(), *s);
            thread::spawn(move || {
                let mut reader = Reader::new();
                let timed = !s.bytes;
                let mut latencies = Vec::with_capacity(if timed { 1 << 16 } else { 0 });
                let (mut n, mut bytes) = (0u64, 0u64);
                let connect = || {
                    let s = UnixStream::connect(&path).unwrap();
                    // A server that stops answering fails the run instead of hanging it.
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    s
                };
                let mut stream = connect();
                barrier.wait();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    if !s.keep_conn && n > 0 {
                        stream = connect();
                        reader = Reader {
                            start: 0,
                            end: 0,
                            ..reader
                        };
                    }
                    stream.write_all(&request).unwrap();
                    let len = reader.response(&mut stream, s.expect_len == 14).unwrap();
                    assert_eq!(len, s.expect_len, "{}: body length", s.name);
                    if timed {
                        latencies.push(t.elapsed());
                    }
                    n += 1;
                    bytes += len as u64;
                }
                (n, bytes, latencies)
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let mut out = Load::default();
    for w in workers {
        let (n, bytes, lat) = w.join().unwrap();
        out.requests += n;
        out.body_bytes += bytes;
        out.per_conn.push(n);
        out.latencies.extend(lat);
    }
    out.secs = start.elapsed().as_secs_f64();
    out
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The median of the rounds' ratios `a / b`: each round's two servers ran
/// next to each other, so the ratio of a round is spared most of what the
/// machine's state does to both from one second to the next.
fn paired(a: &[f64], b: &[f64]) -> f64 {
    let mut r: Vec<f64> = a.iter().zip(b).map(|(a, b)| a / b).collect();
    if r.is_empty() {
        f64::NAN
    } else {
        median(&mut r)
    }
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p) as usize]
}

struct Bench {
    rounds: usize,
    secs: f64,
    starts: usize,
    others: Vec<Other>,
    /// Scenario names to run; empty: all.
    only: Vec<String>,
    /// The `fcgi` tool, whose `bench` is the event-loop client.
    fcgi: PathBuf,
    /// Where S5's request body is written for `fcgi bench -d @FILE`.
    post_body: TempDir,
    smoke: bool,
}

/// The medians of one server's rounds in one scenario.
#[derive(Clone, Copy, Default)]
struct Figures {
    rate: f64,
    p50_us: f64,
    p99_us: f64,
    /// The share of the mean that the slowest connection got (lowest round).
    fairness: f64,
}

/// What every round of one server gave in one scenario.
#[derive(Default)]
struct Rounds {
    rates: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    fairness: Vec<f64>,
}

impl Rounds {
    fn add(&mut self, s: &Scenario, mut m: Load) {
        self.rates.push(if s.bytes {
            m.body_bytes as f64 / m.secs / MIB as f64
        } else {
            m.requests as f64 / m.secs
        });
        if !m.latencies.is_empty() {
            self.p50
                .push(percentile(&mut m.latencies, 0.50).as_secs_f64() * 1e6);
            self.p99
                .push(percentile(&mut m.latencies, 0.99).as_secs_f64() * 1e6);
        }
        if let (Some((p50, p99)), false) = (m.percentiles, s.bytes) {
            self.p50.push(p50);
            self.p99.push(p99);
        }
        if m.per_conn.is_empty() {
            return;
        }
        let mean = m.requests as f64 / m.per_conn.len() as f64;
        let min = *m.per_conn.iter().min().unwrap_or(&0) as f64;
        self.fairness.push(min / mean);
    }

    /// The medians; the rounds stay in their order, for [`paired`].
    fn figures(&self) -> Figures {
        let med = |v: &[f64]| {
            if v.is_empty() {
                f64::NAN
            } else {
                median(&mut v.to_vec())
            }
        };
        Figures {
            rate: med(&self.rates),
            p50_us: med(&self.p50),
            p99_us: med(&self.p99),
            fairness: self.fairness.iter().copied().fold(f64::NAN, f64::min),
        }
    }
}

impl Bench {
    fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }

    /// The processes of `kind` for `app` (ours, the others) or `raw_mode`.
    fn commands(&self, kind: Kind, apps: &Path, app: &str, raw_mode: &str) -> Vec<Command> {
        match kind {
            Kind::Ours => {
                let mut c = Command::new(apps.join(app));
                // The library's default pool, unless the run asks for a size.
                match std::env::var("FCGI_BENCH_WORKERS") {
                    Ok(n) => c.env("FCGI_WORKERS", n),
                    Err(_) => c.env_remove("FCGI_WORKERS"),
                };
                vec![c]
            }
            Kind::Raw(shape) => {
                let n = if shape == Shape::Prefork {
                    num_cpus()
                } else {
                    1
                };
                (0..n)
                    .map(|_| {
                        let mut c = Command::new(std::env::current_exe().unwrap());
                        c.args(["--raw-server", shape.arg(), raw_mode]);
                        c
                    })
                    .collect()
            }
            Kind::Other(i) => {
                let o = &self.others[i];
                let argv = if app == "hello" { &o.hello } else { &o.echo };
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                vec![c]
            }
        }
    }

    fn start(&self, kind: Kind, apps: &Path, s: &Scenario) -> Server {
        Server::start(self.commands(kind, apps, s.app, s.raw_mode))
    }

    /// Every server of the run: the raw shapes, ours, then the others.
    fn kinds(&self) -> Vec<Kind> {
        let mut k: Vec<Kind> = Shape::ALL.iter().map(|&s| Kind::Raw(s)).collect();
        k.push(Kind::Ours);
        k.extend((0..self.others.len()).map(Kind::Other));
        k
    }

    fn run(&self, apps: &Path) {
        println!(
            "fcgi-server benchmark: {} rounds of {:.1} s per scenario and server, interleaved; medians, ratios the median of the rounds' ratios.",
            self.rounds, self.secs
        );
        println!(
            "machine: {} CPUs; unix sockets; servers started with their socket on fd 0.",
            num_cpus()
        );
        println!(
            "client: fcgi bench (one thread, epoll, every connection; the main figures), then one blocking thread per connection (the second line)"
        );
        println!(
            "raw: the best, per scenario, of {} (see benches/fcgi/raw.rs)\n",
            Shape::ALL.map(Shape::name).join(", ")
        );
        println!(
            "{:<4} {:<46} {:>14} {:>14} {:>7}  target",
            "", "scenario", "fcgi-server", "best raw", "ratio"
        );
        let mut s6 = (0u64, 0u64);
        let mut others = OthersTable::new(self.others.len());
        self.write_post_body();
        for s in SCENARIOS.iter().filter(|s| self.wants(s.name)) {
            let (rounds, threads) = self.rounds_of(apps, s, &mut s6, &mut others);
            let figures: Vec<Figures> = rounds.iter().map(Rounds::figures).collect();
            let raws = &figures[..Shape::ALL.len()];
            let best = (0..raws.len())
                .max_by(|&a, &b| raws[a].rate.total_cmp(&raws[b].rate))
                .unwrap();
            let ours = figures[Shape::ALL.len()];
            let rates = |k: usize| &rounds[k].rates;
            let ratio = paired(rates(Shape::ALL.len()), rates(best));
            self.print_scenario(s, (&ours, ratio), raws, best);
            print_thread_client(s, &threads);
            self.note_others(s, (&rounds, &threads), best, &mut others);
        }
        if self.wants("S6") {
            self.memory(apps, s6);
        }
        if self.wants("S7") {
            self.cold_start(apps);
        }
        if SCENARIOS.iter().any(|s| self.wants(s.name)) {
            self.print_others(apps, &others);
        }
        if self.wants("E2E") {
            let raw = std::env::current_exe().unwrap();
            let (rounds, secs) = if self.smoke { (1, 0.3) } else { (3, 2.0) };
            e2e::run(&apps.join("hello"), &raw, rounds, secs, self.smoke);
        }
    }

    /// The other implementations' ratios in scenario `s`: the adapters
    /// against the plain closure, the others against the best raw shape
    /// (`best` under the event-loop client).
    fn note_others(
        &self,
        s: &Scenario,
        (rounds, threads): (&[Rounds], &[Rounds]),
        best: usize,
        others: &mut OthersTable,
    ) {
        let rates = |k: usize| &rounds[k].rates;
        for i in 0..self.others.len() {
            let k = Shape::ALL.len() + 1 + i;
            // Fairness: the thread client counts each connection's requests.
            let theirs = threads[k].figures();
            // The adapters against the plain closure, others against raw.
            let base = if self.others[i].adapter.is_some() {
                Shape::ALL.len()
            } else {
                best
            };
            others.ratios[i].push(paired(rates(k), rates(base)));
            let thread_base = if self.others[i].adapter.is_some() {
                Shape::ALL.len()
            } else {
                best_of(&threads[..Shape::ALL.len()])
            };
            others.threads[i].push(paired(&threads[k].rates, &threads[thread_base].rates));
            if s.name == "S2" {
                others.fair[i] = theirs.fairness;
            }
        }
    }

    /// Every round of every server in scenario `s`, under the event-loop
    /// client and then the thread client; S2 also notes peak memory.
    fn rounds_of(
        &self,
        apps: &Path,
        s: &Scenario,
        s6: &mut (u64, u64),
        others: &mut OthersTable,
    ) -> (Vec<Rounds>, Vec<Rounds>) {
        let fresh = || -> Vec<Rounds> { self.kinds().iter().map(|_| Rounds::default()).collect() };
        // The event-loop client's rounds, and the thread client's.
        let (mut rounds, mut threads) = (fresh(), fresh());
        for _ in 0..self.rounds {
            for (k, kind) in self.kinds().into_iter().enumerate() {
                let server = self.start(kind, apps, s);
                // Another implementation may fail a scenario: say so, go on.
                let measured = std::panic::catch_unwind(|| {
                    let _ = self.event_loop(&server, s, self.secs.min(0.2));
                    let el = self.event_loop(&server, s, self.secs);
                    (el, load(&server.path, s, self.secs))
                });
                match (kind, measured) {
                    (Kind::Other(_), Err(_)) => {
                        rounds[k].rates.push(f64::NAN);
                        threads[k].rates.push(f64::NAN);
                    }
                    (_, Err(e)) => std::panic::resume_unwind(e),
                    (_, Ok((el, th))) => {
                        rounds[k].add(s, el);
                        threads[k].add(s, th);
                    }
                }
                if s.name == "S2" {
                    if kind == Kind::Ours {
                        *s6 = (
                            s6.0.max(server.status_kib("VmRSS:")),
                            s6.1.max(server.status_kib("VmHWM:")),
                        );
                    } else if let Kind::Other(i) = kind {
                        others.peak[i] = others.peak[i].max(server.status_kib("VmHWM:"));
                    }
                }
            }
        }
        (rounds, threads)
    }

    /// One run of the event-loop client against `server`.
    fn event_loop(&self, server: &Server, s: &Scenario, secs: f64) -> Load {
        let body = self.post_body.0.join("body");
        evloop::load(&self.fcgi, &server.path, s, secs, &body)
    }

    /// S5's request body, as the thread client sends it, in a file.
    fn write_post_body(&self) {
        let body: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();
        std::fs::write(self.post_body.0.join("body"), body).unwrap();
    }

    fn print_scenario(
        &self,
        s: &Scenario,
        (ours, ratio): (&Figures, f64),
        raws: &[Figures],
        best: usize,
    ) {
        let unit = if s.bytes { "MB/s" } else { "req/s" };
        let raw = &raws[best];
        println!(
            "{:<4} {:<46} {:>9.0} {:<4} {:>9.0} {:<4} {:>7.2}  {}",
            s.name, s.what, ours.rate, unit, raw.rate, unit, ratio, s.target
        );
        let shapes: Vec<String> = Shape::ALL
            .iter()
            .zip(raws)
            .map(|(shape, f)| format!("{} {:.0}", shape.name(), f.rate))
            .collect();
        println!("{:<4}   raw shapes ({unit}): {}", "", shapes.join(", "));
        if !s.bytes {
            println!(
                "{:<4}   latency p50 / p99: fcgi-server {:.1} / {:.1} us, best raw {:.1} / {:.1} us (p99 ratio {:.2})",
                "",
                ours.p50_us,
                ours.p99_us,
                raw.p50_us,
                raw.p99_us,
                ours.p99_us / raw.p99_us
            );
        }
        if s.conns > 1 && s.keep_conn && !s.bytes && ours.fairness.is_finite() {
            println!(
                "{:<4}   fairness: the slowest connection did {:.2} of the mean (fcgi-server)",
                "", ours.fairness
            );
        }
    }

    /// S6: resident memory idle, and the peak seen during S2.
    fn memory(&self, apps: &Path, s6: (u64, u64)) {
        let (idle, private) = self.idle_rss_of(Kind::Ours, apps);
        println!(
            "S6   resident memory: idle {:.2} MiB (private {:.2}), peak during S2 {:.2} MiB (VmRSS {:.2} MiB)  target <= 1.5 / <= 4",
            idle as f64 / 1024.0,
            private as f64 / 1024.0,
            s6.1 as f64 / 1024.0,
            s6.0 as f64 / 1024.0
        );
    }

    /// Resident memory of a freshly started hello after one request, in
    /// KiB: all of it (VmRSS, which counts the shared pages of libc and the
    /// binary that are mapped), and its private, anonymous part (RssAnon).
    fn idle_rss_of(&self, kind: Kind, apps: &Path) -> (u64, u64) {
        let server = self.start(kind, apps, &SCENARIOS[0]);
        let s = SCENARIOS[0];
        let mut stream = UnixStream::connect(&server.path).unwrap();
        stream.write_all(&encode_request(&s)).unwrap();
        let _ = Reader::new().response(&mut stream, true);
        thread::sleep(Duration::from_millis(100));
        (server.status_kib("VmRSS:"), server.status_kib("RssAnon:"))
    }

    /// S7: from exec to the first complete response, ours against the
    /// fastest raw start (a C program where a compiler is at hand).
    fn cold_start(&self, apps: &Path) {
        let (raw_cmd, what) = match cold::c_server() {
            Some(path) => (Command::new(path), "a C program"),
            None => {
                let mut c = Command::new(std::env::current_exe().unwrap());
                c.args(["--raw-server", "threads", "hello"]);
                (c, "the raw threads server (no C compiler found)")
            }
        };
        let raw = self.start_ms(|| clone_command(&raw_cmd));
        let ours = self.start_ms(|| self.commands(Kind::Ours, apps, "hello", "hello").remove(0));
        println!(
            "S7   cold start, exec to first response: {ours:.2} ms vs raw {raw:.2} ms ({what})  ratio {:.2}  target <= 1.5",
            ours / raw
        );
    }

    /// Median milliseconds from exec to the first complete hello response.
    fn start_ms(&self, command: impl Fn() -> Command) -> f64 {
        let request = encode_request(&SCENARIOS[0]);
        let mut times = Vec::new();
        for _ in 0..self.starts {
            let dir = TempDir::new();
            let path = dir.0.join("cold.sock");
            let listener = UnixListener::bind(&path).unwrap();
            let mut stream = UnixStream::connect(&path).unwrap();
            let start = Instant::now();
            let mut child = command()
                .stdin(Stdio::from(OwnedFd::from(listener)))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            stream.write_all(&request).unwrap();
            let ok = Reader::new().response(&mut stream, true).is_ok();
            times.push(if ok {
                start.elapsed().as_secs_f64() * 1e3
            } else {
                f64::NAN
            });
            let _ = child.kill();
            let _ = child.wait();
        }
        median(&mut times)
    }

    /// The other implementations' ratios to the best raw server of the
    /// same rounds, then the adapters' to the plain closure's.
    fn print_others(&self, apps: &Path, t: &OthersTable) {
        for adapters in [false, true] {
            let chosen: Vec<usize> = (0..self.others.len())
                .filter(|&i| self.others[i].adapter.is_some() == adapters)
                .collect();
            if chosen.is_empty() {
                continue;
            }
            if adapters {
                println!(
                    "\nadapters, ratio to the plain closure (examples/hello, examples/echo) of the same rounds:"
                );
            } else {
                println!(
                    "\nother implementations, ratio to the best raw server of the same rounds:"
                );
            }
            print!("{:<24}", "");
            for s in SCENARIOS.iter().filter(|s| self.wants(s.name)) {
                print!(" {:>6}", s.name);
            }
            println!("  S6 idle (private) / peak MiB    S7 ms  S2 slowest conn / mean");
            for i in chosen {
                self.print_other(apps, i, t);
            }
        }
    }

    fn print_other(&self, apps: &Path, i: usize, t: &OthersTable) {
        let o = &self.others[i];
        print!("{:<24}", o.name);
        for r in &t.ratios[i] {
            if r.is_nan() {
                print!(" {:>6}", "failed");
            } else {
                print!(" {r:>6.2}");
            }
        }
        let (idle, private) = self.idle_rss_of(Kind::Other(i), apps);
        let (idle, private) = (idle as f64 / 1024.0, private as f64 / 1024.0);
        let start = self.start_ms(|| self.commands(Kind::Other(i), apps, "hello", "").remove(0));
        println!(
            "  {idle:>5.2} ({private:.2}) / {:<6.2} {start:>8.2}  {:>6.2}",
            t.peak[i] as f64 / 1024.0,
            t.fair[i]
        );
        print!("{:<24}", "  thread client");
        for r in &t.threads[i] {
            print!(" {r:>6.2}");
        }
        println!();
        if let Some(targets) = o.adapter {
            print!("{:<24}", "  target");
            for (s, target) in SCENARIOS.iter().zip(targets) {
                if self.wants(s.name) {
                    print!(" {:>6}", target.trim_start_matches(">= "));
                }
            }
            println!();
        }
    }
}

/// The thread-per-connection client's figures for one scenario: ours,
/// the best raw shape under that client, and the median of the paired
/// ratios.
fn print_thread_client(s: &Scenario, threads: &[Rounds]) {
    let raws = &threads[..Shape::ALL.len()];
    let best = best_of(raws);
    let ours = threads[Shape::ALL.len()].figures();
    let ratio = paired(&threads[Shape::ALL.len()].rates, &raws[best].rates);
    let unit = if s.bytes { "MB/s" } else { "req/s" };
    println!(
        "{:<4}   thread-per-connection client: fcgi-server {:.0} {unit}, best raw {:.0} {unit} ({}), ratio {ratio:.2}",
        "",
        ours.rate,
        raws[best].figures().rate,
        Shape::ALL[best].name()
    );
    if !s.bytes {
        println!(
            "{:<4}   thread client latency p50 / p99: fcgi-server {:.1} / {:.1} us, best raw {:.1} / {:.1} us",
            "",
            ours.p50_us,
            ours.p99_us,
            raws[best].figures().p50_us,
            raws[best].figures().p99_us
        );
    }
    if ours.fairness.is_finite() && s.conns > 1 && s.keep_conn && !s.bytes {
        println!(
            "{:<4}   thread client fairness: the slowest connection did {:.2} of the mean (fcgi-server)",
            "", ours.fairness
        );
    }
}

/// The raw shape of the highest median rate.
fn best_of(raws: &[Rounds]) -> usize {
    (0..raws.len())
        .max_by(|&a, &b| raws[a].figures().rate.total_cmp(&raws[b].figures().rate))
        .unwrap()
}

/// Per other implementation: its ratio in each scenario, its peak memory
/// in S2 and its S2 fairness.
struct OthersTable {
    ratios: Vec<Vec<f64>>,
    /// The same under the thread-per-connection client.
    threads: Vec<Vec<f64>>,
    peak: Vec<u64>,
    fair: Vec<f64>,
}

impl OthersTable {
    fn new(n: usize) -> OthersTable {
        OthersTable {
            ratios: vec![Vec::new(); n],
            threads: vec![Vec::new(); n],
            peak: vec![0; n],
            fair: vec![f64::NAN; n],
        }
    }
}

/// A command with the same program and arguments.
fn clone_command(c: &Command) -> Command {
    let mut new = Command::new(c.get_program());
    new.args(c.get_args());
    new
}

fn num_cpus() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}
