//! Multiplexed connections (`Server::multiplex`): several requests at once
//! on one connection, each run by a worker of its own, their records
//! interleaved on the way in and out.
//!
//! - **In.** Whichever worker holds the connection's read side (the
//!   *pump*) reads records and hands each to its request ([`Demux`]): the
//!   params until they are complete, then the request is ready and a
//!   worker runs it (through the pool's queue of [`Job`]s); its body and
//!   data go into its [`Pipe`], from which its handler reads. A worker
//!   woken by the poller pumps what has arrived; a handler waiting for
//!   its body pumps itself, or waits while another worker does, so that
//!   no request waits for a free worker to read its input.
//! - **Out.** Each request writes whole records, one write at a time on
//!   the connection ([`Transport::write_all`] holds a lock), so records of
//!   different requests never interleave within a write.
//! - **Bounds.** At most `multiplex` requests at once (more are refused
//!   with `FCGI_OVERLOADED`), each within the limits of a request on any
//!   connection (params bytes and count, records, read timeout); a
//!   request still arriving holds memory, never a worker; a pipe holds at
//!   most 256 KiB: past that, the pump stops reading the connection until
//!   the handler reads, as a socket would.
//! - **The end.** A request ends with its END_REQUEST and leaves the
//!   table. The connection closes when the web server closes it, when it
//!   breaks the protocol or a limit, past the idle timeout, or once idle
//!   after a request without `FCGI_KEEP_CONN`.

pub(crate) mod demux;

use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

pub(crate) use demux::Demux;
use demux::{Fed, Ready};

use crate::connection::pipe::{Pipe, Pump};
use crate::connection::{Config, Fault, ReadBuf, Transport, Wait};
use crate::protocol;
use crate::sys::{self, Socket};

/// A request ready to run, and its connection.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) mux: Arc<Mux>,
    pub(crate) ready: Ready,
}

/// What a multiplexed connection asks of the pool around it.
pub(crate) trait Env: Send + Sync {
    /// Has a worker run `job`.
    fn run(&self, job: Job);
    /// The connection is done with: forget it (its socket closes once the
    /// last reference to it goes).
    fn closed(&self, mux: &Mux);
}

/// What a multiplexed connection runs over: a socket, or memory in the
/// tests and the fuzz target.
pub(crate) trait Link: Transport + Send + Sync {
    /// Waits until there is something to read, up to `limit` (`None`:
    /// for ever); returns whether there is.
    fn wait_readable(&self, limit: Option<Duration>) -> io::Result<bool>;
    /// Shuts the connection down both ways: reads and writes fail.
    fn shut_down(&self);
    /// Its file descriptor (for the figures; -1 in memory).
    fn fd(&self) -> std::os::fd::RawFd;
}

impl Link for Socket {
    fn wait_readable(&self, limit: Option<Duration>) -> io::Result<bool> {
        Socket::wait_readable(self, limit)
    }

    fn shut_down(&self) {
        let _ = sys::shutdown_both(self.as_raw_fd());
    }

    fn fd(&self) -> std::os::fd::RawFd {
        self.as_raw_fd()
    }
}

/// A multiplexed connection.
pub(crate) struct Mux {
    sock: Box<dyn Link>,
    cfg: Config,
    /// The read side: held by the pump.
    input: Mutex<ReadBuf>,
    /// An event came while the read side was held: the pump reads again.
    pending: AtomicBool,
    requests: Mutex<Demux>,
    /// Held for each whole write.
    writing: Mutex<()>,
    env: Weak<dyn Env>,
    /// Itself, for the jobs it starts.
    this: Weak<Mux>,
    /// Its slot in the poller (a token), once it has one.
    pub(crate) token: AtomicU64,
    /// When it last had a request, for the idle timeout (coarse ns).
    last_busy: AtomicU64,
    closed: AtomicBool,
}

impl std::fmt::Debug for Mux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mux")
            .field("fd", &self.sock.fd())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Mux {
    pub(crate) fn new(sock: Box<dyn Link>, cfg: &Config, env: Weak<dyn Env>) -> Arc<Mux> {
        Arc::new_cyclic(|this| Mux {
            this: this.clone(),
            sock,
            requests: Mutex::new(Demux::new(cfg.multiplex)),
            cfg: cfg.clone(),
            input: Mutex::new(ReadBuf::new()),
            pending: AtomicBool::new(false),
            writing: Mutex::new(()),
            env,
            token: AtomicU64::new(0),
            last_busy: AtomicU64::new(sys::coarse_nanos()),
            closed: AtomicBool::new(false),
        })
    }

    pub(crate) fn fd(&self) -> std::os::fd::RawFd {
        self.sock.fd()
    }

    /// Reads and hands over what has arrived, without waiting; called
    /// when the poller reports the connection readable.
    pub(crate) fn pump(&self) {
        loop {
            let Ok(mut input) = self.input.try_lock() else {
                // The worker that reads will read again.
                self.pending.store(true, Ordering::SeqCst);
                if self.input.try_lock().is_err() {
                    return;
                }
                continue;
            };
            let result = self.drain(&mut input, None);
            drop(input);
            self.released();
            if let Err(fault) = result {
                return self.fail(fault);
            }
            if !self.pending.swap(false, Ordering::SeqCst) {
                return;
            }
        }
    }

    /// The read side was let go: readers waiting for another worker's
    /// reads may read themselves.
    fn released(&self) {
        for pipe in lock(&self.requests).pipes() {
            pipe.nudge();
        }
    }

    /// Reads and hands over records until nothing more has come (or, with
    /// `wait`, until `wait`'s pipe has something, waiting for the
    /// connection up to its time). `Ok(false)`: a record waits for a full
    /// pipe.
    fn drain(
        &self,
        input: &mut ReadBuf,
        wait: Option<(&Pipe, Option<Instant>)>,
    ) -> Result<bool, Fault> {
        let start = wait.map(|(pipe, _)| pipe.epoch());
        loop {
            while let Some((rec, used)) = protocol::decode_record(input.data())? {
                let fed = lock(&self.requests).feed(self, &self.cfg, rec)?;
                match fed {
                    Fed::Full => return Ok(false),
                    Fed::Taken => input.consume(used),
                    Fed::Ready(ready) => {
                        input.consume(used);
                        self.start(ready);
                    }
                }
            }
            if let Some((pipe, _)) = wait {
                if Some(pipe.epoch()) != start {
                    return Ok(true);
                }
            }
            if !self.read_more(input, wait.and_then(|(_, until)| until), wait.is_some())? {
                return Ok(true);
            }
        }
    }

    /// Reads more; false when nothing came and the caller does not wait.
    fn read_more(
        &self,
        input: &mut ReadBuf,
        until: Option<Instant>,
        waits: bool,
    ) -> Result<bool, Fault> {
        match input.fill(&*self.sock, Wait::Never) {
            Ok(0) => Err(Fault::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the web server closed the multiplexed connection",
            ))),
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && !waits => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let left = until.map(|t| t.saturating_duration_since(Instant::now()));
                if left.is_some_and(|l| l.is_zero()) || !self.sock.wait_readable(left)? {
                    return Err(Fault::Io(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the request body did not come within the read timeout",
                    )));
                }
                Ok(true)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A request's params are complete: a worker runs it.
    fn start(&self, ready: Ready) {
        self.last_busy.store(sys::coarse_nanos(), Ordering::Relaxed);
        if let (Some(env), Some(me)) = (self.env.upgrade(), self.this.upgrade()) {
            env.run(Job { mux: me, ready });
        }
    }

    /// A request has ended (its END_REQUEST is written).
    pub(crate) fn finish(&self, id: u16) {
        let close = {
            let mut requests = lock(&self.requests);
            requests.finish(id);
            requests.is_idle()
                && (requests.closes_when_idle() || self.closed.load(Ordering::SeqCst))
        };
        self.last_busy.store(sys::coarse_nanos(), Ordering::Relaxed);
        if close {
            self.shut();
        } else {
            // Its input may have held up the connection's.
            self.pump();
        }
    }

    /// Closes after a fault: logged, and the requests still running see
    /// their reads and writes fail.
    pub(crate) fn fail(&self, fault: Fault) {
        if !self.closed.swap(true, Ordering::SeqCst) {
            crate::observe::events::connection_fault(&fault);
        }
        self.sock.shut_down();
        let err = fault.to_io_error();
        lock(&self.requests).close(err.kind(), &err.to_string());
        self.shut();
    }

    /// Forgets the connection in the poller, once.
    fn shut(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.sock.shut_down();
        if let Some(env) = self.env.upgrade() {
            env.closed(self);
        }
    }

    /// Whether the connection is past its timeouts: idle for `idle`, or a
    /// request still arriving for the read timeout.
    pub(crate) fn expired(&self, now: u64, idle: Duration) -> bool {
        let requests = lock(&self.requests);
        let idle_for = now.saturating_sub(self.last_busy.load(Ordering::Relaxed));
        (requests.is_idle() && idle_for >= idle.as_nanos() as u64)
            || requests.stalled(self.cfg.read_timeout)
    }

    /// Shuts the connection down (the server is stopping).
    pub(crate) fn shut_down(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.sock.shut_down();
        lock(&self.requests).close(io::ErrorKind::ConnectionAborted, "the server is stopping");
    }
}

impl Pump for Mux {
    fn pump_for(&self, pipe: &Pipe, until: Option<Instant>) -> io::Result<bool> {
        let Ok(mut input) = self.input.try_lock() else {
            return Ok(false);
        };
        let result = self.drain(&mut input, Some((pipe, until)));
        drop(input);
        self.released();
        if result.is_ok() && self.pending.swap(false, Ordering::SeqCst) {
            // An event came while this reader read: what it announced may
            // have come after the last read.
            self.pump();
        }
        match result {
            Ok(read) => Ok(read),
            Err(fault) => {
                let err = fault.to_io_error();
                self.fail(fault);
                Err(err)
            }
        }
    }
}

impl Transport for Mux {
    fn read(&self, buf: &mut [u8], wait: Wait) -> io::Result<usize> {
        self.sock.read(buf, wait)
    }

    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.sock.write_vectored(bufs)
    }

    /// One whole write at a time: records of different requests never
    /// interleave within one.
    fn write_all(&self, bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
        let _writing = lock(&self.writing);
        crate::connection::transport::write_all(&*self.sock, bufs)
    }
}
