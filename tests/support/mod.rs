//! Helpers shared by the integration tests: an in-process server on a
//! fresh unix socket, a raw record-level connection for crafting input,
//! and the echo application's handler.
#![allow(dead_code, unreachable_pub)]

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fcgi_server::protocol::{self, BeginRequest, EndRequest, HEADER_LEN, Header, record_type};
use fcgi_server::{Request, Response, Server, ShutdownHandle};

#[path = "../../examples/echo/app.rs"]
pub mod echo;
pub mod frontend;
pub mod http;
pub mod load;
pub mod logged;
pub mod scripted;
pub mod status;

/// A directory of its own under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("fcgi-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server running in a thread of this process, on a unix socket.
pub struct TestServer {
    pub path: PathBuf,
    pub handle: ShutdownHandle,
    thread: Option<JoinHandle<io::Result<()>>>,
    _dir: TempDir,
}

impl TestServer {
    /// Starts `handler` with 4 workers, after `configure` adjusts the builder.
    pub fn start<H>(handler: H, configure: impl FnOnce(Server<H>) -> Server<H>) -> TestServer
    where
        H: Fn(&mut Request<'_>, &mut Response<'_>) -> io::Result<()> + Send + Sync + 'static,
    {
        let dir = TempDir::new("srv");
        let path = dir.path("fcgi.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = configure(
            Server::new(handler)
                .workers(4)
                .handle_signals(false)
                .listener(listener),
        );
        let handle = server.shutdown_handle();
        let thread = Some(std::thread::spawn(move || server.run()));
        TestServer {
            path,
            handle,
            thread,
            _dir: dir,
        }
    }

    /// The echo application with 4 workers.
    pub fn echo() -> TestServer {
        TestServer::start(echo::handle, |s| s)
    }

    pub fn connect(&self) -> Raw {
        Raw::connect(&self.path)
    }

    pub fn client(&self) -> fcgi_server::client::Client {
        let c = fcgi_server::client::Client::connect(self.path.to_str().unwrap()).unwrap();
        c.set_timeout(Some(Duration::from_secs(10))).unwrap();
        c
    }

    /// A well-formed request on a new connection is answered with 200.
    pub fn assert_serves(&self) {
        self.assert_serves_within(Duration::from_secs(10));
    }

    /// A well-formed request on a new connection is answered with 200,
    /// within `limit`.
    pub fn assert_serves_within(&self, limit: Duration) {
        let start = Instant::now();
        let res = self.client().request(get("x=1"), &b""[..]).unwrap();
        assert_eq!(res.status, 200);
        let took = start.elapsed();
        assert!(took < limit, "a request took {took:?}");
    }

    /// Shuts down and waits for `run` to return; returns its result.
    pub fn stop(mut self) -> io::Result<()> {
        self.handle.shutdown();
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One record as read back from the server.
#[derive(Debug, Clone)]
pub struct Rec {
    pub header: Header,
    pub content: Vec<u8>,
}

/// What a request produced, record by record.
#[derive(Debug, Default)]
pub struct Reply {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub end: Option<EndRequest>,
    pub records: Vec<Rec>,
}

impl Reply {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The body after the CGI header block.
    pub fn body(&self) -> &[u8] {
        let at = self
            .stdout
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("header block");
        &self.stdout[at + 4..]
    }

    pub fn status_line(&self) -> String {
        self.stdout_str().lines().next().unwrap_or("").to_owned()
    }
}

/// A raw connection: write any bytes, read records back.
pub struct Raw {
    pub stream: UnixStream,
}

impl Raw {
    pub fn connect(path: &Path) -> Raw {
        let stream = UnixStream::connect(path).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Raw { stream }
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one record; `None` at end of stream.
    pub fn read_record(&mut self) -> io::Result<Option<Rec>> {
        let mut head = [0u8; HEADER_LEN];
        match self.stream.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let header = Header::decode(&head).unwrap().unwrap();
        let mut content = vec![0u8; header.content_len as usize + header.padding_len as usize];
        self.stream.read_exact(&mut content)?;
        content.truncate(header.content_len as usize);
        Ok(Some(Rec { header, content }))
    }

    /// Reads records up to END_REQUEST for `id`.
    pub fn read_reply(&mut self, id: u16) -> Reply {
        let mut reply = Reply::default();
        while let Some(rec) = self.read_record().unwrap() {
            reply.records.push(rec.clone());
            if rec.header.request_id != id {
                continue;
            }
            match rec.header.record_type {
                record_type::STDOUT => reply.stdout.extend_from_slice(&rec.content),
                record_type::STDERR => reply.stderr.extend_from_slice(&rec.content),
                record_type::END_REQUEST => {
                    reply.end = Some(EndRequest::decode(&rec.content).unwrap());
                    return reply;
                }
                _ => {}
            }
        }
        reply
    }

    /// Whether the server closed the connection (reads end of stream,
    /// or a reset) within the read timeout.
    pub fn is_closed(&mut self) -> bool {
        let mut buf = [0u8; 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return false,
                Err(_) => return true,
            }
        }
    }
}

/// Encodes one record (no padding unless asked).
pub fn record(rtype: u8, id: u16, content: &[u8]) -> Vec<u8> {
    padded(rtype, id, content, 0)
}

pub fn padded(rtype: u8, id: u16, content: &[u8], pad: u8) -> Vec<u8> {
    let mut h = Header::new(rtype, id, content.len() as u16);
    h.padding_len = pad;
    let mut out = h.encode().to_vec();
    out.extend_from_slice(content);
    out.extend(std::iter::repeat_n(0xAA, pad as usize));
    out
}

pub fn begin(id: u16, role: u16, keep_conn: bool) -> Vec<u8> {
    let body = BeginRequest {
        role,
        flags: if keep_conn { protocol::KEEP_CONN } else { 0 },
    };
    record(record_type::BEGIN_REQUEST, id, &body.encode())
}

pub fn pairs(params: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in params {
        protocol::encode_pair(&mut out, k.as_bytes(), v.as_bytes());
    }
    out
}

/// A whole responder request: begin, params, stdin, each stream in one
/// record plus its empty terminator.
pub fn request(id: u16, keep_conn: bool, params: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = begin(id, 1, keep_conn);
    out.extend(record(record_type::PARAMS, id, &pairs(params)));
    out.extend(record(record_type::PARAMS, id, b""));
    for chunk in body.chunks(65535) {
        out.extend(record(record_type::STDIN, id, chunk));
    }
    out.extend(record(record_type::STDIN, id, b""));
    out
}

pub fn get(query: &str) -> Vec<(&'static str, String)> {
    vec![
        ("REQUEST_METHOD", "GET".into()),
        ("QUERY_STRING", query.into()),
        ("SCRIPT_NAME", "/app".into()),
    ]
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Connects a client to `addr`, retrying for up to 10 s while the server
/// starts.
pub fn connect_retry(addr: &str) -> fcgi_server::client::Client {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match fcgi_server::client::Client::connect(addr) {
            Ok(c) => return c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("cannot connect to {addr}: {e}"),
        }
    }
}

/// Polls `f` until it holds or `limit` passes; returns whether it held.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Where the external tool `name` is: on PATH, or in the sbin directories
/// that a non-root PATH may lack.
pub fn tool_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Whether tests that need the external tool `name` should run: yes when
/// it is installed. When it is not, a skip is printed, except under CI
/// (`CI=true`), where a missing tool fails the test.
pub fn have_tool(name: &str) -> bool {
    have(tool_path(name).is_some(), name)
}

/// Whether tests that need `what` should run: yes when `found`. When not,
/// a skip is printed, except under CI (`CI=true`), where it fails the test.
pub fn have(found: bool, what: &str) -> bool {
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{what} is not installed, and CI=true requires it (.ci/run installs it)"
        );
        eprintln!("SKIPPED: {what} is not installed");
    }
    found
}

/// The path of a built example binary (cargo builds examples for `cargo test`).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("examples").join(name);
    assert!(
        path.is_file(),
        "example binary {} not built",
        path.display()
    );
    path
}

/// Raises this process's soft limit on open descriptors to at least `n`
/// (up to the hard limit), with util-linux's `prlimit`.
pub fn raise_fd_limit(n: u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files");
    let nums: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    let soft: u64 = nums[0].parse().unwrap_or(u64::MAX);
    if soft >= n {
        return;
    }
    let hard = nums[1].parse::<u64>().unwrap_or(u64::MAX);
    let want = n.min(hard);
    let ok = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={want}:{hard}"))
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok && want >= n, "cannot raise the descriptor limit to {n}");
}

/// One test per echo application this build has: `examples/echo`, and
/// the same application on the adapters (`http_echo`, `axum_echo`) when
/// their cargo feature is on. Each `name => check;` makes a module `name`
/// with a test per application, calling `check` (a `fn(&str)`, in the
/// calling file) with the example's name.
#[allow(unused_macros)]
macro_rules! each_echo_app {
    ($($name:ident => $check:ident;)*) => {$(
        mod $name {
            #[test]
            fn echo() {
                super::$check("echo")
            }

            #[cfg(feature = "http")]
            #[test]
            fn http_echo() {
                super::$check("http_echo")
            }

            #[cfg(feature = "tower")]
            #[test]
            fn axum_echo() {
                super::$check("axum_echo")
            }
        }
    )*};
}
#[allow(unused_imports)]
pub(crate) use each_echo_app;

/// A global allocator that counts every allocation (and reallocation) in
/// [`ALLOCATIONS`]; the allocation tests install it with
/// `#[global_allocator]`.
pub struct Counting;

pub static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: defers to the system allocator; only counts calls.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: same contract as ours.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}
