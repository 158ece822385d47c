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

use std::fmt;
use std::io::{self, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::protocol::{
    self, BeginRequest, EndRequest, HEADER_LEN, Header, MAX_ALIGNED_CONTENT_LEN, ProtocolStatus,
    Record, Role, decode_record, push_record, record_type,
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

impl Stream {
    fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(d),
            Stream::Tcp(s) => s.set_read_timeout(d),
        }
    }

    fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_write_timeout(d),
            Stream::Tcp(s) => s.set_write_timeout(d),
        }
    }
}

/// The stream, with each read and write limited to the time left before
/// a deadline (when there is one).
struct Timed<'a> {
    stream: &'a Stream,
    deadline: Option<Instant>,
}

impl Timed<'_> {
    fn new(stream: &Stream, deadline: Option<Instant>) -> Timed<'_> {
        Timed { stream, deadline }
    }

    /// The time left, or a `TimedOut` error when none is.
    fn left(&self) -> io::Result<Option<Duration>> {
        let Some(deadline) = self.deadline else {
            return Ok(None);
        };
        match deadline.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(Some(left)),
            _ => Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed")),
        }
    }

    /// A socket timeout shows up as `WouldBlock`; under a deadline it is
    /// the deadline passing.
    fn name_timeout(&self, e: io::Error) -> io::Error {
        if self.deadline.is_some() && e.kind() == io::ErrorKind::WouldBlock {
            io::Error::new(io::ErrorKind::TimedOut, "deadline passed")
        } else {
            e
        }
    }
}

impl Read for Timed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(left) = self.left()? {
            self.stream.set_read_timeout(Some(left))?;
        }
        self.stream.read(buf).map_err(|e| self.name_timeout(e))
    }
}

impl Write for Timed<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(left) = self.left()? {
            self.stream.set_write_timeout(Some(left))?;
        }
        self.stream.write(buf).map_err(|e| self.name_timeout(e))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One event on the wire, as an observer set with [`Client::observe`]
/// sees it.
#[derive(Clone, Copy, Debug)]
pub enum WireEvent<'a> {
    /// A record the client wrote (after the write).
    Sent(Record<'a>),
    /// A record the client read, its content without padding.
    Received(Record<'a>),
    /// The peer closed (or reset) the connection where a record was due;
    /// `partial` bytes of an unfinished record had arrived.
    Closed {
        /// Bytes of the unfinished record (0 when the close fell between records).
        partial: usize,
    },
    /// Eight bytes that do not decode as a record header (a version
    /// other than 1).
    BadHeader([u8; HEADER_LEN]),
}

type ObserverFn = Box<dyn FnMut(&WireEvent<'_>) + Send>;

/// The record observer, if any.
#[derive(Default)]
struct Observer(Option<ObserverFn>);

impl Observer {
    fn notify(&mut self, event: &WireEvent<'_>) {
        if let Some(f) = &mut self.0 {
            f(event);
        }
    }

    /// Tells of every record in `wire`, a run of whole records.
    fn sent(&mut self, mut wire: &[u8]) {
        if self.0.is_none() {
            return;
        }
        while let Ok(Some((record, used))) = decode_record(wire) {
            self.notify(&WireEvent::Sent(record));
            wire = &wire[used..];
        }
    }
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "Observer" } else { "None" })
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
    observer: Observer,
    deadline: Option<Instant>,
}

/// The status line and headers of a response, once its header block is
/// complete.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseHead {
    /// The HTTP status from the `Status` header (200 when absent).
    pub status: u16,
    /// The text after the code in the `Status` header (`Not Found`), if any.
    pub reason: String,
    /// The CGI response headers, `Status` excluded, in order.
    pub headers: Vec<(String, String)>,
}

/// Where [`Client::receive_into`] delivers a response, piece by piece, as
/// it arrives.
pub trait ResponseSink {
    /// The header block, parsed, once it is complete.
    fn head(&mut self, head: &ResponseHead) -> io::Result<()>;
    /// A piece of the body (the STDOUT stream after the header block).
    fn body(&mut self, piece: &[u8]) -> io::Result<()>;
    /// A piece of the STDERR stream.
    fn stderr(&mut self, piece: &[u8]) -> io::Result<()>;
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

/// Collects the whole response, as [`Client::receive`] returns it.
impl ResponseSink for ClientResponse {
    fn head(&mut self, head: &ResponseHead) -> io::Result<()> {
        self.status = head.status;
        self.headers = head.headers.clone();
        Ok(())
    }

    fn body(&mut self, piece: &[u8]) -> io::Result<()> {
        self.body.extend_from_slice(piece);
        Ok(())
    }

    fn stderr(&mut self, piece: &[u8]) -> io::Result<()> {
        self.stderr.extend_from_slice(piece);
        Ok(())
    }
}

impl Client {
    /// Connects to a unix socket path or a TCP `HOST:PORT`, in the same
    /// syntax as [`Server::bind`](crate::Server::bind).
    pub fn connect(addr: &str) -> io::Result<Client> {
        match Address::parse(addr) {
            Address::Unix(path) => Ok(Client::from_unix(UnixStream::connect(path)?)),
            Address::Tcp(spec) => tcp_client(TcpStream::connect(spec)?),
        }
    }

    /// Connects as [`connect`](Client::connect) does, giving up on a TCP
    /// connection that is not made within `timeout`. (A unix socket
    /// connects at once, or fails at once, unless its backlog is full.)
    pub fn connect_timeout(addr: &str, timeout: Duration) -> io::Result<Client> {
        let spec = match Address::parse(addr) {
            Address::Unix(path) => return Ok(Client::from_unix(UnixStream::connect(path)?)),
            Address::Tcp(spec) => spec,
        };
        let mut last = io::Error::new(io::ErrorKind::InvalidInput, "the name resolves to nothing");
        for a in spec.to_socket_addrs()? {
            match TcpStream::connect_timeout(&a, timeout) {
                Ok(s) => return tcp_client(s),
                Err(e) => last = e,
            }
        }
        Err(last)
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
            observer: Observer::default(),
            deadline: None,
        }
    }

    /// Calls `f` with every record sent and received from now on, and
    /// when the peer closes the connection or sends a bad header: for
    /// tracing a conversation.
    pub fn observe(&mut self, f: impl FnMut(&WireEvent<'_>) + Send + 'static) -> &mut Self {
        self.observer = Observer(Some(Box::new(f)));
        self
    }

    /// Makes every read and write fail with `TimedOut` once `deadline`
    /// has passed (`None`: no deadline). While set, it takes the place of
    /// [`set_timeout`](Client::set_timeout); once cleared, the socket keeps
    /// the last timeout it set, until `set_timeout` is called again.
    pub fn set_deadline(&mut self, deadline: Option<Instant>) -> &mut Self {
        self.deadline = deadline;
        self
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
        self.stream.set_read_timeout(d)?;
        self.stream.set_write_timeout(d)
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
    pub fn send<I, K, V>(&mut self, params: I, body: impl Read) -> io::Result<()>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        self.send_streams(params, body, None::<io::Empty>)
    }

    /// Sends one request with a data stream (`FCGI_DATA`) after its body,
    /// as a web server does for the filter role (ask for it with
    /// [`role`](Client::role)), and reads the whole response. Both streams
    /// are read from their readers and sent in pieces, in constant memory,
    /// before the response is read: an application that writes a large
    /// response before it has read the data would deadlock with this
    /// client.
    ///
    /// ```no_run
    /// use fcgi_server::{Role, client::Client};
    ///
    /// let mut client = Client::connect("/run/app/fcgi.sock")?;
    /// let file = std::fs::File::open("/srv/www/page.md")?;
    /// let len = file.metadata()?.len().to_string();
    /// let params = [("REQUEST_METHOD", "GET"), ("FCGI_DATA_LENGTH", len.as_str())];
    /// let res = client.role(Role::Filter).request_with_data(params, &b""[..], file)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn request_with_data<I, K, V>(
        &mut self,
        params: I,
        body: impl Read,
        data: impl Read,
    ) -> io::Result<ClientResponse>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        self.send_streams(params, body, Some(data))?;
        self.receive()
    }

    /// Sends one request: params, `body` as STDIN, and `data` as DATA when
    /// there is one.
    fn send_streams<I, K, V>(
        &mut self,
        params: I,
        body: impl Read,
        data: Option<impl Read>,
    ) -> io::Result<()>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        self.begin(params);
        self.push_reader(record_type::STDIN, body)?;
        if let Some(data) = data {
            self.push_reader(record_type::DATA, data)?;
        }
        self.write_out()
    }

    /// Starts a request in the output buffer: begin-request and params.
    fn begin<I, K, V>(&mut self, params: I)
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
    }

    /// Appends the stream read from `r` as records of `rtype` and its end,
    /// writing the buffer out as it fills.
    fn push_reader(&mut self, rtype: u8, mut r: impl Read) -> io::Result<()> {
        let id = self.request_id;
        let mut chunk = vec![0u8; MAX_ALIGNED_CONTENT_LEN];
        loop {
            let n = read_full(&mut r, &mut chunk)?;
            if n > 0 {
                push_record(&mut self.out, rtype, id, &chunk[..n]);
            }
            if n < chunk.len() {
                break;
            }
            if self.out.len() >= 256 * 1024 {
                self.write_out()?;
            }
        }
        push_record(&mut self.out, rtype, id, b"");
        Ok(())
    }

    /// Writes the records in `out`, tells the observer of them, and
    /// empties `out`.
    fn write_out(&mut self) -> io::Result<()> {
        Timed::new(&self.stream, self.deadline).write_all(&self.out)?;
        self.observer.sent(&self.out);
        self.out.clear();
        Ok(())
    }

    /// Reads the response to the request last sent, up to its END_REQUEST.
    pub fn receive(&mut self) -> io::Result<ClientResponse> {
        let mut res = ClientResponse::default();
        let end = self.receive_into(&mut res)?;
        res.app_status = end.app_status;
        res.protocol_status = end.protocol_status;
        Ok(res)
    }

    /// Reads the response to the request last sent, up to its
    /// END_REQUEST, handing its parts to `sink` as they arrive: the body
    /// streams through in pieces instead of being collected. Returns the
    /// END_REQUEST body. Records for other request ids are skipped, as the
    /// spec says.
    pub fn receive_into(&mut self, sink: &mut impl ResponseSink) -> io::Result<EndRequest> {
        let id = self.request_id;
        let timed = Timed::new(&self.stream, self.deadline);
        let mut reader = BufReader::with_capacity(128 * 1024, timed);
        let mut content = Vec::new();
        let mut head = HeadParser::default();
        loop {
            let h = read_record(&mut reader, &mut content, &mut self.observer)?;
            if h.request_id != id {
                continue;
            }
            let body = &content[..h.content_len as usize];
            match h.record_type {
                record_type::STDOUT => head.feed(body, sink)?,
                record_type::STDERR => sink.stderr(body)?,
                record_type::END_REQUEST => {
                    let end = EndRequest::decode(body).map_err(invalid)?;
                    if end.protocol_status == u8::from(ProtocolStatus::RequestComplete) {
                        head.finish()?;
                    }
                    return Ok(end);
                }
                _ => {}
            }
        }
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
        self.write_out()?;
        let mut content = Vec::new();
        let mut timed = Timed::new(&self.stream, self.deadline);
        let h = read_record(&mut timed, &mut content, &mut self.observer)?;
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
                let (n, v) = p.map_err(invalid)?;
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

fn invalid(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

fn tcp_client(stream: TcpStream) -> io::Result<Client> {
    stream.set_nodelay(true)?;
    Ok(Client::from_tcp(stream))
}

/// Reads one record into `content` (padding included) and tells the
/// observer of it. The end of the stream where a record was due is
/// `UnexpectedEof`; a header that does not decode is `InvalidData`
/// carrying the [`protocol::Error`].
fn read_record(
    reader: &mut impl Read,
    content: &mut Vec<u8>,
    observer: &mut Observer,
) -> io::Result<Header> {
    let mut head = [0u8; HEADER_LEN];
    let got = read_full(reader, &mut head).inspect_err(|e| reset(observer, e, 0))?;
    if got < HEADER_LEN {
        return Err(closed(observer, got));
    }
    let h = match Header::decode(&head) {
        Ok(h) => h.expect("a whole header"),
        Err(e) => {
            observer.notify(&WireEvent::BadHeader(head));
            return Err(invalid(e));
        }
    };
    content.resize(h.content_len as usize + h.padding_len as usize, 0);
    let got = read_full(reader, content).inspect_err(|e| reset(observer, e, HEADER_LEN))?;
    if got < content.len() {
        return Err(closed(observer, HEADER_LEN + got));
    }
    let record = Record {
        header: h,
        content: &content[..h.content_len as usize],
    };
    observer.notify(&WireEvent::Received(record));
    Ok(h)
}

/// Tells the observer of a connection reset by the peer: closed too.
fn reset(observer: &mut Observer, e: &io::Error, partial: usize) {
    if e.kind() == io::ErrorKind::ConnectionReset {
        observer.notify(&WireEvent::Closed { partial });
    }
}

/// Tells the observer that the peer closed the connection, and makes the error.
fn closed(observer: &mut Observer, partial: usize) -> io::Error {
    observer.notify(&WireEvent::Closed { partial });
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the connection closed before END_REQUEST",
    )
}

/// Finds the header block at the start of the STDOUT stream as it
/// arrives, then passes the rest through as the body.
#[derive(Default)]
struct HeadParser {
    /// The stream so far, while the header block is incomplete.
    pending: Vec<u8>,
    done: bool,
}

impl HeadParser {
    fn feed(&mut self, piece: &[u8], sink: &mut impl ResponseSink) -> io::Result<()> {
        if self.done {
            return sink.body(piece);
        }
        // A blank line that ends in `piece` starts at most 3 bytes before it.
        let from = self.pending.len().saturating_sub(3);
        self.pending.extend_from_slice(piece);
        let Some((end, sep)) = blank_line(&self.pending, from) else {
            return Ok(());
        };
        self.done = true;
        sink.head(&parse_head(&self.pending[..end])?)?;
        let body = &self.pending[end + sep..];
        if body.is_empty() {
            Ok(())
        } else {
            sink.body(body)
        }
    }

    fn finish(&self) -> io::Result<()> {
        if self.done {
            Ok(())
        } else {
            Err(invalid("no blank line after the response headers"))
        }
    }
}

/// The first blank line in `buf` at or after `from`: where it starts,
/// and its length (`\r\n\r\n` or `\n\n`).
fn blank_line(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let rest = &buf[from..];
    let found = match (find(rest, b"\r\n\r\n"), find(rest, b"\n\n")) {
        (Some(a), Some(b)) if b < a => (b, 2),
        (Some(a), _) => (a, 4),
        (None, Some(b)) => (b, 2),
        (None, None) => return None,
    };
    Some((from + found.0, found.1))
}

/// Parses a CGI header block (without its blank line).
fn parse_head(block: &[u8]) -> io::Result<ResponseHead> {
    let text = std::str::from_utf8(block).map_err(|_| invalid("headers not UTF-8"))?;
    let mut head = ResponseHead {
        status: 200,
        ..ResponseHead::default()
    };
    for line in text.lines().filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid("header without ':'"))?;
        let value = value.trim().to_owned();
        if name.eq_ignore_ascii_case("Status") {
            head.status = value
                .get(..3)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| invalid("bad Status header"))?;
            head.reason = value[3..].trim().to_owned();
        } else {
            head.headers.push((name.to_owned(), value));
        }
    }
    Ok(head)
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

    /// The STDOUT stream split at every size gives the same response.
    #[test]
    fn the_head_is_found_however_the_stream_is_split() {
        type Case<'a> = (&'a [u8], u16, &'a str, usize, &'a [u8]);
        let cases: [Case<'_>; 4] = [
            (
                b"Status: 404 Not Found\r\nX-A: 1\r\n\r\nbody\n\nmore",
                404,
                "Not Found",
                1,
                b"body\n\nmore",
            ),
            (b"X-A: 1\n\nbody\r\n\r\n", 200, "", 1, b"body\r\n\r\n"),
            (b"Status: 201\r\n\r\n", 201, "", 0, b""),
            (b"X-A: 1\r\n\nbody", 200, "", 1, b"body"),
        ];
        for (stream, status, reason, headers, body) in cases {
            for size in 1..=stream.len() {
                let mut res = ClientResponse::default();
                let mut parser = HeadParser::default();
                for piece in stream.chunks(size) {
                    parser.feed(piece, &mut res).unwrap();
                }
                parser.finish().unwrap();
                let what = format!(
                    "{:?} in pieces of {size}",
                    stream.escape_ascii().to_string()
                );
                assert_eq!((res.status, res.headers.len()), (status, headers), "{what}");
                assert_eq!(res.body, body, "{what}");
                assert_eq!(
                    parse_head(&stream[..stream.len() - body.len()])
                        .unwrap()
                        .reason,
                    reason
                );
            }
        }
    }

    #[test]
    fn a_stream_without_a_blank_line_has_no_head() {
        let mut res = ClientResponse::default();
        let mut parser = HeadParser::default();
        parser.feed(b"Status: 200\r\nbody", &mut res).unwrap();
        assert!(parser.finish().is_err());
        assert!(parse_head(b"no colon").is_err());
        assert!(parse_head(b"Status: x").is_err());
    }
}
