//! The response a handler writes: status, headers, and a body framed into
//! `FCGI_STDOUT` records, plus an `FCGI_STDERR` writer.
//!
//! Output collects in the worker's reusable buffer, which keeps room for
//! each record's 8-byte header in front of its content. A small response
//! (headers, body, the empty STDOUT record and END_REQUEST) leaves in one
//! `writev`, together with anything written to stderr.

use std::cell::Cell;
use std::fmt;
use std::io::{self, IoSlice, Write};

use crate::connection::{Transport, write_all};
use crate::protocol::{
    self, HEADER_LEN, Header, MAX_ALIGNED_CONTENT_LEN as MAX_CONTENT, ProtocolStatus, record_type,
};
use crate::request::aborted_error;

/// Buffered output beyond this many bytes goes to the socket.
const FLUSH_AT: usize = 64 * 1024;

/// A write at least this large goes to the socket straight from the
/// caller's slice, framed by `writev`, instead of through the buffer.
const DIRECT_AT: usize = 32 * 1024;

/// Records framed per `writev` of direct output (16 x 64 KiB = 1 MiB).
const DIRECT_BATCH: usize = 16;

/// The worker's output buffers.
#[derive(Debug)]
pub(crate) struct OutBufs {
    /// STDOUT records; the last one, at `open_at`, is still being filled.
    out: Vec<u8>,
    /// Complete STDERR records.
    err: Vec<u8>,
    /// Header lines set by the handler, not yet placed.
    head: Vec<u8>,
}

impl OutBufs {
    pub(crate) fn new() -> OutBufs {
        OutBufs {
            out: Vec::with_capacity(FLUSH_AT + MAX_CONTENT + 2 * HEADER_LEN + 8),
            err: Vec::with_capacity(1024),
            head: Vec::with_capacity(1024),
        }
    }

    pub(crate) fn trim(&mut self, keep: usize) {
        if self.err.capacity() > keep {
            self.err = Vec::with_capacity(1024);
        }
        if self.head.capacity() > keep {
            self.head = Vec::with_capacity(1024);
        }
    }
}

/// The response to one request.
///
/// Set the status and headers first, then write the body through
/// [`Write`]. Headers go out with the first body bytes that leave the
/// buffer; after that, [`status`](Response::status) and
/// [`header`](Response::header) have no effect (and say so on the error
/// stream).
pub struct Response<'a> {
    io: &'a dyn Transport,
    bufs: &'a mut OutBufs,
    id: u16,
    aborted: &'a Cell<bool>,
    status: u16,
    /// The header block has been placed in `out`.
    head_placed: bool,
    /// STDOUT bytes have reached the socket: the status can no longer change.
    sent: bool,
    /// Where the open STDOUT record's header slot is in `out`.
    open_at: usize,
    /// A write to the socket failed; the connection is finished.
    broken: bool,
}

impl<'a> Response<'a> {
    pub(crate) fn new(
        io: &'a dyn Transport,
        bufs: &'a mut OutBufs,
        id: u16,
        aborted: &'a Cell<bool>,
    ) -> Response<'a> {
        bufs.out.clear();
        bufs.out.extend_from_slice(&[0; HEADER_LEN]);
        bufs.err.clear();
        bufs.head.clear();
        Response {
            io,
            bufs,
            id,
            aborted,
            status: 200,
            head_placed: false,
            sent: false,
            open_at: 0,
            broken: false,
        }
    }

    /// Sets the HTTP status (200 unless set).
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
    pub fn header(&mut self, name: &str, value: &str) -> &mut Self {
        self.header_bytes(name, value.as_bytes())
    }

    /// Adds a response header whose value is not necessarily UTF-8 (as
    /// HTTP allows). The same rules as for [`header`](Response::header)
    /// apply: a name or value containing CR or LF is refused.
    pub fn header_bytes(&mut self, name: &str, value: &[u8]) -> &mut Self {
        if self.head_placed {
            self.late(name);
        } else if name.contains(['\r', '\n'])
            || value.contains(&b'\r')
            || value.contains(&b'\n')
            || name.is_empty()
        {
            let _ = writeln!(
                self.stderr(),
                "fcgi-server: header {name:?} refused: empty name or a line break"
            );
        } else {
            let head = &mut self.bufs.head;
            head.extend_from_slice(name.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value);
            head.extend_from_slice(b"\r\n");
        }
        self
    }

    /// Whether the status and headers are fixed (body output has begun).
    pub fn headers_sent(&self) -> bool {
        self.head_placed
    }

    /// A writer for the `FCGI_STDERR` stream, which the web server writes
    /// to its error log.
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
        let mut line = [0u8; 64];
        let n = {
            let mut w = &mut line[..];
            let _ = write!(w, "Status: {} {}\r\n", self.status, reason(self.status));
            64 - w.len()
        };
        self.append(&line[..n]);
        let head = std::mem::take(&mut self.bufs.head);
        self.append(&head);
        self.bufs.head = head;
        self.append(b"\r\n");
    }

    /// Appends STDOUT content, starting new records as each one fills.
    fn append(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let used = self.bufs.out.len() - self.open_at - HEADER_LEN;
            let take = (MAX_CONTENT - used).min(data.len());
            self.bufs.out.extend_from_slice(&data[..take]);
            data = &data[take..];
            if used + take == MAX_CONTENT {
                self.seal();
            }
        }
    }

    /// Completes the open record's header and padding, and opens a new
    /// record, unless the open one is still empty.
    fn seal(&mut self) {
        let len = self.bufs.out.len() - self.open_at - HEADER_LEN;
        if len == 0 {
            return;
        }
        let h = Header::aligned(record_type::STDOUT, self.id, len as u16);
        self.bufs.out[self.open_at..self.open_at + HEADER_LEN].copy_from_slice(&h.encode());
        self.bufs
            .out
            .extend_from_slice(&[0; 8][..h.padding_len as usize]);
        self.open_at = self.bufs.out.len();
        self.bufs.out.extend_from_slice(&[0; HEADER_LEN]);
    }

    /// Sends the complete records buffered so far, stderr first.
    fn send(&mut self, tail: &[u8]) -> io::Result<()> {
        self.seal();
        let ready = &self.bufs.out[..self.open_at];
        let result = write_all(
            self.io,
            &mut [
                IoSlice::new(&self.bufs.err),
                IoSlice::new(ready),
                IoSlice::new(tail),
            ],
        );
        self.sent |= !ready.is_empty();
        self.bufs.err.clear();
        self.bufs.out.clear();
        self.bufs.out.extend_from_slice(&[0; HEADER_LEN]);
        self.open_at = 0;
        if result.is_err() {
            self.broken = true;
        }
        result
    }

    /// Sends what is buffered, then `data` as STDOUT records framed around
    /// the caller's slice: no copy.
    fn send_direct(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.seal();
        const PAD: [u8; 8] = [0; 8];
        let mut first = true;
        while !data.is_empty() {
            let mut heads = [[0u8; HEADER_LEN]; DIRECT_BATCH];
            let mut chunks: [&[u8]; DIRECT_BATCH] = [&[]; DIRECT_BATCH];
            let mut n = 0;
            while n < DIRECT_BATCH && !data.is_empty() {
                let (chunk, rest) = data.split_at(data.len().min(MAX_CONTENT));
                heads[n] =
                    Header::aligned(record_type::STDOUT, self.id, chunk.len() as u16).encode();
                chunks[n] = chunk;
                (data, n) = (rest, n + 1);
            }
            let mut slices = [IoSlice::new(&[]); 2 + 3 * DIRECT_BATCH];
            if first {
                slices[0] = IoSlice::new(&self.bufs.err);
                slices[1] = IoSlice::new(&self.bufs.out[..self.open_at]);
            }
            for i in 0..n {
                let pad = heads[i][6] as usize;
                slices[2 + 3 * i] = IoSlice::new(&heads[i]);
                slices[3 + 3 * i] = IoSlice::new(chunks[i]);
                slices[4 + 3 * i] = IoSlice::new(&PAD[..pad]);
            }
            let result = write_all(self.io, &mut slices[..2 + 3 * n]);
            if first {
                self.bufs.err.clear();
                self.bufs.out.clear();
                self.bufs.out.extend_from_slice(&[0; HEADER_LEN]);
                self.open_at = 0;
                first = false;
            }
            self.sent = true;
            if let Err(e) = result {
                self.broken = true;
                return Err(e);
            }
        }
        Ok(())
    }

    fn check(&self) -> io::Result<()> {
        if self.aborted.get() {
            Err(aborted_error())
        } else if self.broken {
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
        if self.broken {
            return Ok(false);
        }
        if let Some(msg) = failure {
            let _ = writeln!(self.stderr(), "fcgi-server: {msg}");
        }
        if self.aborted.get() {
            self.discard();
            return self.finish(0).map(|()| true);
        }
        match failure {
            None => self.finish(0).map(|()| true),
            Some(_) if self.sent => self.send(&[]).map(|()| false),
            Some(msg) => {
                self.discard();
                self.status = 500;
                self.place_head_500(debug.then_some(msg));
                self.finish(1).map(|()| true)
            }
        }
    }

    fn discard(&mut self) {
        self.bufs.out.clear();
        self.bufs.out.extend_from_slice(&[0; HEADER_LEN]);
        self.open_at = 0;
        self.bufs.head.clear();
        self.head_placed = true;
    }

    fn place_head_500(&mut self, detail: Option<&str>) {
        self.append(b"Status: 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nInternal Server Error\n");
        if let Some(d) = detail {
            self.append(d.as_bytes());
            self.append(b"\n");
        }
    }

    fn finish(&mut self, app_status: u32) -> io::Result<()> {
        self.place_head();
        let mut tail = [0u8; 2 * HEADER_LEN + 8];
        tail[..HEADER_LEN].copy_from_slice(&Header::new(record_type::STDOUT, self.id, 0).encode());
        tail[HEADER_LEN..].copy_from_slice(&protocol::encode_end_request(
            self.id,
            app_status,
            ProtocolStatus::RequestComplete,
        ));
        self.send(&tail)
    }
}

impl Write for Response<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.check()?;
        self.place_head();
        if data.len() >= DIRECT_AT {
            self.send_direct(data)?;
            return Ok(data.len());
        }
        self.append(data);
        if self.bufs.out.len() >= FLUSH_AT {
            self.send(&[])?;
        }
        Ok(data.len())
    }

    /// Sends the status, headers and body written so far.
    fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        self.place_head();
        self.send(&[])
    }
}

impl fmt::Debug for Response<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("id", &self.id)
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
        for chunk in data.chunks(MAX_CONTENT) {
            protocol::push_record(
                &mut self.res.bufs.err,
                record_type::STDERR,
                self.res.id,
                chunk,
            );
        }
        if self.res.bufs.err.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(data.len())
    }

    /// Sends the error output buffered so far.
    fn flush(&mut self) -> io::Result<()> {
        self.res.check()?;
        let result = write_all(self.res.io, &mut [IoSlice::new(&self.res.bufs.err)]);
        self.res.bufs.err.clear();
        if result.is_err() {
            self.res.broken = true;
        }
        result
    }
}

impl fmt::Debug for Stderr<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stderr").finish_non_exhaustive()
    }
}

/// The reason phrase for a status code.
pub(crate) fn reason(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        418 => "I'm a teapot",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => match code / 100 {
            1 => "Informational",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            _ => "Server Error",
        },
    }
}
