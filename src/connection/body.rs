//! The request body: `FCGI_STDIN` records pulled from the connection as
//! the handler reads, through the connection's one record dispatch, so
//! that management records and stray requests arriving meanwhile are
//! answered as they are between requests.

use std::cell::Cell;
use std::io;

use super::dispatch::{Event, Stream, dispatch};
use super::{Active, Config, Fault, ReadBuf, Transport, Wait, aborted_error};
use crate::protocol::{self, HEADER_LEN};

/// Whether [`BodyReader::advance`] may read the socket for more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum More {
    Read,
    Stop,
}

/// The body of the request in progress, read on demand.
pub(crate) struct BodyReader<'a> {
    io: &'a dyn Transport,
    rbuf: &'a mut ReadBuf,
    cfg: &'a Config,
    active: Active,
    /// Set when the web server aborts the request; the response sees it too.
    aborted: &'a Cell<bool>,
    /// Content bytes of the current STDIN record still in `rbuf`.
    left: usize,
    /// Padding bytes after them.
    pad: usize,
    /// The empty STDIN record that ends the body has been read.
    done: bool,
    /// A connection-level failure met while reading; the worker closes
    /// the connection once the handler returns.
    fault: Option<Fault>,
    /// Body bytes read so far.
    total: u64,
}

impl<'a> BodyReader<'a> {
    pub(crate) fn new(
        io: &'a dyn Transport,
        rbuf: &'a mut ReadBuf,
        cfg: &'a Config,
        active: Active,
        aborted: &'a Cell<bool>,
    ) -> BodyReader<'a> {
        BodyReader {
            io,
            rbuf,
            cfg,
            active,
            aborted,
            left: 0,
            pad: 0,
            done: false,
            fault: None,
            total: 0,
        }
    }

    /// Body bytes read so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.total
    }

    /// Whether the body was read to its end.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Whether the web server aborted the request.
    pub(crate) fn is_aborted(&self) -> bool {
        self.aborted.get()
    }

    /// The connection-level failure met while reading, if any.
    pub(crate) fn take_fault(&mut self) -> Option<Fault> {
        self.fault.take()
    }

    /// Drops what remains of a partly read STDIN record, so that the
    /// buffer starts at a record boundary again.
    pub(crate) fn skip_rest_of_record(&mut self) {
        self.rbuf.consume(self.left + self.pad);
        self.left = 0;
        self.pad = 0;
    }

    /// Passes over the rest of the body that has already arrived, without
    /// waiting for more: a connection closed after a request whose
    /// handler did not read its body need then wait for the peer only
    /// when part of the body is still on the way.
    pub(crate) fn skip_arrived(&mut self) {
        self.skip_rest_of_record();
        while self.fault.is_none() {
            match self.advance(More::Stop) {
                Ok(()) if self.left > 0 => self.skip_rest_of_record(),
                Ok(()) => return,
                Err(f) => self.fault = Some(f),
            }
        }
    }

    /// Handles records until STDIN content is at the front of the buffer,
    /// the body has ended, or the request was aborted; with `More::Stop`,
    /// also when no whole record is left in the buffer.
    fn advance(&mut self, more: More) -> Result<(), Fault> {
        while self.left == 0 && !self.done && !self.aborted.get() {
            let Some((rec, used)) = protocol::decode_record(self.rbuf.data())? else {
                if more == More::Stop {
                    return Ok(());
                }
                if self.rbuf.fill(self.io, Wait::Request)? == 0 {
                    return Err(Fault::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the web server closed the connection before the end of the request",
                    )));
                }
                continue;
            };
            let header = rec.header;
            match dispatch(self.io, self.cfg, rec, Some(&self.active))? {
                Event::Stream(Stream::Stdin, []) => self.done = true,
                Event::Stream(Stream::Stdin, _) => {
                    // The content stays in the buffer; `read` takes it.
                    self.rbuf.consume(HEADER_LEN);
                    self.left = header.content_len as usize;
                    self.pad = header.padding_len as usize;
                    return Ok(());
                }
                Event::Abort => self.aborted.set(true),
                // A begin-request cannot start a request here (one is in
                // progress); late params and data concern nothing here.
                Event::Begin(_) | Event::Refused { .. } | Event::Stream(_, _) | Event::Nothing => {}
            }
            self.rbuf.consume(used);
        }
        Ok(())
    }

    /// Reads body bytes into `buf`; `Ok(0)` at the end of the body.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(f) = &self.fault {
            return Err(f.to_io_error());
        }
        if let Err(f) = self.advance(More::Read) {
            let err = f.to_io_error();
            self.fault = Some(f);
            return Err(err);
        }
        if self.aborted.get() {
            return Err(aborted_error());
        }
        let n = self.left.min(buf.len());
        buf[..n].copy_from_slice(&self.rbuf.data()[..n]);
        self.rbuf.consume(n);
        self.left -= n;
        self.total += n as u64;
        if self.left == 0 {
            self.rbuf.consume(self.pad);
            self.pad = 0;
        }
        Ok(n)
    }
}
