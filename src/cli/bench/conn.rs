//! One connection of `fcgi bench`: a non-blocking socket, the request
//! written as the socket takes it, the answer read as it comes.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Instant;

use super::answer::{Answer, Bad, Done};
use crate::client::Address;

/// Where the connections go, resolved once.
pub(super) enum Target {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl Target {
    pub(super) fn resolve(addr: &str) -> io::Result<Target> {
        match Address::parse(addr) {
            Address::Unix(path) => Ok(Target::Unix(path)),
            Address::Tcp(spec) => spec
                .to_socket_addrs()?
                .next()
                .map(Target::Tcp)
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address")),
        }
    }

    /// A connection, non-blocking once made.
    pub(super) fn connect(&self) -> io::Result<Stream> {
        match self {
            Target::Unix(path) => {
                let s = UnixStream::connect(path)?;
                s.set_nonblocking(true)?;
                Ok(Stream::Unix(s))
            }
            Target::Tcp(addr) => {
                let s = TcpStream::connect(addr)?;
                s.set_nodelay(true)?;
                s.set_nonblocking(true)?;
                Ok(Stream::Tcp(s))
            }
        }
    }
}

pub(super) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    pub(super) fn fd(&self) -> RawFd {
        match self {
            Stream::Unix(s) => s.as_raw_fd(),
            Stream::Tcp(s) => s.as_raw_fd(),
        }
    }
}

/// How a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Failed {
    /// The connection was closed or reset before END_REQUEST.
    Closed,
    /// The answer broke the protocol (see [`Bad`]).
    Protocol,
}

/// A connection and the request on it.
pub(super) struct Conn {
    pub(super) stream: Option<Stream>,
    /// Bytes of the request written.
    sent: usize,
    /// When the request in flight was begun; `None` between requests.
    pub(super) since: Option<Instant>,
    answer: Answer,
}

impl Conn {
    pub(super) fn new() -> Conn {
        Conn {
            stream: None,
            sent: 0,
            since: None,
            answer: Answer::new(),
        }
    }

    /// Begins a request (written by the next [`Conn::flush`]).
    pub(super) fn begin(&mut self, now: Instant) {
        self.sent = 0;
        self.since = Some(now);
        self.answer.reset();
    }

    /// Writes what the socket takes of `request`.
    pub(super) fn flush(&mut self, request: &[u8]) -> Result<(), Failed> {
        let Some(stream) = &mut self.stream else {
            return Ok(());
        };
        while self.since.is_some() && self.sent < request.len() {
            match stream.write(&request[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Failed::Closed),
            }
        }
        Ok(())
    }

    /// Reads what came, through `buf`; the answer once it is complete.
    pub(super) fn read(&mut self, buf: &mut [u8]) -> Result<Option<Done>, Failed> {
        let Some(stream) = &mut self.stream else {
            return Ok(None);
        };
        loop {
            let n = match stream.read(buf) {
                Ok(0) => return Err(Failed::Closed),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(Failed::Closed),
            };
            if self.since.is_none() {
                // Bytes when no request is in flight.
                return Err(Failed::Protocol);
            }
            match self.answer.feed(&buf[..n]) {
                Ok(Some(done)) => return Ok(Some(done)),
                Ok(None) => {}
                Err(Bad::Protocol) => return Err(Failed::Protocol),
            }
        }
    }
}
