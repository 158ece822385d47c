//! Purpose-built FastCGI servers for the client's tests: each answers on a
//! fresh unix socket as its script says, however wrong that is.

use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fcgi_server::protocol::{EndRequest, ProtocolStatus, push_record, record_type};

use super::{Raw, TempDir};

/// A server whose every connection runs a script, in a thread of its own.
pub struct Scripted {
    pub path: PathBuf,
    /// Connections accepted so far.
    pub accepted: Arc<AtomicUsize>,
    _dir: TempDir,
}

impl Scripted {
    /// Serves each connection with `script`, given the connection and its
    /// number (from 1).
    pub fn start(script: impl Fn(Raw, usize) + Send + Sync + 'static) -> Scripted {
        let dir = TempDir::new("scripted");
        let path = dir.path("fcgi.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        let script = Arc::new(script);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                let script = Arc::clone(&script);
                std::thread::spawn(move || script(raw(stream), n));
            }
        });
        Scripted {
            path,
            accepted,
            _dir: dir,
        }
    }

    /// Reads each request and answers it with `reply`, the bytes to send.
    pub fn replying(reply: impl Fn(&Received) -> Vec<u8> + Send + Sync + 'static) -> Scripted {
        Scripted::start(move |mut conn, _| {
            while let Some(req) = read_request(&mut conn) {
                if conn.send(&reply(&req)).is_err() {
                    return;
                }
            }
        })
    }

    pub fn addr(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

fn raw(stream: UnixStream) -> Raw {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    Raw { stream }
}

/// One request as the server read it.
#[derive(Debug, Default)]
pub struct Received {
    pub keep_conn: bool,
    pub params: Vec<(String, String)>,
    pub stdin: Vec<u8>,
}

/// Reads one request, up to its empty STDIN record; `None` at the end of
/// the stream.
pub fn read_request(conn: &mut Raw) -> Option<Received> {
    let mut req = Received::default();
    let mut params = Vec::new();
    loop {
        let rec = conn.read_record().ok()??;
        match rec.header.record_type {
            record_type::BEGIN_REQUEST => req.keep_conn = rec.content[2] & 1 == 1,
            record_type::PARAMS => params.extend_from_slice(&rec.content),
            record_type::STDIN if rec.content.is_empty() => break,
            record_type::STDIN => req.stdin.extend_from_slice(&rec.content),
            _ => {}
        }
    }
    req.params = fcgi_server::protocol::Pairs::new(&params, u32::MAX)
        .map(|p| p.unwrap())
        .map(|(k, v)| {
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            (text(k), text(v))
        })
        .collect();
    Some(req)
}

/// An aligned STDOUT record for request 1.
pub fn stdout(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    push_record(&mut out, record_type::STDOUT, 1, content);
    out
}

/// The end of a complete response to request 1: the empty STDOUT record
/// and END_REQUEST.
pub fn end() -> Vec<u8> {
    let mut out = stdout(b"");
    out.extend_from_slice(&EndRequest::new(0, ProtocolStatus::RequestComplete).record(1));
    out
}

/// Reads the request, then writes `bytes` and closes the connection.
pub fn answer_and_close(bytes: Vec<u8>) -> Scripted {
    Scripted::start(move |mut conn, _| {
        if read_request(&mut conn).is_some() {
            let _ = conn.stream.write_all(&bytes);
        }
    })
}
