//! Where the listening socket comes from: an address to bind, a socket
//! handed over by the caller, or the one inherited on file descriptor 0.

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::sys;

/// Connections the kernel queues while every worker is busy.
const BACKLOG: i32 = 1024;

/// A listening socket, and the unix socket path to remove when done.
#[derive(Debug)]
pub(crate) struct Listener {
    fd: OwnedFd,
    unlink: Option<PathBuf>,
}

impl Listener {
    pub(crate) fn from_fd(fd: OwnedFd) -> Listener {
        Listener { fd, unlink: None }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(path) = &self.unlink {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// What a bind address names.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Address {
    /// A unix socket path (`/run/app.sock`, `app.sock`, `unix:/run/app.sock`).
    Unix(PathBuf),
    /// A TCP `HOST:PORT` (`127.0.0.1:9000`, `[::1]:9000`, `localhost:9000`).
    Tcp(String),
}

impl Address {
    /// A path (anything with a `/`, or without a `:PORT` suffix) is a unix
    /// socket; `HOST:PORT` is TCP.
    pub(crate) fn parse(s: &str) -> Address {
        if let Some(path) = s.strip_prefix("unix:") {
            return Address::Unix(path.into());
        }
        let is_tcp = !s.contains('/')
            && s.rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if is_tcp {
            Address::Tcp(s.to_owned())
        } else {
            Address::Unix(s.into())
        }
    }
}

fn named(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Binds `addr`; a unix socket gets file mode `mode`.
pub(crate) fn bind(addr: &str, mode: u32) -> io::Result<Listener> {
    match Address::parse(addr) {
        Address::Unix(path) => bind_unix(&path, mode),
        Address::Tcp(spec) => bind_tcp(&spec),
    }
}

fn bind_tcp(spec: &str) -> io::Result<Listener> {
    let what = || format!("cannot listen on TCP address {spec}");
    let addrs: Vec<SocketAddr> = spec
        .to_socket_addrs()
        .map_err(|e| named(e, &what()))?
        .collect();
    let listener = TcpListener::bind(&addrs[..]).map_err(|e| named(e, &what()))?;
    let fd = OwnedFd::from(listener);
    sys::listen(fd.as_fd(), BACKLOG).map_err(|e| named(e, &what()))?;
    Ok(Listener::from_fd(fd))
}

fn bind_unix(path: &Path, mode: u32) -> io::Result<Listener> {
    let what = || format!("cannot listen on unix socket {}", path.display());
    remove_stale(path).map_err(|e| named(e, &what()))?;
    let fd = sys::bind_unix(path, mode, BACKLOG).map_err(|e| named(e, &what()))?;
    Ok(Listener {
        fd,
        unlink: Some(path.to_owned()),
    })
}

/// Removes a socket file that nobody listens on any more. Refuses to touch
/// a live socket (another instance is running) or a file that is not a
/// socket at all.
fn remove_stale(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the path exists and is not a socket; refusing to replace it",
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "another process is listening on it",
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path),
        Err(e) => Err(e),
    }
}

/// The listening socket on file descriptor 0, as lighttpd's `bin-path`,
/// Apache mod_fcgid and spawn-fcgi pass it, if fd 0 is one.
pub(crate) fn inherited() -> io::Result<Option<Listener>> {
    let Some(fd) = sys::inherited_fd(0) else {
        return Ok(None);
    };
    if !sys::is_listening_socket(fd) {
        return Ok(None);
    }
    let what = "cannot use the listening socket on file descriptor 0";
    sys::socket_family(fd).map_err(|e| named(e, what))?;
    let owned = sys::dup(fd).map_err(|e| named(e, what))?;
    Ok(Some(Listener::from_fd(owned)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_cases() {
        let cases = [
            ("/run/app.sock", Address::Unix("/run/app.sock".into())),
            ("app.sock", Address::Unix("app.sock".into())),
            ("./a:1", Address::Unix("./a:1".into())),
            ("unix:/tmp/x", Address::Unix("/tmp/x".into())),
            ("127.0.0.1:9000", Address::Tcp("127.0.0.1:9000".into())),
            ("[::1]:9000", Address::Tcp("[::1]:9000".into())),
            ("localhost:0", Address::Tcp("localhost:0".into())),
            (":9000", Address::Unix(":9000".into())),
            ("host:notaport", Address::Unix("host:notaport".into())),
        ];
        for (input, want) in cases {
            assert_eq!(Address::parse(input), want, "input {input}");
        }
    }
}
