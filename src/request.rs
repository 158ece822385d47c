//! The request a handler sees: params borrowed from the worker's buffer and
//! a body that is read from the socket only as the handler reads it.

use std::cell::Cell;
use std::fmt;
use std::io::{self, Read};

use crate::connection::{self, Active, Config, Fault, Kind, ReadBuf, Transport};
use crate::protocol::{self, HEADER_LEN, ProtocolStatus, Role, record_type};

/// Where one name-value pair sits in the params buffer: (offset, length).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    pub(crate) name: (u32, u32),
    pub(crate) value: (u32, u32),
}

/// A FastCGI request: its params (the CGI environment) and its body.
///
/// The body is read through [`Read`]; bytes are pulled from the web server
/// only as they are read, so a body of any size streams through in
/// constant memory.
pub struct Request<'a> {
    params: &'a [u8],
    index: &'a [Span],
    pub(crate) body: Body<'a>,
    active: Active,
}

impl<'a> Request<'a> {
    pub(crate) fn new(
        params: &'a [u8],
        index: &'a [Span],
        body: Body<'a>,
        active: Active,
    ) -> Request<'a> {
        Request {
            params,
            index,
            body,
            active,
        }
    }

    fn slice(&self, (at, len): (u32, u32)) -> &'a [u8] {
        &self.params[at as usize..(at + len) as usize]
    }

    /// The value of param `name` as bytes. Where the web server sent a
    /// name twice, the last value wins.
    pub fn param_bytes(&self, name: &str) -> Option<&'a [u8]> {
        let name = name.as_bytes();
        self.index
            .iter()
            .rev()
            .find(|s| self.slice(s.name) == name)
            .map(|s| self.slice(s.value))
    }

    /// Every value of param `name`, in the order the web server sent them.
    ///
    /// A web server may send a name more than once: nginx passes two
    /// `Cookie` request headers as two `HTTP_COOKIE` params.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn handle(req: &mut fcgi_server::Request<'_>, res: &mut fcgi_server::Response<'_>) -> std::io::Result<()> {
    /// let cookies: Vec<&[u8]> = req.param_values("HTTP_COOKIE").collect();
    /// # Ok(()) }
    /// ```
    pub fn param_values<'r>(&'r self, name: &'r str) -> impl Iterator<Item = &'a [u8]> + 'r {
        let name = name.as_bytes();
        self.index
            .iter()
            .filter(move |s| self.slice(s.name) == name)
            .map(|s| self.slice(s.value))
    }

    /// The value of param `name`, if present and valid UTF-8. Where the
    /// web server sent a name twice, the last value wins.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.param_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every param as `(name, value)` bytes, in the order the web server
    /// sent them; a name sent twice appears once, with its last value.
    pub fn params(&self) -> Params<'a> {
        Params {
            params: self.params,
            index: self.index,
            next: 0,
        }
    }

    /// Every param as `(name, value)` bytes, in the order the web server
    /// sent them, a name sent twice appearing twice; unlike
    /// [`params`](Request::params), which keeps the last value of a name,
    /// this costs one step per param.
    pub fn all_params(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + '_ {
        self.index
            .iter()
            .map(|s| (self.slice(s.name), self.slice(s.value)))
    }

    /// `REQUEST_METHOD`, or `""`.
    pub fn method(&self) -> &'a str {
        self.param("REQUEST_METHOD").unwrap_or("")
    }

    /// `QUERY_STRING`, or `""`.
    pub fn query_string(&self) -> &'a str {
        self.param("QUERY_STRING").unwrap_or("")
    }

    /// `REQUEST_URI` (path and query as the client sent them), or `""`.
    pub fn request_uri(&self) -> &'a str {
        self.param("REQUEST_URI").unwrap_or("")
    }

    /// `SCRIPT_NAME`, the mount point of the application, or `""`.
    pub fn script_name(&self) -> &'a str {
        self.param("SCRIPT_NAME").unwrap_or("")
    }

    /// `PATH_INFO`, the path below the mount point, or `""`.
    pub fn path_info(&self) -> &'a str {
        self.param("PATH_INFO").unwrap_or("")
    }

    /// `CONTENT_TYPE`, if sent and not empty.
    pub fn content_type(&self) -> Option<&'a str> {
        self.param("CONTENT_TYPE").filter(|v| !v.is_empty())
    }

    /// `CONTENT_LENGTH` as a number, if sent and valid.
    pub fn content_length(&self) -> Option<u64> {
        self.param("CONTENT_LENGTH")?.parse().ok()
    }

    /// `REMOTE_ADDR`, the HTTP client's address, or `""`.
    pub fn remote_addr(&self) -> &'a str {
        self.param("REMOTE_ADDR").unwrap_or("")
    }

    /// `HTTP_<NAME>`: the HTTP request header `name` as the web server
    /// passed it (`"User-Agent"` is looked up as `HTTP_USER_AGENT`).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        let mut key = [0u8; 128];
        let want = name.len() + 5;
        let key = key.get_mut(..want)?;
        key[..5].copy_from_slice(b"HTTP_");
        for (dst, src) in key[5..].iter_mut().zip(name.bytes()) {
            *dst = if src == b'-' {
                b'_'
            } else {
                src.to_ascii_uppercase()
            };
        }
        self.param(std::str::from_utf8(key).ok()?)
    }

    /// The role the web server asked for.
    pub fn role(&self) -> Role {
        self.active.role
    }

    /// The FastCGI request id.
    pub fn id(&self) -> u16 {
        self.active.id
    }

    /// Whether the web server keeps the connection open after this request.
    pub fn keep_conn(&self) -> bool {
        self.active.keep_conn
    }

    /// Whether the web server aborted this request (`FCGI_ABORT_REQUEST`),
    /// usually because the HTTP client went away. Once it has, reads of
    /// the body and writes of the response fail.
    pub fn is_aborted(&self) -> bool {
        self.body.aborted.get()
    }
}

impl Read for Request<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.body.read(buf)
    }
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.active.id)
            .field("role", &self.active.role)
            .field("method", &self.method())
            .field("request_uri", &self.request_uri())
            .finish_non_exhaustive()
    }
}

/// An iterator over a request's params; see [`Request::params`].
#[derive(Clone, Debug)]
pub struct Params<'a> {
    params: &'a [u8],
    index: &'a [Span],
    next: usize,
}

impl<'a> Iterator for Params<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let get = |(at, len): (u32, u32)| &self.params[at as usize..(at + len) as usize];
        while let Some(span) = self.index.get(self.next) {
            self.next += 1;
            let name = get(span.name);
            let later = &self.index[self.next..];
            if !later.iter().any(|s| get(s.name) == name) {
                return Some((name, get(span.value)));
            }
        }
        None
    }
}

/// The request body: `FCGI_STDIN` records pulled from the connection on
/// demand. Management records and stray requests that arrive meanwhile
/// are answered here too.
pub(crate) struct Body<'a> {
    io: &'a dyn Transport,
    rbuf: &'a mut ReadBuf,
    cfg: &'a Config,
    active: Active,
    aborted: &'a Cell<bool>,
    /// Content bytes of the current STDIN record still in `rbuf`.
    left: usize,
    /// Padding bytes after them.
    pad: usize,
    done: bool,
    /// A connection-level failure met while reading; the worker closes.
    pub(crate) fault: Option<Fault>,
}

impl<'a> Body<'a> {
    pub(crate) fn new(
        io: &'a dyn Transport,
        rbuf: &'a mut ReadBuf,
        cfg: &'a Config,
        active: Active,
        aborted: &'a Cell<bool>,
    ) -> Body<'a> {
        Body {
            io,
            rbuf,
            cfg,
            active,
            aborted,
            left: 0,
            pad: 0,
            done: false,
            fault: None,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Drops what remains of a partly read STDIN record, so that the
    /// buffer starts at a record boundary again.
    pub(crate) fn skip_rest_of_record(&mut self) {
        self.rbuf.consume(self.left + self.pad);
        self.left = 0;
        self.pad = 0;
    }

    fn fail(&mut self, fault: Fault) -> io::Error {
        let err = match &fault {
            Fault::Io(e) => io::Error::new(e.kind(), e.to_string()),
            Fault::Protocol(msg) | Fault::Limit(msg) => {
                io::Error::new(io::ErrorKind::InvalidData, msg.clone())
            }
        };
        self.fault = Some(fault);
        err
    }

    /// Handles records until STDIN content is at the front of the buffer,
    /// the body has ended, or something failed.
    fn advance(&mut self) -> Result<(), Fault> {
        while self.left == 0 && !self.done && !self.aborted.get() {
            let Some((rec, used)) = protocol::decode_record(self.rbuf.data())? else {
                if self.rbuf.fill(self.io, None)? == 0 {
                    return Err(Fault::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the web server closed the connection before the end of the request",
                    )));
                }
                continue;
            };
            let h = rec.header;
            match connection::classify(&h, Some(&self.active)) {
                Kind::Ours if h.record_type == record_type::STDIN => {
                    if rec.content.is_empty() {
                        self.done = true;
                    } else {
                        self.rbuf.consume(HEADER_LEN);
                        self.left = h.content_len as usize;
                        self.pad = h.padding_len as usize;
                        return Ok(());
                    }
                }
                Kind::Ours if h.record_type == record_type::ABORT_REQUEST => self.aborted.set(true),
                Kind::Management => connection::management(self.io, &h, rec.content, self.cfg)?,
                Kind::Concurrent => {
                    connection::refuse(self.io, h.request_id, ProtocolStatus::CantMpxConn)?
                }
                Kind::Invalid => return Err(connection::invalid_type(&h)),
                Kind::Ours | Kind::Begin | Kind::Ignore => {}
            }
            self.rbuf.consume(used);
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(f) = &self.fault {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, format!("{f:?}")));
        }
        if let Err(f) = self.advance() {
            return Err(self.fail(f));
        }
        if self.aborted.get() {
            return Err(aborted_error());
        }
        let n = self.left.min(buf.len());
        buf[..n].copy_from_slice(&self.rbuf.data()[..n]);
        self.rbuf.consume(n);
        self.left -= n;
        if self.left == 0 {
            self.rbuf.consume(self.pad);
            self.pad = 0;
        }
        Ok(n)
    }
}

pub(crate) fn aborted_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "request aborted by the web server",
    )
}

/// The value span of the last pair named `name`.
#[cfg(test)]
fn lookup(params: &[u8], index: &[Span], name: &[u8]) -> Option<(u32, u32)> {
    let get = |(at, len): (u32, u32)| &params[at as usize..(at + len) as usize];
    index
        .iter()
        .rev()
        .find(|s| get(s.name) == name)
        .map(|s| s.value)
}

/// Points the pair at position `at` of `index` at `value`, or, with no
/// position, adds a pair named `name`. Returns the pair's position.
fn put(
    params: &mut Vec<u8>,
    index: &mut Vec<Span>,
    at: Option<usize>,
    name: &[u8],
    value: (u32, u32),
) -> usize {
    if let Some(i) = at {
        index[i].value = value;
        return i;
    }
    let name_at = params.len() as u32;
    params.extend_from_slice(name);
    index.push(Span {
        name: (name_at, name.len() as u32),
        value,
    });
    index.len() - 1
}

/// The positions in the index of the last `SCRIPT_NAME`, `PATH_INFO` and
/// `REQUEST_URI` pairs, noted while the index is built.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PathParams {
    script: Option<usize>,
    path: Option<usize>,
    uri: Option<usize>,
}

impl PathParams {
    /// Notes the pair at position `i`, if it is one of the three.
    pub(crate) fn note(&mut self, name: &[u8], i: usize) {
        // Most names differ in length from all three: one comparison.
        let slot = match name.len() {
            9 if name == b"PATH_INFO" => &mut self.path,
            11 if name == b"SCRIPT_NAME" => &mut self.script,
            11 if name == b"REQUEST_URI" => &mut self.uri,
            _ => return,
        };
        *slot = Some(i);
    }
}

/// Corrects `SCRIPT_NAME` and `PATH_INFO` in place, without allocating
/// (derived values are spans into the params buffer, which may grow).
///
/// - `root_mount`: the application serves the whole site, but the web
///   server put the request path in `SCRIPT_NAME` (lighttpd at `"/"`): the
///   path moves to `PATH_INFO` and `SCRIPT_NAME` becomes empty.
/// - A missing or empty `PATH_INFO` is derived, as flup does, from the path
///   of `REQUEST_URI` below `SCRIPT_NAME` (not percent-decoded).
pub(crate) fn fix_paths(
    params: &mut Vec<u8>,
    index: &mut Vec<Span>,
    found: PathParams,
    root_mount: bool,
) {
    let PathParams {
        mut script,
        mut path,
        uri,
    } = found;
    let value = |index: &[Span], i: Option<usize>| i.map_or((0, 0), |i| index[i].value);
    if root_mount {
        let (s, p) = (value(index, script), value(index, path));
        let at = params.len() as u32;
        params.extend_from_within(s.0 as usize..(s.0 + s.1) as usize);
        params.extend_from_within(p.0 as usize..(p.0 + p.1) as usize);
        path = Some(put(params, index, path, b"PATH_INFO", (at, s.1 + p.1)));
        script = Some(put(params, index, script, b"SCRIPT_NAME", (at, 0)));
    }
    if value(index, path).1 > 0 {
        return;
    }
    let Some(uri) = uri else {
        return;
    };
    let (uri_at, uri_len) = index[uri].value;
    let request_uri = &params[uri_at as usize..(uri_at + uri_len) as usize];
    let path_len = request_uri
        .iter()
        .position(|&b| b == b'?')
        .unwrap_or(request_uri.len()) as u32;
    let (script_at, script_len) = value(index, script);
    let script_name = &params[script_at as usize..(script_at + script_len) as usize];
    if script_len <= path_len && request_uri.starts_with(script_name) {
        let derived = (uri_at + script_len, path_len - script_len);
        put(params, index, path, b"PATH_INFO", derived);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Pairs, encode_pair};

    fn fixed(pairs: &[(&str, &str)], root: bool) -> (Option<String>, Option<String>) {
        let mut params = Vec::new();
        for (k, v) in pairs {
            encode_pair(&mut params, k.as_bytes(), v.as_bytes());
        }
        let base = params.as_ptr() as usize;
        let mut found = PathParams::default();
        let mut index: Vec<Span> = Pairs::new(&params, 1 << 20)
            .enumerate()
            .map(|(i, p)| {
                let (n, v) = p.unwrap();
                found.note(n, i);
                let at = |s: &[u8]| (s.as_ptr() as usize - base) as u32;
                Span {
                    name: (at(n), n.len() as u32),
                    value: (at(v), v.len() as u32),
                }
            })
            .collect();
        fix_paths(&mut params, &mut index, found, root);
        let get = |name: &[u8]| {
            lookup(&params, &index, name).map(|(at, len)| {
                String::from_utf8(params[at as usize..(at + len) as usize].to_vec()).unwrap()
            })
        };
        (get(b"SCRIPT_NAME"), get(b"PATH_INFO"))
    }

    #[test]
    fn path_fix_cases() {
        let s = |v: &str| Some(v.to_owned());
        type Pairs<'a> = &'a [(&'a str, &'a str)];
        type Paths = (Option<String>, Option<String>);
        let cases: &[(Pairs<'_>, bool, Paths)] = &[
            // Prefix mount, front end sends both: untouched.
            (
                &[
                    ("SCRIPT_NAME", "/app"),
                    ("PATH_INFO", "/x"),
                    ("REQUEST_URI", "/app/y"),
                ],
                false,
                (s("/app"), s("/x")),
            ),
            // No PATH_INFO: derived from REQUEST_URI, query cut off.
            (
                &[("SCRIPT_NAME", "/app"), ("REQUEST_URI", "/app/a/b?q=1")],
                false,
                (s("/app"), s("/a/b")),
            ),
            // Empty PATH_INFO: derived too.
            (
                &[
                    ("SCRIPT_NAME", "/app"),
                    ("PATH_INFO", ""),
                    ("REQUEST_URI", "/app/z"),
                ],
                false,
                (s("/app"), s("/z")),
            ),
            // SCRIPT_NAME not a prefix of the path: left alone.
            (
                &[("SCRIPT_NAME", "/other"), ("REQUEST_URI", "/app/z")],
                false,
                (s("/other"), None),
            ),
            // lighttpd at root: the path is in SCRIPT_NAME.
            (
                &[
                    ("SCRIPT_NAME", "/a/b"),
                    ("PATH_INFO", ""),
                    ("REQUEST_URI", "/a/b?x"),
                ],
                true,
                (s(""), s("/a/b")),
            ),
            (
                &[("SCRIPT_NAME", "/a"), ("PATH_INFO", "/b")],
                true,
                (s(""), s("/a/b")),
            ),
            // Already right (fix-root-scriptname): unchanged.
            (
                &[("SCRIPT_NAME", ""), ("PATH_INFO", "/a/b")],
                true,
                (s(""), s("/a/b")),
            ),
        ];
        for (pairs, root, want) in cases {
            assert_eq!(&fixed(pairs, *root), want, "{pairs:?} root={root}");
        }
    }
}
