//! A small, bounded HTTP load over loopback for the tests that change
//! the application under a web server: a few clients, each sending GETs
//! one after the other on a kept-open connection, checking every response
//! whole against what the echo application must answer.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the clients saw.
#[derive(Debug, Default)]
pub struct Tally {
    /// Responses complete and correct.
    pub ok: u64,
    /// Requests that failed in any way (502s included).
    pub failed: u64,
    /// Of those, answered 502 Bad Gateway.
    pub bad_gateway: u64,
    /// The first few failures, described.
    pub errors: Vec<String>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.bad_gateway += other.bad_gateway;
        let room = 10usize.saturating_sub(self.errors.len());
        self.errors.extend(other.errors.into_iter().take(room));
    }

    fn fail(&mut self, what: String) {
        self.failed += 1;
        if self.errors.len() < 10 {
            self.errors.push(what);
        }
    }
}

/// A running load.
pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    threads: Vec<JoinHandle<Tally>>,
}

impl Load {
    /// `clients` clients against the web server on `port`.
    pub fn start(port: u16, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let threads = (0..clients)
            .map(|n| {
                let (stop, ok) = (Arc::clone(&stop), Arc::clone(&ok));
                std::thread::spawn(move || client(port, n, &stop, &ok))
            })
            .collect();
        Load { stop, ok, threads }
    }

    /// Responses complete and correct so far, all clients together.
    pub fn ok(&self) -> u64 {
        self.ok.load(Relaxed)
    }

    /// Waits until `n` more responses came back correct; false if that
    /// took over `limit`.
    pub fn wait_for(&self, n: u64, limit: Duration) -> bool {
        let target = self.ok() + n;
        super::eventually(limit, || self.ok() >= target)
    }

    /// Stops the clients (each finishes its request) and adds up.
    pub fn finish(self) -> Tally {
        self.stop.store(true, Relaxed);
        let mut all = Tally::default();
        for t in self.threads {
            all.add(t.join().unwrap());
        }
        all
    }
}

/// One client's life: requests until told to stop, a new connection after
/// any failure or when the server closes one.
fn client(port: u16, n: usize, stop: &AtomicBool, ok: &AtomicU64) -> Tally {
    let mut tally = Tally::default();
    let mut conn: Option<BufReader<TcpStream>> = None;
    let mut i = 0u64;
    while !stop.load(Relaxed) {
        i += 1;
        let c = match conn.take().map_or_else(|| connect(port), Ok) {
            Ok(c) => conn.insert(c),
            Err(e) => {
                tally.fail(format!("connect: {e}"));
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
        };
        let tag = format!("c{n}r{i}");
        let (path, want) = if i % 2 == 0 {
            let size = (i * 7919 + n as u64 * 104_729) % 6000 + 1;
            (format!("/load?size={size}&tag={tag}"), Want::Pattern(size))
        } else {
            (format!("/load/dump?tag={tag}"), Want::Dump(tag))
        };
        match exchange(c, &path) {
            Ok((200, body, keep)) => match want.check(&body) {
                Ok(()) => {
                    tally.ok += 1;
                    ok.fetch_add(1, Relaxed);
                    if !keep {
                        conn = None;
                    }
                }
                Err(e) => {
                    tally.fail(format!("{path}: {e}"));
                    conn = None;
                }
            },
            Ok((status, body, _)) => {
                if status == 502 {
                    tally.bad_gateway += 1;
                }
                let text = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
                tally.fail(format!("{path}: status {status}: {text:?}"));
                conn = None;
            }
            Err(e) => {
                tally.fail(format!("{path}: {e}"));
                conn = None;
            }
        }
    }
    tally
}

fn connect(port: u16) -> io::Result<BufReader<TcpStream>> {
    let s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    s.set_nodelay(true)?;
    Ok(BufReader::new(s))
}

/// What a response's body must be.
enum Want {
    /// `size=N`: N bytes, byte i being `b'a' + i % 26`.
    Pattern(u64),
    /// The params listing, with this request's own query string in it.
    Dump(String),
}

impl Want {
    fn check(&self, body: &[u8]) -> Result<(), String> {
        match self {
            Want::Pattern(size) => {
                if body.len() as u64 != *size {
                    return Err(format!("{} bytes, not {size}", body.len()));
                }
                let wrong = body
                    .iter()
                    .enumerate()
                    .position(|(i, &b)| b != b'a' + (i % 26) as u8);
                match wrong {
                    Some(at) => Err(format!("wrong byte at {at}")),
                    None => Ok(()),
                }
            }
            Want::Dump(tag) => {
                let text = String::from_utf8_lossy(body);
                let line = format!("QUERY_STRING=tag={tag}\n");
                if text.contains(&line) && text.contains("REQUEST_METHOD=GET\n") {
                    Ok(())
                } else {
                    Err(format!("not this request's params: {text:?}"))
                }
            }
        }
    }
}

/// Sends a GET on `c` and reads its response whole: status, body, and
/// whether the connection stays open.
fn exchange(c: &mut BufReader<TcpStream>, path: &str) -> io::Result<(u16, Vec<u8>, bool)> {
    let head = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    c.get_mut().write_all(head.as_bytes())?;
    let bad = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
    let mut line = String::new();
    if c.read_line(&mut line)? == 0 {
        return Err(bad("connection closed before a response".into()));
    }
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {line:?}")))?;
    let (mut length, mut chunked, mut keep) = (None, false, true);
    loop {
        line.clear();
        c.read_line(&mut line)?;
        let h = line.trim_end();
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':').unwrap_or((h, ""));
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.contains("chunked"),
            "connection" => keep = !value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let body = match (chunked, length) {
        (true, _) => dechunk(c)?,
        (false, Some(n)) => {
            let mut body = vec![0; n];
            c.read_exact(&mut body)?;
            body
        }
        (false, None) => {
            let mut body = Vec::new();
            c.read_to_end(&mut body)?;
            keep = false;
            body
        }
    };
    Ok((status, body, keep))
}

/// Reads a chunked body to its end.
fn dechunk(c: &mut BufReader<TcpStream>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        c.read_line(&mut line)?;
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            line.clear();
            c.read_line(&mut line)?;
            return Ok(body);
        }
        let at = body.len();
        body.resize(at + size, 0);
        c.read_exact(&mut body[at..])?;
        let mut crlf = [0u8; 2];
        c.read_exact(&mut crlf)?;
    }
}
