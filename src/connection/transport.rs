//! Where a connection's bytes come from and go to, and the buffer they
//! are read into.

use std::io::{self, IoSlice};

use crate::protocol::{HEADER_LEN, Header, MAX_RECORD_LEN};
use crate::sys::Socket;

/// How long a read may wait for bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// In the middle of a request the handler is reading: up to the read
    /// timeout (a timeout is an error).
    Request,
    /// Not at all: what is there, or `WouldBlock`. The connection then
    /// waits in epoll, not on a worker.
    Never,
}

/// Where a connection's bytes come from and go to: a socket, the
/// environment and stdio in CGI mode, or memory in tests and fuzzing.
pub(crate) trait Transport {
    /// Reads into `buf`, waiting as `wait` says; `Ok(0)` at end of stream.
    fn read(&self, buf: &mut [u8], wait: Wait) -> io::Result<usize>;
    /// Writes from several buffers, possibly partially.
    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;

    /// Writes every byte of every buffer, as one unit: a transport that
    /// several requests write to at once (a multiplexed connection) lets
    /// no other write in between.
    fn write_all(&self, bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
        write_all(self, bufs)
    }
}

impl Transport for Socket {
    fn read(&self, buf: &mut [u8], wait: Wait) -> io::Result<usize> {
        match wait {
            Wait::Request => Socket::read(self, buf),
            Wait::Never => self.read_nonblocking(buf),
        }
    }

    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Socket::write_vectored(self, bufs)
    }
}

/// Writes every byte of every buffer, `write_vectored` after
/// `write_vectored`.
pub(crate) fn write_all<T: Transport + ?Sized>(io: &T, bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
    let mut bufs = &mut bufs[..];
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match io.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A read buffer that holds at least one whole record.
///
/// It starts small, enough for the params and bodies of most requests,
/// and grows once, to two records of the largest size, when a record does
/// not fit: an idle worker holds 16 KiB, not 128.
#[derive(Debug)]
pub(crate) struct ReadBuf {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    const SMALL: usize = 16 * 1024;
    const LARGE: usize = 2 * MAX_RECORD_LEN;

    pub(crate) fn new() -> ReadBuf {
        ReadBuf {
            buf: vec![0; ReadBuf::SMALL].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// The bytes held, not yet consumed.
    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Puts back bytes set aside earlier (less than one record).
    pub(crate) fn restore(&mut self, bytes: &[u8]) {
        if bytes.len() > self.buf.len() {
            self.grow();
        }
        self.buf[..bytes.len()].copy_from_slice(bytes);
        self.start = 0;
        self.end = bytes.len();
    }

    /// Grows to the largest size, keeping what is held in place.
    fn grow(&mut self) {
        if self.buf.len() < ReadBuf::LARGE {
            let mut large = vec![0; ReadBuf::LARGE].into_boxed_slice();
            large[..self.end].copy_from_slice(&self.buf[..self.end]);
            self.buf = large;
        }
    }

    /// Forgets everything held: the next connection starts clean.
    pub(crate) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Drops the first `n` bytes held.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads more bytes after what is held, waiting as `wait` says;
    /// `Ok(0)` at end of stream.
    pub(crate) fn fill(&mut self, io: &dyn Transport, wait: Wait) -> io::Result<usize> {
        // The record at the front, whole: its length once its header is in.
        let want = match Header::decode(self.data()) {
            Ok(Some(h)) => h.record_len(),
            _ => HEADER_LEN,
        };
        if want > self.buf.len() {
            self.grow();
        }
        // Move what is held to the front when little room is left behind
        // it (the record cannot be whole before that; once it is, the
        // buffer holds it: `want` fits).
        if self.start > 0 && self.buf.len() - self.end < self.buf.len() / 2 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = io.read(&mut self.buf[self.end..], wait)?;
        self.end += n;
        Ok(n)
    }
}
