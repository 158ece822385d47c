//! The two clients of the differential test, each giving an [`Answer`]
//! with what an HTTP client sees: a raw HTTP/1.1 client over a
//! `TcpStream` (so that the framing shows: length, chunked, or closed),
//! and the crate's FastCGI client, with the params nginx would send.
#![allow(unreachable_pub)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use fcgi_server::client::{Client, ResponseHead, ResponseSink};

/// One request: method, the target after the mount point, headers (a
/// name may come twice) and body.
#[derive(Clone, Debug)]
pub struct Ask {
    pub method: &'static str,
    pub target: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// How the body is delimited on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closes.
    Close,
    /// No body may follow (HEAD, 1xx, 204, 304).
    NoBody,
}

/// What a client got.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub reason: String,
    /// Header names lowercased, in order; `transfer-encoding` is in
    /// `framing` instead.
    pub headers: Vec<(String, String)>,
    pub framing: Framing,
    pub body: Vec<u8>,
    /// When each piece of body arrived, after the request was sent.
    pub arrivals: Vec<Duration>,
}

fn no_body(method: &str, status: u16) -> bool {
    method == "HEAD" || status < 200 || status == 204 || status == 304
}

/// `ask` over HTTP/1.1 to `127.0.0.1:port`, below `prefix`, with
/// `Connection: close`.
pub fn http(port: u16, prefix: &str, ask: &Ask) -> io::Result<Answer> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    let mut out = format!(
        "{} {prefix}{} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n",
        ask.method, ask.target
    );
    for (n, v) in &ask.headers {
        out += &format!("{n}: {v}\r\n");
    }
    if !ask.body.is_empty() || matches!(ask.method, "POST" | "PUT") {
        out += &format!("Content-Length: {}\r\n", ask.body.len());
    }
    out += "\r\n";
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&ask.body);
    stream.write_all(&bytes)?;
    let start = Instant::now();
    let mut r = BufReader::new(stream);
    let (status, reason, headers) = read_head(&mut r)?;
    let mut answer = Answer {
        status,
        reason,
        headers: Vec::new(),
        framing: Framing::NoBody,
        body: Vec::new(),
        arrivals: Vec::new(),
    };
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.trim().parse::<u64>().ok());
    answer.headers = headers
        .into_iter()
        .filter(|(n, _)| n != "transfer-encoding")
        .collect();
    if no_body(ask.method, status) {
        return Ok(answer);
    }
    answer.framing = match (chunked, length) {
        (true, _) => Framing::Chunked,
        (false, Some(n)) => Framing::Length(n),
        (false, None) => Framing::Close,
    };
    read_body(&mut r, &mut answer, start)?;
    Ok(answer)
}

/// Status, reason phrase, and headers (names lowercased).
type Head = (u16, String, Vec<(String, String)>);

/// The status line and headers.
fn read_head(r: &mut impl BufRead) -> io::Result<Head> {
    let line = read_line(r)?;
    let mut parts = line.splitn(3, ' ');
    let _version = parts.next();
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(&format!("status line {line:?}")))?;
    let reason = parts.next().unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        let line = read_line(r)?;
        if line.is_empty() {
            return Ok((status, reason, headers));
        }
        let (n, v) = line.split_once(':').ok_or_else(|| bad(&line))?;
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
}

fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\n") {
        return Err(bad("the connection closed inside the head"));
    }
    Ok(String::from_utf8_lossy(&line).trim_end().to_owned())
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn read_body(r: &mut impl BufRead, a: &mut Answer, start: Instant) -> io::Result<()> {
    match a.framing {
        Framing::Chunked => loop {
            let size = read_line(r)?;
            let size = size.split(';').next().unwrap_or("").trim();
            let n = usize::from_str_radix(size, 16).map_err(|_| bad(size))?;
            if n == 0 {
                while !read_line(r)?.is_empty() {}
                return Ok(());
            }
            let at = a.body.len();
            a.body.resize(at + n, 0);
            r.read_exact(&mut a.body[at..])?;
            a.arrivals.push(start.elapsed());
            read_line(r)?;
        },
        Framing::Length(n) => read_pieces(&mut r.take(n), a, start),
        _ => read_pieces(r, a, start),
    }
}

fn read_pieces(r: &mut impl Read, a: &mut Answer, start: Instant) -> io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match r.read(&mut buf)? {
            0 => return Ok(()),
            n => {
                a.body.extend_from_slice(&buf[..n]);
                a.arrivals.push(start.elapsed());
            }
        }
    }
}

/// A path as nginx makes `$uri` of it: percent-decoded, slashes merged,
/// dot segments resolved.
pub fn normalised(path: &str) -> Vec<u8> {
    let raw = path.as_bytes();
    let mut decoded = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        let hex = raw
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(b) if raw[i] == b'%' => {
                decoded.push(b);
                i += 3;
            }
            _ => {
                decoded.push(raw[i]);
                i += 1;
            }
        }
    }
    let mut segs: Vec<&[u8]> = Vec::new();
    let parts: Vec<&[u8]> = decoded.split(|&b| b == b'/').collect();
    for (k, seg) in parts.iter().enumerate() {
        let last = k == parts.len() - 1;
        match *seg {
            b"" | b"." if !last => {}
            b"." | b"" => segs.push(b""),
            b".." => {
                segs.pop();
                if last {
                    segs.push(b"");
                }
            }
            s => segs.push(s),
        }
    }
    let mut out = Vec::new();
    for s in segs {
        out.push(b'/');
        out.extend_from_slice(s);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// `ask` over FastCGI to the application at `sock`, with the params
/// nginx's `fastcgi_params` and deploy/nginx-root.conf send.
pub fn fcgi(sock: &str, ask: &Ask) -> io::Result<Answer> {
    let (path, query) = ask.target.split_once('?').unwrap_or((&ask.target, ""));
    let mut params: Vec<(String, Vec<u8>)> = Vec::new();
    let mut p = |n: &str, v: &[u8]| params.push((n.to_owned(), v.to_vec()));
    p("QUERY_STRING", query.as_bytes());
    p("REQUEST_METHOD", ask.method.as_bytes());
    let ctype = ask
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"));
    p(
        "CONTENT_TYPE",
        ctype.map_or(&b""[..], |(_, v)| v.as_bytes()),
    );
    let has_len = !ask.body.is_empty() || matches!(ask.method, "POST" | "PUT");
    let len = if has_len {
        ask.body.len().to_string()
    } else {
        String::new()
    };
    p("CONTENT_LENGTH", len.as_bytes());
    p("SCRIPT_NAME", b"");
    p("PATH_INFO", &normalised(path));
    p("REQUEST_URI", ask.target.as_bytes());
    p("SERVER_PROTOCOL", b"HTTP/1.1");
    p("REQUEST_SCHEME", b"http");
    p("REMOTE_ADDR", b"127.0.0.1");
    p("REMOTE_PORT", b"40000");
    p("SERVER_NAME", b"127.0.0.1");
    p("SERVER_PORT", b"80");
    p("HTTP_HOST", b"127.0.0.1");
    p("HTTP_CONNECTION", b"close");
    for (n, v) in &ask.headers {
        if !n.eq_ignore_ascii_case("content-type") {
            let name = format!("HTTP_{}", n.to_ascii_uppercase().replace('-', "_"));
            p(&name, v.as_bytes());
        }
    }
    let mut client = Client::connect(sock)?;
    client.set_timeout(Some(Duration::from_secs(15)))?;
    let pairs = params.iter().map(|(n, v)| (n.as_bytes(), v.as_slice()));
    client.send(pairs, &ask.body[..])?;
    let mut sink = Sink::new(ask.method);
    client.receive_into(&mut sink)?;
    sink.answer.ok_or_else(|| bad("no header block"))
}

/// Collects a FastCGI answer as an HTTP client would see it from an
/// HTTP/1.1 server: no body for HEAD, 204 and 304; `Content-Length` when
/// given, else (nominally) chunked.
struct Sink {
    method: &'static str,
    start: Instant,
    answer: Option<Answer>,
}

impl Sink {
    fn new(method: &'static str) -> Sink {
        Sink {
            method,
            start: Instant::now(),
            answer: None,
        }
    }
}

impl ResponseSink for Sink {
    fn head(&mut self, head: &ResponseHead) -> io::Result<()> {
        let headers: Vec<(String, String)> = head
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok());
        let framing = match length {
            _ if no_body(self.method, head.status) => Framing::NoBody,
            Some(n) => Framing::Length(n),
            None => Framing::Chunked,
        };
        self.answer = Some(Answer {
            status: head.status,
            reason: head.reason.clone(),
            headers,
            framing,
            body: Vec::new(),
            arrivals: Vec::new(),
        });
        Ok(())
    }

    fn body(&mut self, piece: &[u8]) -> io::Result<()> {
        let a = self
            .answer
            .as_mut()
            .ok_or_else(|| bad("body before head"))?;
        a.body.extend_from_slice(piece);
        a.arrivals.push(self.start.elapsed());
        Ok(())
    }

    fn stderr(&mut self, _piece: &[u8]) -> io::Result<()> {
        Ok(())
    }
}
