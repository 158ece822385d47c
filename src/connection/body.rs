//! The request's input streams, pulled from the connection as the handler
//! reads: the body (`FCGI_STDIN`), and for a filter the data stream
//! (`FCGI_DATA`) after it. Records go through the connection's one record
//! dispatch, so that management records and stray requests arriving
//! meanwhile are answered as they are between requests.

use std::cell::Cell;
use std::io;

use super::dispatch::{Event, Stream, dispatch};
use super::early::EarlyData;
use super::pipe::PipeReader;
use super::{Active, Config, Fault, ReadBuf, Transport, Wait, aborted_error};
use crate::protocol::{self, HEADER_LEN, Role};

/// Whether [`BodyReader::advance`] may read the socket for more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum More {
    Read,
    Stop,
}

/// The input of the request in progress, read on demand.
pub(crate) struct BodyReader<'a> {
    io: &'a dyn Transport,
    rbuf: &'a mut ReadBuf,
    /// Data records that came before the body ended.
    early: &'a mut EarlyData,
    cfg: &'a Config,
    active: Active,
    /// Set when the web server aborts the request; the response sees it too.
    aborted: &'a Cell<bool>,
    /// The stream being read: STDIN, then DATA once the handler asks for
    /// it (and the body has been read to its end).
    stream: Stream,
    /// Content bytes of the current record still in `rbuf`.
    left: usize,
    /// Padding bytes after them.
    pad: usize,
    /// The current stream has ended: its empty record has been read (a
    /// role without a data stream has an empty one).
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
        early: &'a mut EarlyData,
        cfg: &'a Config,
        active: Active,
        aborted: &'a Cell<bool>,
    ) -> BodyReader<'a> {
        BodyReader {
            io,
            rbuf,
            early,
            cfg,
            active,
            aborted,
            stream: Stream::Stdin,
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

    /// Whether the request's input was read to its end: the body, and
    /// the data stream of a filter.
    pub(crate) fn is_done(&self) -> bool {
        self.done && (self.active.role != Role::Filter || self.stream == Stream::Data)
    }

    /// Whether the web server aborted the request.
    pub(crate) fn is_aborted(&self) -> bool {
        self.aborted.get()
    }

    /// The connection-level failure met while reading, if any.
    pub(crate) fn take_fault(&mut self) -> Option<Fault> {
        self.fault.take()
    }

    /// Drops what remains of a partly read record, so that the buffer
    /// starts at a record boundary again.
    pub(crate) fn skip_rest_of_record(&mut self) {
        self.rbuf.consume(self.left + self.pad);
        self.left = 0;
        self.pad = 0;
    }

    /// Passes over the rest of the current stream that has already
    /// arrived, without waiting for more: a connection closed after a
    /// request whose handler did not read its input need then wait for
    /// the peer only when part of it is still on the way.
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

    /// Handles records until content of the current stream is at the
    /// front of the buffer, the stream has ended, or the request was
    /// aborted; with `More::Stop`, also when no whole record is left in
    /// the buffer.
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
                Event::Stream(s, []) if s == self.stream => self.done = true,
                Event::Stream(s, _) if s == self.stream => {
                    // The content stays in the buffer; a read takes it.
                    self.rbuf.consume(HEADER_LEN);
                    self.left = header.content_len as usize;
                    self.pad = header.padding_len as usize;
                    return Ok(());
                }
                // Data sent before the body ended (only a filter gets
                // data records): kept until the handler reads it.
                Event::Stream(Stream::Data, content) => {
                    self.early.keep(content).map_err(Fault::Limit)?;
                }
                Event::Abort => self.aborted.set(true),
                // A begin-request cannot start a request here (one is in
                // progress); late params, and body records once the data
                // stream is being read, concern nothing here.
                Event::Begin(_) | Event::Refused { .. } | Event::Stream(_, _) | Event::Nothing => {}
            }
            self.rbuf.consume(used);
        }
        Ok(())
    }

    /// The error a read gives after a failure or an abort.
    fn check(&self) -> io::Result<()> {
        if let Some(f) = &self.fault {
            return Err(f.to_io_error());
        }
        if self.aborted.get() {
            return Err(aborted_error());
        }
        Ok(())
    }

    /// Brings content of the current stream to the front of the buffer,
    /// or reaches its end.
    fn next_content(&mut self) -> io::Result<()> {
        self.check()?;
        if let Err(f) = self.advance(More::Read) {
            let err = f.to_io_error();
            self.fault = Some(f);
            return Err(err);
        }
        self.check()
    }

    /// Reads bytes of the current stream into `buf`; `Ok(0)` at its end.
    fn read_stream(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.next_content()?;
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

    /// Reads and drops the rest of the current stream.
    fn skip_stream(&mut self) -> io::Result<()> {
        while !self.done {
            self.next_content()?;
            self.skip_rest_of_record();
        }
        Ok(())
    }

    /// Reads body bytes into `buf`; `Ok(0)` at the end of the body, and
    /// once the data stream is being read.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stream == Stream::Data {
            return Ok(0);
        }
        self.read_stream(buf)
    }

    /// Moves on to the data stream, dropping what is left of the body.
    fn start_data(&mut self) -> io::Result<()> {
        if self.stream != Stream::Data {
            self.skip_stream()?;
            self.stream = Stream::Data;
            // Only a filter has a data stream; for the others it is empty.
            self.done = self.active.role != Role::Filter;
        }
        Ok(())
    }

    /// Reads data stream bytes into `buf` (the bytes that came early
    /// first); `Ok(0)` at its end. The rest of the body is dropped first.
    pub(crate) fn read_data(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.start_data()?;
        self.check()?;
        if let Some(n) = self.early.take(buf) {
            return Ok(n);
        }
        self.done |= self.early.is_exhausted_end();
        self.read_stream(buf)
    }

    /// Once the handler has returned, before END_REQUEST: reads and drops
    /// what a kept-open filter left of its input (the rest of the body,
    /// then of the data stream). The spec lets a filter answer without
    /// reading its data, but the web server sends it all the same; read
    /// here, it leaves the connection in step for the next request and
    /// counts towards no limit. A failure is the fault taken next.
    #[inline]
    pub(crate) fn drop_unread_filter_input(&mut self) {
        if self.active.role == Role::Filter && self.active.keep_conn {
            let _ = self.skip_input();
        }
    }

    /// Reads and drops what the handler left of the request's input: the
    /// rest of the body, then of the data stream.
    fn skip_input(&mut self) -> io::Result<()> {
        self.start_data()?;
        self.early.discard();
        self.done |= self.early.is_exhausted_end();
        self.skip_stream()
    }
}

/// A request's input as the handler reads it: from the connection itself,
/// or, on a multiplexed connection, from the request's pipe.
pub(crate) enum Input<'a> {
    Socket(BodyReader<'a>),
    Pipe(PipeReader<'a>),
}

impl Input<'_> {
    /// Reads the body.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::Socket(b) => b.read(buf),
            Input::Pipe(p) => p.read(buf),
        }
    }

    /// Reads a filter's data stream.
    pub(crate) fn read_data(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::Socket(b) => b.read_data(buf),
            Input::Pipe(p) => p.read_data(buf),
        }
    }

    pub(crate) fn is_aborted(&self) -> bool {
        match self {
            Input::Socket(b) => b.is_aborted(),
            Input::Pipe(p) => p.is_aborted(),
        }
    }

    pub(crate) fn bytes_read(&self) -> u64 {
        match self {
            Input::Socket(b) => b.bytes_read(),
            Input::Pipe(p) => p.bytes_read(),
        }
    }
}
