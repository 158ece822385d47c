//! A small blocking FastCGI client: for tests, benchmarks, and for talking
//! to an application by hand when debugging a deployment.
//!
//! # Examples
//!
//! ```no_run
//! use fcgi_server::client::Client;
//!
//! let mut client = Client::connect("/run/app/fcgi.sock")?;
//! let res = client.request(
//!     [("REQUEST_METHOD", "GET"), ("SCRIPT_NAME", "/"), ("QUERY_STRING", "")],
//!     &b""[..],
//! )?;
//! assert_eq!(res.status, 200);
//! println!("{}", String::from_utf8_lossy(&res.body));
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use std::path::PathBuf;

use crate::protocol::{
    self, BeginRequest, EndRequest, HEADER_LEN, Header, MAX_ALIGNED_CONTENT_LEN, MAX_CONTENT_LEN,
    ProtocolStatus, Role, push_record, record_type,
};

/// What an address names, in the syntax that [`Client::connect`] and
/// [`Server::bind`](crate::Server::bind) share.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Address {
    /// A unix socket path (`/run/app.sock`, `app.sock`, `unix:/run/app.sock`).
    Unix(PathBuf),
    /// A TCP `HOST:PORT` (`127.0.0.1:9000`, `[::1]:9000`, `localhost:9000`).
    Tcp(String),
}

impl Address {
    /// A path (anything with a `/`, or without a `:PORT` suffix) is a unix
    /// socket; `HOST:PORT` is TCP.
    pub(crate) fn parse(s: &str) -> Address {
        if let Some(path) = s.strip_prefix("unix:") {
            return Address::Unix(path.into());
        }
        let is_tcp = !s.contains('/')
            && s.rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if is_tcp {
            Address::Tcp(s.to_owned())
        } else {
            Address::Unix(s.into())
        }
    }
}

#[derive(Debug)]
enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => (&*s).write(buf),
            Stream::Tcp(s) => (&*s).write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => (&*s).read(buf),
            Stream::Tcp(s) => (&*s).read(buf),
        }
    }
}

/// A connection to a FastCGI application.
#[derive(Debug)]
pub struct Client {
    stream: Stream,
    keep_conn: bool,
    request_id: u16,
    role: Role,
    out: Vec<u8>,
}

/// A response as the client received it.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ClientResponse {
    /// The HTTP status from the `Status` header (200 when absent).
    pub status: u16,
    /// The CGI response headers, `Status` excluded, in order.
    pub headers: Vec<(String, String)>,
    /// The body: the STDOUT stream after the header block.
    pub body: Vec<u8>,
    /// Everything received on the STDERR stream.
    pub stderr: Vec<u8>,
    /// The `appStatus` of END_REQUEST.
    pub app_status: u32,
    /// The `protocolStatus` of END_REQUEST (raw value; 0 is complete).
    pub protocol_status: u8,
}

impl ClientResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Client {
    /// Connects to a unix socket path or a TCP `HOST:PORT`, in the same
    /// syntax as [`Server::bind`](crate::Server::bind).
    pub fn connect(addr: &str) -> io::Result<Client> {
        let stream = match Address::parse(addr) {
            Address::Unix(path) => Stream::Unix(UnixStream::connect(path)?),
            Address::Tcp(spec) => {
                let s = TcpStream::connect(spec)?;
                s.set_nodelay(true)?;
                Stream::Tcp(s)
            }
        };
        Ok(Client::new(stream))
    }

    /// A client over a connected unix stream.
    pub fn from_unix(stream: UnixStream) -> Client {
        Client::new(Stream::Unix(stream))
    }

    /// A client over a connected TCP stream.
    pub fn from_tcp(stream: TcpStream) -> Client {
        Client::new(Stream::Tcp(stream))
    }

    fn new(stream: Stream) -> Client {
        Client {
            stream,
            keep_conn: false,
            request_id: 1,
            role: Role::Responder,
            out: Vec::with_capacity(8192),
        }
    }

    /// Asks the application to keep the connection open after each
    /// request (`FCGI_KEEP_CONN`), so that it can carry the next one.
    pub fn keep_conn(&mut self, on: bool) -> &mut Self {
        self.keep_conn = on;
        self
    }

    /// The request id to use (default 1).
    pub fn request_id(&mut self, id: u16) -> &mut Self {
        self.request_id = id;
        self
    }

    /// The role to ask for (default responder).
    pub fn role(&mut self, role: Role) -> &mut Self {
        self.role = role;
        self
    }

    /// Sets a read and write timeout on the connection.
    pub fn set_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        match &self.stream {
            Stream::Unix(s) => {
                s.set_read_timeout(d)?;
                s.set_write_timeout(d)
            }
            Stream::Tcp(s) => {
                s.set_read_timeout(d)?;
                s.set_write_timeout(d)
            }
        }
    }

    /// Sends one request (params, then `body` as STDIN) and reads the
    /// whole response. The body is sent before the response is read, so
    /// an application that answers before reading a large body would
    /// deadlock with this client, as it would behind nginx.
    pub fn request<I, K, V>(&mut self, params: I, body: impl Read) -> io::Result<ClientResponse>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        self.send(params, body)?;
        self.receive()
    }

    /// Sends one request without reading the response; see [`receive`](Client::receive).
    pub fn send<I, K, V>(&mut self, params: I, mut body: impl Read) -> io::Result<()>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let id = self.request_id;
        let flags = if self.keep_conn {
            protocol::KEEP_CONN
        } else {
            0
        };
        let begin = BeginRequest {
            role: self.role.into(),
            flags,
        };
        self.out.clear();
        push_record(
            &mut self.out,
            record_type::BEGIN_REQUEST,
            id,
            &begin.encode(),
        );
        let mut stream = Vec::with_capacity(1024);
        for (k, v) in params {
            protocol::encode_pair(&mut stream, k.as_ref(), v.as_ref());
        }
        push_stream(&mut self.out, record_type::PARAMS, id, &stream);
        push_record(&mut self.out, record_type::PARAMS, id, b"");
        let mut chunk = vec![0u8; MAX_ALIGNED_CONTENT_LEN];
        loop {
            let n = read_full(&mut body, &mut chunk)?;
            if n > 0 {
                push_record(&mut self.out, record_type::STDIN, id, &chunk[..n]);
            }
            if n < chunk.len() {
                break;
            }
            if self.out.len() >= 256 * 1024 {
                (&self.stream).write_all(&self.out)?;
                self.out.clear();
            }
        }
        push_record(&mut self.out, record_type::STDIN, id, b"");
        (&self.stream).write_all(&self.out)
    }

    /// Reads the response to the request last sent, up to its END_REQUEST.
    pub fn receive(&mut self) -> io::Result<ClientResponse> {
        let mut reader = BufReader::with_capacity(128 * 1024, &self.stream);
        let mut stdout = Vec::new();
        let mut res = ClientResponse::default();
        let mut content = vec![0u8; MAX_CONTENT_LEN + 255];
        loop {
            let mut head = [0u8; HEADER_LEN];
            reader.read_exact(&mut head)?;
            let h = Header::decode(&head)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
                .expect("a whole header");
            let body = &mut content[..h.content_len as usize + h.padding_len as usize];
            reader.read_exact(body)?;
            let body = &body[..h.content_len as usize];
            if h.request_id != self.request_id {
                continue;
            }
            match h.record_type {
                record_type::STDOUT => stdout.extend_from_slice(body),
                record_type::STDERR => res.stderr.extend_from_slice(body),
                record_type::END_REQUEST => {
                    let end = EndRequest::decode(body)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    res.app_status = end.app_status;
                    res.protocol_status = end.protocol_status;
                    break;
                }
                _ => {}
            }
        }
        if res.protocol_status == u8::from(ProtocolStatus::RequestComplete) {
            parse_cgi(&stdout, &mut res)?;
        }
        Ok(res)
    }

    /// Asks for `FCGI_GET_VALUES` and returns the pairs the application
    /// answered with.
    pub fn get_values(&mut self, names: &[&str]) -> io::Result<Vec<(String, String)>> {
        let mut body = Vec::new();
        for n in names {
            protocol::encode_pair(&mut body, n.as_bytes(), b"");
        }
        self.out.clear();
        push_record(&mut self.out, record_type::GET_VALUES, 0, &body);
        (&self.stream).write_all(&self.out)?;
        let mut head = [0u8; HEADER_LEN];
        (&self.stream).read_exact(&mut head)?;
        let h = Header::decode(&head)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            .expect("a whole header");
        let mut content = vec![0u8; h.content_len as usize + h.padding_len as usize];
        (&self.stream).read_exact(&mut content)?;
        if h.record_type != record_type::GET_VALUES_RESULT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "expected GET_VALUES_RESULT, got record type {}",
                    h.record_type
                ),
            ));
        }
        protocol::Pairs::new(&content[..h.content_len as usize], u32::MAX)
            .map(|p| {
                let (n, v) = p.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                Ok((
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                ))
            })
            .collect()
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Appends `data` as a stream of records (without the closing empty one).
fn push_stream(out: &mut Vec<u8>, rtype: u8, id: u16, data: &[u8]) {
    for chunk in data.chunks(MAX_ALIGNED_CONTENT_LEN) {
        push_record(out, rtype, id, chunk);
    }
}

/// Splits a CGI response into status, headers and body.
fn parse_cgi(stdout: &[u8], res: &mut ClientResponse) -> io::Result<()> {
    let invalid = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_owned());
    let (end, sep) = match (find(stdout, b"\r\n\r\n"), find(stdout, b"\n\n")) {
        (Some(a), Some(b)) if b < a => (b, 2),
        (Some(a), _) => (a, 4),
        (None, Some(b)) => (b, 2),
        (None, None) => return Err(invalid("no blank line after the response headers")),
    };
    res.status = 200;
    let head = std::str::from_utf8(&stdout[..end]).map_err(|_| invalid("headers not UTF-8"))?;
    for line in head.lines().filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid("header without ':'"))?;
        let value = value.trim().to_owned();
        if name.eq_ignore_ascii_case("Status") {
            res.status = value
                .get(..3)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| invalid("bad Status header"))?;
        } else {
            res.headers.push((name.to_owned(), value));
        }
    }
    res.body = stdout[end + sep..].to_vec();
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_cases() {
        let cases = [
            ("/run/app.sock", Address::Unix("/run/app.sock".into())),
            ("app.sock", Address::Unix("app.sock".into())),
            ("./a:1", Address::Unix("./a:1".into())),
            ("unix:/tmp/x", Address::Unix("/tmp/x".into())),
            ("127.0.0.1:9000", Address::Tcp("127.0.0.1:9000".into())),
            ("[::1]:9000", Address::Tcp("[::1]:9000".into())),
            ("localhost:0", Address::Tcp("localhost:0".into())),
            (":9000", Address::Unix(":9000".into())),
            ("host:notaport", Address::Unix("host:notaport".into())),
        ];
        for (input, want) in cases {
            assert_eq!(Address::parse(input), want, "input {input}");
        }
    }
}
