//! The response's records: `FCGI_STDOUT` content framed in the worker's
//! reusable buffer, which keeps room for each record's 8-byte header in
//! front of its content; `FCGI_STDERR` records beside it; `FCGI_END_REQUEST`.
//!
//! A small response (its content, the empty STDOUT record and END_REQUEST)
//! leaves in one `writev`, together with anything written to stderr. What
//! the content means (status line, headers, body) is the business of
//! [`Response`](crate::Response), above.

use std::io::{self, IoSlice};

use super::Transport;
use crate::protocol::{
    self, EndRequest, HEADER_LEN, Header, MAX_ALIGNED_CONTENT_LEN as MAX_CONTENT, ProtocolStatus,
    record_type,
};

/// Buffered output beyond this many bytes goes to the socket.
pub(crate) const FLUSH_AT: usize = 64 * 1024;

/// Records framed per `writev` of direct output (16 x 64 KiB = 1 MiB).
const DIRECT_BATCH: usize = 16;

/// A worker's output buffers.
#[derive(Debug)]
pub(crate) struct OutBufs {
    /// STDOUT records; the last one, at `Output::open_at`, is still being filled.
    out: Vec<u8>,
    /// Complete STDERR records.
    err: Vec<u8>,
}

impl OutBufs {
    /// Small at first (a worker that only ever answers small responses
    /// touches no more memory than it needs); the STDOUT buffer grows, once,
    /// to what a large response needs: [`FLUSH_AT`] and a record.
    pub(crate) fn new() -> OutBufs {
        OutBufs {
            out: Vec::with_capacity(8 * 1024),
            err: Vec::with_capacity(1024),
        }
    }

    pub(crate) fn trim(&mut self, keep: usize) {
        if self.err.capacity() > keep {
            self.err = Vec::with_capacity(1024);
        }
    }
}

/// The output records of one request.
pub(crate) struct Output<'a> {
    io: &'a dyn Transport,
    bufs: &'a mut OutBufs,
    id: u16,
    /// Where the open STDOUT record's header slot is in `bufs.out`.
    open_at: usize,
    /// STDOUT content has reached the socket.
    sent: bool,
    /// A write to the socket failed; the connection is finished.
    broken: bool,
}

impl<'a> Output<'a> {
    pub(crate) fn new(io: &'a dyn Transport, bufs: &'a mut OutBufs, id: u16) -> Output<'a> {
        bufs.err.clear();
        let mut output = Output {
            io,
            bufs,
            id,
            open_at: 0,
            sent: false,
            broken: false,
        };
        output.discard();
        output
    }

    /// Whether STDOUT content has reached the socket.
    pub(crate) fn is_sent(&self) -> bool {
        self.sent
    }

    /// Whether a write to the socket failed.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken
    }

    /// Bytes of STDOUT held in the buffer, headers included.
    pub(crate) fn buffered(&self) -> usize {
        self.bufs.out.len()
    }

    /// Drops the STDOUT content not yet sent: the buffer holds only the
    /// header slot of an empty open record.
    pub(crate) fn discard(&mut self) {
        self.bufs.out.clear();
        self.bufs.out.extend_from_slice(&[0; HEADER_LEN]);
        self.open_at = 0;
    }

    /// Appends STDOUT content, starting new records as each one fills.
    pub(crate) fn append(&mut self, mut data: &[u8]) {
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

    /// Appends `data` as STDERR records; they leave with the next send.
    pub(crate) fn append_stderr(&mut self, data: &[u8]) {
        for chunk in data.chunks(MAX_CONTENT) {
            protocol::push_record(&mut self.bufs.err, record_type::STDERR, self.id, chunk);
        }
    }

    /// Bytes of STDERR records held.
    pub(crate) fn buffered_stderr(&self) -> usize {
        self.bufs.err.len()
    }

    /// Sends the STDERR records held.
    pub(crate) fn send_stderr(&mut self) -> io::Result<()> {
        let result = self.io.write_all(&mut [IoSlice::new(&self.bufs.err)]);
        self.bufs.err.clear();
        self.note(result)
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

    /// Remembers a failed write: the connection is finished.
    fn note(&mut self, result: io::Result<()>) -> io::Result<()> {
        self.broken |= result.is_err();
        result
    }

    /// Sends the complete records held (stderr first), then `tail`.
    pub(crate) fn send(&mut self, tail: &[u8]) -> io::Result<()> {
        self.seal();
        let ready = &self.bufs.out[..self.open_at];
        let result = self.io.write_all(&mut [
            IoSlice::new(&self.bufs.err),
            IoSlice::new(ready),
            IoSlice::new(tail),
        ]);
        self.sent |= !ready.is_empty();
        self.bufs.err.clear();
        self.discard();
        self.note(result)
    }

    /// Sends what is held, then `data` as STDOUT records framed around
    /// the caller's slice: no copy.
    pub(crate) fn send_direct(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.seal();
        let mut first = true;
        while !data.is_empty() {
            let (batch, rest) = data.split_at(data.len().min(DIRECT_BATCH * MAX_CONTENT));
            let result = self.send_batch(batch, first);
            if first {
                self.bufs.err.clear();
                self.discard();
                first = false;
            }
            self.sent = true;
            self.note(result)?;
            data = rest;
        }
        Ok(())
    }

    /// One `writev` of up to [`DIRECT_BATCH`] records framed around
    /// `batch`, after what is held when `with_held`.
    fn send_batch(&self, batch: &[u8], with_held: bool) -> io::Result<()> {
        const PAD: [u8; 8] = [0; 8];
        let mut heads = [[0u8; HEADER_LEN]; DIRECT_BATCH];
        let mut slices = [IoSlice::new(&[]); 2 + 3 * DIRECT_BATCH];
        if with_held {
            slices[0] = IoSlice::new(&self.bufs.err);
            slices[1] = IoSlice::new(&self.bufs.out[..self.open_at]);
        }
        let chunks = batch.chunks(MAX_CONTENT);
        let n = chunks.len();
        for (i, chunk) in chunks.enumerate() {
            heads[i] = Header::aligned(record_type::STDOUT, self.id, chunk.len() as u16).encode();
        }
        for (i, chunk) in batch.chunks(MAX_CONTENT).enumerate() {
            let pad = heads[i][6] as usize;
            slices[2 + 3 * i] = IoSlice::new(&heads[i]);
            slices[3 + 3 * i] = IoSlice::new(chunk);
            slices[4 + 3 * i] = IoSlice::new(&PAD[..pad]);
        }
        self.io.write_all(&mut slices[..2 + 3 * n])
    }

    /// Ends the request: what is held, the end of the STDOUT stream and
    /// END_REQUEST with `app_status`, in one write.
    pub(crate) fn finish(&mut self, app_status: u32) -> io::Result<()> {
        let mut tail = [0u8; 2 * HEADER_LEN + 8];
        tail[..HEADER_LEN].copy_from_slice(&Header::new(record_type::STDOUT, self.id, 0).encode());
        tail[HEADER_LEN..].copy_from_slice(
            &EndRequest::new(app_status, ProtocolStatus::RequestComplete).record(self.id),
        );
        self.send(&tail)
    }
}

/// Answers request `id` at once with an error response: `status` (e.g.
/// `"431 Request Header Fields Too Large"`), `msg` as its body and on its
/// error stream, and END_REQUEST.
pub(crate) fn error_reply(io: &dyn Transport, id: u16, status: &str, msg: &str) -> io::Result<()> {
    let head = format!("Status: {status}\r\nContent-Type: text/plain\r\n\r\n{msg}\n");
    reply_at_once(io, id, &head, msg, ProtocolStatus::RequestComplete)
}

/// Denies authorizer request `id`, which the application does not play:
/// a 403 response, the reason on the error stream (for the web server's
/// log), and END_REQUEST with `end`.
pub(crate) fn deny(io: &dyn Transport, id: u16, end: ProtocolStatus) -> io::Result<()> {
    const HEAD: &str = "Status: 403 Forbidden\r\nContent-Type: text/plain\r\n\r\nForbidden\n";
    let why = match end {
        ProtocolStatus::CantMpxConn => "the application serves one request at a time here",
        ProtocolStatus::Overloaded => "the connection carries as many requests as it may",
        _ => "the application does not play the FastCGI authorizer role",
    };
    let msg = format!("authorizer request refused ({why}): access denied");
    reply_at_once(io, id, HEAD, &msg, end)
}

/// Writes a whole answer to request `id`: `msg` on its error stream,
/// `stdout` (headers and body), and END_REQUEST with `end`.
fn reply_at_once(
    io: &dyn Transport,
    id: u16,
    stdout: &str,
    msg: &str,
    end: ProtocolStatus,
) -> io::Result<()> {
    let err = format!("fcgi-server: {msg}\n");
    let mut out = Vec::with_capacity(stdout.len() + err.len() + 64);
    protocol::push_record(&mut out, record_type::STDERR, id, err.as_bytes());
    protocol::push_record(&mut out, record_type::STDOUT, id, stdout.as_bytes());
    protocol::push_record(&mut out, record_type::STDOUT, id, b"");
    out.extend_from_slice(&EndRequest::new(0, end).record(id));
    io.write_all(&mut [IoSlice::new(&out)])
}
