//! The request a handler sees: params borrowed from the worker's buffer and
//! a body that is read from the socket only as the handler reads it.

use std::fmt;
use std::io::{self, Read};

use crate::connection::Active;
use crate::connection::body::Input;
use crate::connection::params::{self, Span};
use crate::protocol::Role;

/// A FastCGI request: its params (the CGI environment) and its body (and,
/// in the filter role, its data stream: [`data`](Request::data)).
///
/// The body is read through [`Read`]; bytes are pulled from the web server
/// only as they are read, so a body of any size streams through in
/// constant memory.
///
/// # Examples
///
/// ```no_run
/// use std::io::{Read, Write};
///
/// fcgi_server::Server::new(|req, res| {
///     let mut body = Vec::new();
///     req.read_to_end(&mut body)?;
///     res.header("Content-Type", "text/plain");
///     write!(res, "{} {} sent {} bytes", req.method(), req.path_info(), body.len())
/// })
/// .run()
/// # .unwrap();
/// ```
pub struct Request<'a> {
    params: &'a [u8],
    index: &'a [Span],
    pub(crate) body: Input<'a>,
    active: Active,
}

impl<'a> Request<'a> {
    pub(crate) fn new(
        params: &'a [u8],
        index: &'a [Span],
        body: Input<'a>,
        active: Active,
    ) -> Request<'a> {
        Request {
            params,
            index,
            body,
            active,
        }
    }

    /// The value of param `name` as bytes. Where the web server sent a
    /// name twice, the last value wins.
    pub fn param_bytes(&self, name: &str) -> Option<&'a [u8]> {
        params::last(self.params, self.index, name.as_bytes())
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
        let (params, name) = (self.params, name.as_bytes());
        self.index
            .iter()
            .filter(move |s| s.name(params) == name)
            .map(move |s| s.value(params))
    }

    /// The value of param `name`, if present and valid UTF-8. Where the
    /// web server sent a name twice, the last value wins.
    ///
    /// ```no_run
    /// # fn handle(req: &mut fcgi_server::Request<'_>, res: &mut fcgi_server::Response<'_>) {
    /// let https = req.param("HTTPS") == Some("on");
    /// let server = req.param("SERVER_NAME").unwrap_or("localhost");
    /// # }
    /// ```
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.param_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every param as `(name, value)` bytes, in the order the web server
    /// sent them; a name sent twice appears once, with its last value.
    ///
    /// ```no_run
    /// use std::io::Write;
    /// # fn handle(req: &mut fcgi_server::Request<'_>, res: &mut fcgi_server::Response<'_>) -> std::io::Result<()> {
    /// for (name, value) in req.params() {
    ///     res.write_all(name)?;
    ///     res.write_all(b"=")?;
    ///     res.write_all(value)?;
    ///     res.write_all(b"\n")?;
    /// }
    /// # Ok(()) }
    /// ```
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
        let params = self.params;
        self.index
            .iter()
            .map(move |s| (s.name(params), s.value(params)))
    }

    /// `REQUEST_METHOD`, or `""`.
    pub fn method(&self) -> &'a str {
        self.param("REQUEST_METHOD").unwrap_or("")
    }

    /// `QUERY_STRING`, or `""` (not percent-decoded).
    ///
    /// ```no_run
    /// # fn handle(req: &mut fcgi_server::Request<'_>, res: &mut fcgi_server::Response<'_>) {
    /// let page = req
    ///     .query_string()
    ///     .split('&')
    ///     .find_map(|kv| kv.strip_prefix("page="))
    ///     .unwrap_or("1");
    /// # }
    /// ```
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
    ///
    /// ```no_run
    /// # fn handle(req: &mut fcgi_server::Request<'_>, res: &mut fcgi_server::Response<'_>) {
    /// let agent = req.header("User-Agent").unwrap_or("unknown");
    /// let wants_json = req.header("Accept").is_some_and(|a| a.contains("json"));
    /// # }
    /// ```
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

    /// The role the web server asked for: [`Role::Responder`] unless the
    /// server plays more ([`Server::roles`](crate::Server::roles)). An
    /// authorizer answers 200 to grant access (see
    /// [`Response::variable`](crate::Response::variable)) and anything
    /// else to deny it; a filter reads the body, then [`data`](Request::data).
    ///
    /// ```no_run
    /// use fcgi_server::Role;
    /// # fn handle(req: &mut fcgi_server::Request<'_>, res: &mut fcgi_server::Response<'_>) -> std::io::Result<()> {
    /// if req.role() == Role::Authorizer {
    ///     if req.param("HTTP_AUTHORIZATION") == Some("Bearer let-me-in") {
    ///         res.variable("AUTH_USER", "alice");
    ///     } else {
    ///         res.status(403);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn role(&self) -> Role {
        self.active.role
    }

    /// The data stream (`FCGI_DATA`) of a filter request: the file that
    /// the web server filters through the application, as a reader.
    ///
    /// The spec sends it after the body, so the first read drops whatever
    /// the handler has not read of the body (reading the body afterwards
    /// gives `Ok(0)`). Bytes are pulled from the web server as they are
    /// read, in constant memory, and count towards no limit; data that a
    /// web server sends before the body has ended is kept, up to 64 KiB,
    /// and read first. For the other roles the stream is empty.
    ///
    /// A filter may answer without reading it (say, from a cache that
    /// [`data_last_mod`](Request::data_last_mod) validates); on a kept-open
    /// connection the rest is then read and dropped after the handler
    /// returns.
    ///
    /// ```no_run
    /// use std::io::{Read, Write};
    /// # fn handle(req: &mut fcgi_server::Request<'_>, res: &mut fcgi_server::Response<'_>) -> std::io::Result<()> {
    /// let mut form = Vec::new();
    /// req.read_to_end(&mut form)?;
    /// let mut file = String::new();
    /// req.data().read_to_string(&mut file)?;
    /// res.header("Content-Type", "text/plain");
    /// res.write_all(file.to_uppercase().as_bytes())
    /// # }
    /// ```
    pub fn data(&mut self) -> Data<'_, 'a> {
        Data {
            body: &mut self.body,
        }
    }

    /// `FCGI_DATA_LENGTH`, the length of a filter's data stream as the web
    /// server announced it, if sent and valid.
    pub fn data_length(&self) -> Option<u64> {
        self.param("FCGI_DATA_LENGTH")?.parse().ok()
    }

    /// `FCGI_DATA_LAST_MOD`, the last modification time of a filter's
    /// data (seconds since the epoch), if sent and valid.
    pub fn data_last_mod(&self) -> Option<u64> {
        self.param("FCGI_DATA_LAST_MOD")?.parse().ok()
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
    /// usually because the HTTP client went away, or the server cut it
    /// off at its [request timeout](crate::Server::request_timeout). Once
    /// it has, reads of the body and writes of the response fail.
    pub fn is_aborted(&self) -> bool {
        self.body.is_aborted() || crate::observe::metrics::worker::cut_off()
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

/// The data stream of a filter request, read through [`Read`]; see
/// [`Request::data`].
pub struct Data<'r, 'a> {
    body: &'r mut Input<'a>,
}

impl Read for Data<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.body.read_data(buf)
    }
}

impl fmt::Debug for Data<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Data").finish_non_exhaustive()
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
        let params = self.params;
        while let Some(span) = self.index.get(self.next) {
            self.next += 1;
            let name = span.name(params);
            let later = &self.index[self.next..];
            if !later.iter().any(|s| s.name(params) == name) {
                return Some((name, span.value(params)));
            }
        }
        None
    }
}
