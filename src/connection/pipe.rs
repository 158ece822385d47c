//! The input of a request on a multiplexed connection: its body and data
//! streams, handed over by whichever worker reads the connection (the
//! "pump"), and read by the worker that runs the request's handler.
//!
//! A pipe holds a bounded number of bytes: when a handler does not read
//! its body, the pump stops taking that request's records off the
//! connection, as a socket would stop taking them (see the `mux` module).

use std::collections::VecDeque;
use std::io;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::aborted_error;
use super::dispatch::Stream;

/// The most bytes a pipe holds before the pump waits for its reader.
pub(crate) const PIPE_BOUND: usize = 256 * 1024;

/// One request's input, between the pump and the handler.
#[derive(Debug, Default)]
pub(crate) struct Pipe {
    state: Mutex<PipeState>,
    /// Signalled when something changes that a reader may wait for.
    changed: Condvar,
}

#[derive(Debug, Default)]
struct PipeState {
    stdin: VecDeque<Vec<u8>>,
    data: VecDeque<Vec<u8>>,
    /// Bytes held in both queues.
    held: usize,
    stdin_done: bool,
    data_done: bool,
    aborted: bool,
    /// The connection failed or closed: what has not come will not.
    gone: Option<(io::ErrorKind, String)>,
    /// Counts changes a waiting reader must look at (see [`Pipe::wait`]).
    epoch: u64,
}

impl PipeState {
    /// Whether a reader of `stream` has something to look at.
    fn ready(&self, stream: Stream) -> bool {
        let (queue, done) = match stream {
            Stream::Data => (&self.data, self.data_done),
            _ => (&self.stdin, self.stdin_done),
        };
        !queue.is_empty() || done || self.aborted || self.gone.is_some()
    }
}

/// What [`Pipe::push`] did with a piece of input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    Taken,
    /// The pipe is full: the record must wait.
    Full,
}

impl Pipe {
    /// A pipe for a request that has (`data`) or has not a data stream.
    pub(crate) fn new(data: bool) -> Pipe {
        let pipe = Pipe::default();
        pipe.lock().data_done = !data;
        pipe
    }

    fn lock(&self) -> MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a change and wakes the reader.
    fn changed(&self, mut s: MutexGuard<'_, PipeState>) {
        s.epoch += 1;
        drop(s);
        self.changed.notify_all();
    }

    /// Hands over content of `stream`; empty content ends the stream.
    /// What comes after the end concerns nothing (as on a connection of
    /// its own): whether the handler saw it would depend on when it read.
    pub(crate) fn push(&self, stream: Stream, content: &[u8]) -> Pushed {
        let mut guard = self.lock();
        let s = &mut *guard;
        let (queue, done) = match stream {
            Stream::Stdin => (&mut s.stdin, &mut s.stdin_done),
            Stream::Data => (&mut s.data, &mut s.data_done),
            Stream::Params => return Pushed::Taken,
        };
        if *done {
            return Pushed::Taken;
        }
        if !content.is_empty() && s.held > 0 && s.held + content.len() > PIPE_BOUND {
            return Pushed::Full;
        }
        if content.is_empty() {
            *done = true;
        } else {
            queue.push_back(content.to_vec());
        }
        s.held += content.len();
        self.changed(guard);
        Pushed::Taken
    }

    /// The web server aborted the request.
    pub(crate) fn abort(&self) {
        let mut s = self.lock();
        s.aborted = true;
        self.changed(s);
    }

    /// The connection is gone: reads of what has not come fail so.
    pub(crate) fn close(&self, kind: io::ErrorKind, why: &str) {
        let mut s = self.lock();
        if s.gone.is_none() {
            s.gone = Some((kind, why.to_owned()));
        }
        self.changed(s);
    }

    /// Wakes the reader, to look again (the connection's reader changed).
    pub(crate) fn nudge(&self) {
        self.changed(self.lock());
    }

    /// The count of changes so far (see [`Pipe::wait`]).
    pub(crate) fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    pub(crate) fn is_aborted(&self) -> bool {
        self.lock().aborted
    }

    /// Takes bytes of `stream` into `buf`: `Some(n)` (0 at its end), or
    /// `None` when nothing is there yet.
    fn take(&self, stream: Stream, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let mut s = self.lock();
        if s.aborted {
            return Err(aborted_error());
        }
        let s = &mut *s;
        let (queue, done) = match stream {
            Stream::Data => (&mut s.data, s.data_done),
            _ => (&mut s.stdin, s.stdin_done),
        };
        let Some(front) = queue.front_mut() else {
            return match (&s.gone, done) {
                (_, true) => Ok(Some(0)),
                (Some((kind, why)), false) => Err(io::Error::new(*kind, why.clone())),
                (None, false) => Ok(None),
            };
        };
        let n = front.len().min(buf.len());
        buf[..n].copy_from_slice(&front[..n]);
        front.drain(..n);
        if front.is_empty() {
            queue.pop_front();
        }
        s.held -= n;
        Ok(Some(n))
    }

    /// Waits until there is something for a reader of `stream`, or a
    /// change since `seen` (the epoch read before the caller last looked),
    /// or `until` passes; false then.
    fn wait(&self, stream: Stream, seen: u64, until: Option<Instant>) -> bool {
        let s = self.lock();
        if s.ready(stream) || s.epoch != seen {
            return true;
        }
        match until {
            None => drop(self.changed.wait(s)),
            Some(t) => {
                let left = t.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return false;
                }
                drop(self.changed.wait_timeout(s, left));
            }
        }
        true
    }
}

/// The reading side of a multiplexed connection, as a request's reader
/// sees it: makes progress on the connection's input for `pipe`.
pub(crate) trait Pump: Sync {
    /// Reads and hands over records until `pipe` has something for its
    /// reader, another worker reads the connection, or `until` passes.
    /// Returns whether it did read (false: another worker does).
    fn pump_for(&self, pipe: &Pipe, until: Option<Instant>) -> io::Result<bool>;
}

/// A handler's reads of its request's input, from its pipe.
pub(crate) struct PipeReader<'a> {
    pipe: &'a Pipe,
    pump: &'a dyn Pump,
    read_timeout: Option<Duration>,
    /// Body bytes read so far.
    total: u64,
    /// The handler has moved on to the data stream.
    data: bool,
}

impl<'a> PipeReader<'a> {
    pub(crate) fn new(
        pipe: &'a Pipe,
        pump: &'a dyn Pump,
        read_timeout: Option<Duration>,
    ) -> PipeReader<'a> {
        PipeReader {
            pipe,
            pump,
            read_timeout,
            total: 0,
            data: false,
        }
    }

    pub(crate) fn bytes_read(&self) -> u64 {
        self.total
    }

    pub(crate) fn is_aborted(&self) -> bool {
        self.pipe.is_aborted()
    }

    /// Reads the body.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.data {
            return Ok(0);
        }
        let n = self.read_stream(Stream::Stdin, buf)?;
        self.total += n as u64;
        Ok(n)
    }

    /// Reads the data stream, once the rest of the body is dropped.
    pub(crate) fn read_data(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.data {
            let mut scratch = [0u8; 4096];
            while self.read_stream(Stream::Stdin, &mut scratch)? > 0 {}
            self.data = true;
        }
        self.read_stream(Stream::Data, buf)
    }

    fn read_stream(&mut self, stream: Stream, buf: &mut [u8]) -> io::Result<usize> {
        let until = self.read_timeout.map(|t| Instant::now() + t);
        loop {
            let seen = self.pipe.epoch();
            if let Some(n) = self.pipe.take(stream, buf)? {
                return Ok(n);
            }
            // Read the connection, or wait while another worker does.
            if !self.pump.pump_for(self.pipe, until)? && !self.pipe.wait(stream, seen, until) {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the request body did not come within the read timeout",
                ));
            }
        }
    }
}
