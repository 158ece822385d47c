//! Where the listening socket comes from: an address to bind, a socket
//! handed over by the caller, or the one inherited on file descriptor 0.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use crate::client::Address;
use crate::sys;

/// Connections the kernel queues while every worker is busy.
const BACKLOG: i32 = 1024;

/// A listening socket, and the unix socket path to remove when done.
#[derive(Debug)]
pub(crate) struct Listener {
    fd: OwnedFd,
    unlink: Option<PathBuf>,
    /// Set once the socket was handed to a new process: its path is the
    /// new process's then, and stays.
    handed_over: Arc<AtomicBool>,
}

impl Listener {
    pub(crate) fn from_fd(fd: OwnedFd) -> Listener {
        Listener {
            fd,
            unlink: None,
            handed_over: Arc::default(),
        }
    }

    /// The socket passed by a hand-over, for a server configured to bind
    /// `bind`: when that is the socket's own path, the path is removed
    /// when done, as if this process had bound it.
    pub(crate) fn taken_over(fd: OwnedFd, bind: Option<&str>) -> Listener {
        let mut listener = Listener::from_fd(fd);
        if let Some(Address::Unix(path)) = bind.map(Address::parse) {
            let own = sys::local_addr(listener.fd.as_fd());
            if own.is_ok_and(|a| a == sys::LocalAddr::Unix(path.as_os_str().as_bytes().to_vec())) {
                listener.unlink = Some(path);
            }
        }
        listener
    }

    /// A flag that keeps the socket's path when set: for the hand-over.
    pub(crate) fn handed_over_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.handed_over)
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(path) = self
            .unlink
            .as_ref()
            .filter(|_| !self.handed_over.load(SeqCst))
        {
            let _ = std::fs::remove_file(path);
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
        handed_over: Arc::default(),
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

/// A listening socket's address as the start-up event gives it:
/// `unix:PATH` (`unix:@NAME` for an abstract one), or `HOST:PORT`.
pub(crate) fn describe(fd: BorrowedFd<'_>) -> String {
    match sys::local_addr(fd) {
        Ok(sys::LocalAddr::Unix(path)) if path.first() == Some(&0) => {
            format!("unix:@{}", String::from_utf8_lossy(&path[1..]))
        }
        Ok(sys::LocalAddr::Unix(path)) if path.is_empty() => "unix:(unnamed)".to_owned(),
        Ok(sys::LocalAddr::Unix(path)) => format!("unix:{}", String::from_utf8_lossy(&path)),
        Ok(sys::LocalAddr::Inet(addr)) => addr.to_string(),
        Err(e) => format!("(unknown: {e})"),
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

/// The first socket passed by systemd socket activation (`LISTEN_PID` is
/// this process, `LISTEN_FDS` at least 1), if any. The variables are
/// removed, so that child processes do not take the sockets for theirs.
///
/// Must be called before the crate starts threads (see
/// [`sys::clear_socket_activation_env`]).
///
/// `bind` is the address the server was told to bind, for a socket passed
/// by a hand-over: when it is the socket's own path, the path is removed
/// when done (see [`Listener::taken_over`]).
pub(crate) fn systemd(bind: Option<&str>) -> io::Result<Option<Listener>> {
    let pid = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|v| v.parse::<u32>().ok());
    let fds = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok());
    if pid != Some(std::process::id()) || fds.unwrap_or(0) == 0 {
        return Ok(None);
    }
    sys::clear_socket_activation_env();
    const FIRST: i32 = 3;
    let what = "cannot use the socket passed by systemd on file descriptor 3";
    let fd = sys::adopt_inherited_fd(FIRST).map_err(|e| named(e, what))?;
    if !sys::is_listening_socket(fd.as_fd()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what}: it is not a listening socket (use ListenStream= in the .socket unit)"),
        ));
    }
    if fds > Some(1) {
        crate::observe::log::warn(
            "systemd_sockets",
            "systemd passed more than one socket; serving the first only",
        );
    }
    Ok(Some(Listener::taken_over(fd, bind)))
}

/// The peers allowed to connect over TCP, from `FCGI_WEB_SERVER_ADDRS`
/// (comma-separated IPv4/IPv6 addresses), as the FastCGI spec defines it.
/// Unix-socket peers have no address and are not checked: file permissions
/// on the socket decide who may connect.
#[derive(Clone, Debug, Default)]
pub(crate) struct AllowList {
    addrs: Vec<IpAddr>,
}

impl AllowList {
    /// Reads `FCGI_WEB_SERVER_ADDRS`; `None` when unset or empty (everyone may connect).
    pub(crate) fn from_env() -> io::Result<Option<AllowList>> {
        match std::env::var("FCGI_WEB_SERVER_ADDRS") {
            Ok(v) if !v.trim().is_empty() => AllowList::parse(&v).map(Some),
            _ => Ok(None),
        }
    }

    pub(crate) fn parse(list: &str) -> io::Result<AllowList> {
        let addrs = list
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| {
                a.parse::<IpAddr>().map(canonical).map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("FCGI_WEB_SERVER_ADDRS: {a:?} is not an IP address"),
                    )
                })
            })
            .collect::<io::Result<_>>()?;
        Ok(AllowList { addrs })
    }

    /// Whether a peer at `ip` (`None`: a unix socket) may connect.
    pub(crate) fn allows(&self, ip: Option<IpAddr>) -> bool {
        ip.is_none_or(|ip| self.addrs.contains(&canonical(ip)))
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`, what a dual-stack
/// socket reports) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_cases() {
        let list = AllowList::parse("127.0.0.1, ::1,10.1.2.3").unwrap();
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert!(list.allows(ip("127.0.0.1")));
        assert!(list.allows(ip("::ffff:127.0.0.1")));
        assert!(list.allows(ip("::1")));
        assert!(list.allows(None));
        assert!(!list.allows(ip("127.0.0.2")));
        assert!(!list.allows(ip("::2")));
        let err = AllowList::parse("127.0.0.1,localhost").unwrap_err();
        assert!(err.to_string().contains("\"localhost\""), "{err}");
    }
}
