//! The response a handler writes: an HTTP status, header lines, and the
//! body through [`Write`], over the record framing of
//! [`Output`](crate::connection::output::Output).

use std::cell::Cell;
use std::fmt;
use std::io::{self, Write};

use crate::connection::output::{FLUSH_AT, Output};
use crate::connection::{Transport, aborted_error, output::OutBufs};

/// A write at least this large goes to the socket straight from the
/// caller's slice, framed by `writev`, instead of through the buffer.
const DIRECT_AT: usize = 32 * 1024;

/// The response to one request.
///
/// Set the status and headers first, then write the body through
/// [`Write`]. Headers go out with the first body bytes that leave the
/// buffer; after that, [`status`](Response::status) and
/// [`header`](Response::header) have no effect (and say so on the error
/// stream). A small response leaves in one write when the handler returns.
///
/// # Examples
///
/// ```no_run
/// use std::io::Write;
///
/// fcgi_server::Server::new(|_req, res| {
///     res.status(201).header("Content-Type", "text/plain");
///     writeln!(res, "created")
/// })
/// .run()
/// # .unwrap();
/// ```
pub struct Response<'a> {
    out: Output<'a>,
    /// Header lines set by the handler, not yet placed.
    head: &'a mut Vec<u8>,
    aborted: &'a Cell<bool>,
    status: u16,
    /// The status line and headers are in the output: they can no longer
    /// change.
    head_placed: bool,
    /// Body bytes the handler wrote (for the access log).
    body_bytes: u64,
}

impl<'a> Response<'a> {
    pub(crate) fn new(
        io: &'a dyn Transport,
        bufs: &'a mut OutBufs,
        head: &'a mut Vec<u8>,
        id: u16,
        aborted: &'a Cell<bool>,
    ) -> Response<'a> {
        head.clear();
        Response {
            out: Output::new(io, bufs, id),
            head,
            aborted,
            status: 200,
            head_placed: false,
            body_bytes: 0,
        }
    }

    /// The status the client gets: the handler's, or 500 when it failed
    /// before output left (see [`end`](Response::end)).
    pub(crate) fn final_status(&self, failed: bool) -> u16 {
        if failed && !self.out.is_sent() {
            500
        } else {
            self.status
        }
    }

    /// Body bytes the handler wrote.
    pub(crate) fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    /// Sets the HTTP status (200 unless set).
    ///
    /// ```no_run
    /// # fn handle(_req: &mut fcgi_server::Request<'_>, res: &mut fcgi_server::Response<'_>) {
    /// res.status(404);
    /// # }
    /// ```
    pub fn status(&mut self, code: u16) -> &mut Self {
        if self.head_placed {
            self.late("status");
        } else {
            self.status = code;
        }
        self
    }

    /// Adds a response header. A name or value containing CR or LF is
    /// refused (it would forge headers) and reported on the error stream.
    ///
    /// ```no_run
    /// # fn handle(_req: &mut fcgi_server::Request<'_>, res: &mut fcgi_server::Response<'_>) {
    /// res.header("Content-Type", "application/json")
    ///     .header("Cache-Control", "no-store");
    /// # }
    /// ```
    pub fn header(&mut self, name: &str, value: &str) -> &mut Self {
        self.header_bytes(name, value.as_bytes())
    }

    /// Adds a response header whose value is not necessarily UTF-8 (as
    /// HTTP allows). The same rules as for [`header`](Response::header)
    /// apply: a name or value containing CR or LF is refused.
    pub fn header_bytes(&mut self, name: &str, value: &[u8]) -> &mut Self {
        let breaks = |b: &[u8]| b.iter().any(|&c| c == b'\r' || c == b'\n');
        if self.head_placed {
            self.late(name);
        } else if name.is_empty() || breaks(name.as_bytes()) || breaks(value) {
            let _ = writeln!(
                self.stderr(),
                "fcgi-server: header {name:?} refused: empty name or a line break"
            );
        } else {
            for part in [name.as_bytes(), b": ", value, b"\r\n"] {
                self.head.extend_from_slice(part);
            }
        }
        self
    }

    /// For an authorizer ([`Role::Authorizer`](crate::Role::Authorizer)):
    /// passes `name=value` on to the requests that the web server makes
    /// for this HTTP request once access is granted (the header
    /// `Variable-NAME: value`, the spec's section 6.3).
    ///
    /// An authorizer grants access with status 200, the default, and
    /// denies it with any other; on a denial the web server sends the
    /// status, headers and body to the client, while on a grant it keeps
    /// only the `Variable-` headers and ignores the body. lighttpd passes
    /// the value to the backends that follow (a responder sees it as a
    /// param); Apache mod_fcgid passes it to them too, and sends the
    /// header to the client as well. An empty name is refused, as are
    /// line breaks.
    ///
    /// ```no_run
    /// # fn handle(req: &mut fcgi_server::Request<'_>, res: &mut fcgi_server::Response<'_>) {
    /// match req.param("HTTP_AUTHORIZATION") {
    ///     Some("Bearer let-me-in") => {
    ///         res.variable("AUTH_USER", "alice");
    ///     }
    ///     _ => {
    ///         res.status(403);
    ///     }
    /// }
    /// # }
    /// ```
    pub fn variable(&mut self, name: &str, value: &str) -> &mut Self {
        if name.is_empty() {
            return self.header("", value);
        }
        let mut full = String::with_capacity("Variable-".len() + name.len());
        full.push_str("Variable-");
        full.push_str(name);
        self.header(&full, value)
    }

    /// Whether the status and headers are fixed (body output has begun).
    pub fn headers_sent(&self) -> bool {
        self.head_placed
    }

    /// A writer for the `FCGI_STDERR` stream, which the web server writes
    /// to its error log.
    ///
    /// ```no_run
    /// use std::io::Write;
    /// # fn handle(_req: &mut fcgi_server::Request<'_>, res: &mut fcgi_server::Response<'_>) -> std::io::Result<()> {
    /// writeln!(res.stderr(), "cache miss for /items/7")?;
    /// # Ok(()) }
    /// ```
    pub fn stderr(&mut self) -> Stderr<'_, 'a> {
        Stderr { res: self }
    }

    fn late(&mut self, what: &str) {
        let _ = writeln!(
            self.stderr(),
            "fcgi-server: {what} set after the response body began; ignored"
        );
    }

    /// Puts the status line and headers at the start of the body.
    fn place_head(&mut self) {
        if self.head_placed {
            return;
        }
        self.head_placed = true;
        let mut digits = [0u8; 5];
        let mut at = digits.len();
        let mut code = self.status;
        loop {
            at -= 1;
            digits[at] = b'0' + (code % 10) as u8;
            code /= 10;
            if code == 0 {
                break;
            }
        }
        for part in [
            b"Status: ",
            &digits[at..],
            b" ",
            reason(self.status).as_bytes(),
        ] {
            self.out.append(part);
        }
        self.out.append(b"\r\n");
        self.out.append(self.head);
        self.out.append(b"\r\n");
    }

    fn check(&self) -> io::Result<()> {
        if self.aborted.get() {
            Err(aborted_error())
        } else if self.out.is_broken() {
            Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "connection to the web server lost",
            ))
        } else {
            Ok(())
        }
    }

    /// Ends the request: the rest of the output, the end of the STDOUT
    /// stream and END_REQUEST, in one write.
    ///
    /// `failure` is the handler's error or panic message. Before any
    /// output was sent it becomes a 500 response; after, the connection
    /// must be closed without END_REQUEST, so that the web server and the
    /// client see the response cut off rather than complete. Returns
    /// whether the connection can serve another request.
    pub(crate) fn end(&mut self, failure: Option<&str>, debug: bool) -> io::Result<bool> {
        if self.out.is_broken() {
            return Ok(false);
        }
        if let Some(msg) = failure {
            let _ = writeln!(self.stderr(), "fcgi-server: {msg}");
        }
        if self.aborted.get() {
            // Nothing more of the response: the client is gone.
            self.out.discard();
            return self.out.finish(0).map(|()| true);
        }
        match failure {
            None => {
                self.place_head();
                self.out.finish(0).map(|()| true)
            }
            Some(_) if self.out.is_sent() => self.out.send(&[]).map(|()| false),
            Some(msg) => {
                self.out.discard();
                self.out.append(INTERNAL_ERROR);
                if debug {
                    self.out.append(msg.as_bytes());
                    self.out.append(b"\n");
                }
                self.out.finish(1).map(|()| true)
            }
        }
    }
}

/// The 500 response that replaces a failed handler's.
const INTERNAL_ERROR: &[u8] = b"Status: 500 Internal Server Error\r\n\
    Content-Type: text/plain; charset=utf-8\r\n\r\nInternal Server Error\n";

impl Write for Response<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.check()?;
        self.place_head();
        self.body_bytes += data.len() as u64;
        if data.len() >= DIRECT_AT {
            self.out.send_direct(data)?;
            return Ok(data.len());
        }
        self.out.append(data);
        if self.out.buffered() >= FLUSH_AT {
            self.out.send(&[])?;
        }
        Ok(data.len())
    }

    /// Sends the status, headers and body written so far.
    fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        self.place_head();
        self.out.send(&[])
    }
}

impl fmt::Debug for Response<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers_sent", &self.head_placed)
            .finish_non_exhaustive()
    }
}

/// A writer for the `FCGI_STDERR` stream of one response; see
/// [`Response::stderr`].
pub struct Stderr<'r, 'a> {
    res: &'r mut Response<'a>,
}

impl Write for Stderr<'_, '_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.res.check()?;
        self.res.out.append_stderr(data);
        if self.res.out.buffered_stderr() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(data.len())
    }

    /// Sends the error output buffered so far.
    fn flush(&mut self) -> io::Result<()> {
        self.res.check()?;
        self.res.out.send_stderr()
    }
}

impl fmt::Debug for Stderr<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stderr").finish_non_exhaustive()
    }
}

/// The reason phrases of the codes the `http` crate names, its canonical
/// ones (and so hyper's), in order of code.
const REASONS: &[(u16, &str)] = &[
    (100, "Continue"),
    (101, "Switching Protocols"),
    (102, "Processing"),
    (103, "Early Hints"),
    (200, "OK"),
    (201, "Created"),
    (202, "Accepted"),
    (203, "Non Authoritative Information"),
    (204, "No Content"),
    (205, "Reset Content"),
    (206, "Partial Content"),
    (207, "Multi-Status"),
    (208, "Already Reported"),
    (226, "IM Used"),
    (300, "Multiple Choices"),
    (301, "Moved Permanently"),
    (302, "Found"),
    (303, "See Other"),
    (304, "Not Modified"),
    (305, "Use Proxy"),
    (307, "Temporary Redirect"),
    (308, "Permanent Redirect"),
    (400, "Bad Request"),
    (401, "Unauthorized"),
    (402, "Payment Required"),
    (403, "Forbidden"),
    (404, "Not Found"),
    (405, "Method Not Allowed"),
    (406, "Not Acceptable"),
    (407, "Proxy Authentication Required"),
    (408, "Request Timeout"),
    (409, "Conflict"),
    (410, "Gone"),
    (411, "Length Required"),
    (412, "Precondition Failed"),
    (413, "Payload Too Large"),
    (414, "URI Too Long"),
    (415, "Unsupported Media Type"),
    (416, "Range Not Satisfiable"),
    (417, "Expectation Failed"),
    (418, "I'm a teapot"),
    (421, "Misdirected Request"),
    (422, "Unprocessable Entity"),
    (423, "Locked"),
    (424, "Failed Dependency"),
    (425, "Too Early"),
    (426, "Upgrade Required"),
    (428, "Precondition Required"),
    (429, "Too Many Requests"),
    (431, "Request Header Fields Too Large"),
    (451, "Unavailable For Legal Reasons"),
    (500, "Internal Server Error"),
    (501, "Not Implemented"),
    (502, "Bad Gateway"),
    (503, "Service Unavailable"),
    (504, "Gateway Timeout"),
    (505, "HTTP Version Not Supported"),
    (506, "Variant Also Negotiates"),
    (507, "Insufficient Storage"),
    (508, "Loop Detected"),
    (510, "Not Extended"),
    (511, "Network Authentication Required"),
];

/// The reason phrase for a status code: the `http` crate's (and so
/// hyper's) canonical one, so that an answer reads the same as from an
/// HTTP server in Rust; a class name for a code it does not know.
pub(crate) fn reason(code: u16) -> &'static str {
    match REASONS.binary_search_by_key(&code, |&(c, _)| c) {
        Ok(i) => REASONS[i].1,
        Err(_) => match code / 100 {
            1 => "Informational",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            _ => "Server Error",
        },
    }
}

#[cfg(all(test, feature = "http"))]
mod tests {
    /// Every code the `http` crate names has the same reason phrase here.
    #[test]
    fn reasons_are_the_http_crates() {
        for code in 100..=999 {
            let Ok(status) = ::http::StatusCode::from_u16(code) else {
                continue;
            };
            if let Some(want) = status.canonical_reason() {
                assert_eq!(super::reason(code), want, "{code}");
            }
        }
    }
}
