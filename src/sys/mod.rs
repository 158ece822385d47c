//! Every call into libc, each behind a small safe function.
//!
//! The rest of the crate is safe code. Functions here return `io::Result`,
//! retry on `EINTR` where a retry is the right answer, and own their file
//! descriptors through `OwnedFd` so that nothing leaks on an early return.

pub(crate) mod spawn;

use std::ffi::CString;
use std::io::{self, IoSlice};
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// Turns the `-1` convention of libc into an `io::Error`.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// Takes ownership of a descriptor that a system call just returned, or
/// turns its `-1` into the error.
fn owned(ret: libc::c_int) -> io::Result<OwnedFd> {
    let fd = cvt(ret)?;
    // SAFETY: `fd` is a new descriptor from a successful call; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Runs `f` again while it fails with `EINTR`.
fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// The message of the error a write past the write timeout fails with
/// (it tells it from a read timeout, for the counters).
pub(crate) const WRITE_TIMED_OUT: &str = "write timed out";

/// A connected stream socket, unix or TCP.
///
/// A new socket is non-blocking, so that setting up a connection costs no
/// system call: a read or write that would block waits in `poll`. A
/// response that fills the socket switches it to blocking mode, once,
/// with the write timeout as its send timeout (the kernel then lets a
/// write go on as soon as there is room, where `poll` would wait until
/// three quarters of the buffer were free). The send buffer is the kernel's default: a unix socket's raised
/// to 416 KiB measured slower with 1 MiB bodies (docs/performance.md).
/// Reads that must not wait pass `MSG_DONTWAIT`, and reads in a request
/// wait in `poll` up to the read timeout, in either mode.
#[derive(Debug)]
pub(crate) struct Socket {
    fd: OwnedFd,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    /// The socket is in blocking mode, with its timeouts set.
    blocking: AtomicBool,
}

impl Socket {
    /// A socket with these timeouts, in non-blocking mode.
    pub(crate) fn new(
        fd: OwnedFd,
        read_timeout: Option<Duration>,
        write_timeout: Option<Duration>,
    ) -> Socket {
        Socket {
            fd,
            read_timeout,
            write_timeout,
            blocking: AtomicBool::new(false),
        }
    }

    /// One `recv` that does not wait; `WouldBlock` when nothing is there.
    pub(crate) fn read_nonblocking(&self, buf: &mut [u8]) -> io::Result<usize> {
        retry(|| {
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes and the fd is open.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            cvt_size(n)
        })
    }

    /// Reads, waiting up to the read timeout.
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_within(buf, self.read_timeout)
    }

    /// Reads, waiting up to `limit` (`None`: forever).
    pub(crate) fn read_within(&self, buf: &mut [u8], limit: Option<Duration>) -> io::Result<usize> {
        loop {
            match self.read_nonblocking(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !poll_one(self.fd.as_fd(), libc::POLLIN, limit)? {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "read timed out"));
                    }
                }
                other => return other,
            }
        }
    }

    fn writev(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let count = bufs.len().min(libc::UIO_MAXIOV as usize) as libc::c_int;
        retry(|| {
            // SAFETY: `IoSlice` is ABI-compatible with `iovec` on unix, `count`
            // does not exceed `bufs.len()`, and the fd is open.
            let n = unsafe { libc::writev(self.fd.as_raw_fd(), bufs.as_ptr().cast(), count) };
            cvt_size(n)
        })
    }

    /// Writes from several buffers at once, possibly partially, waiting up
    /// to the write timeout for room. `MSG_NOSIGNAL` semantics come from
    /// SIGPIPE being ignored process-wide.
    pub(crate) fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self.writev(bufs) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if self.blocking.load(Relaxed) {
                    // The send timeout passed.
                    return Err(io::Error::new(io::ErrorKind::TimedOut, WRITE_TIMED_OUT));
                }
                self.block()?;
                self.write_vectored(bufs)
            }
            other => other,
        }
    }

    /// Switches to blocking mode (once), with the write timeout as the
    /// send timeout.
    fn block(&self) -> io::Result<()> {
        if self.blocking.swap(true, Relaxed) {
            return Ok(());
        }
        let fd = self.fd.as_fd();
        set_timeval(fd, libc::SO_SNDTIMEO, self.write_timeout)?;
        set_blocking(fd, true)
    }

    /// Waits until the socket is readable, up to `limit` (`None`: for
    /// ever); returns whether it is.
    pub(crate) fn wait_readable(&self, limit: Option<Duration>) -> io::Result<bool> {
        poll_one(self.fd.as_fd(), libc::POLLIN, limit)
    }

    /// Shuts down the sending side: the peer reads end-of-file.
    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        // SAFETY: plain call on an open fd.
        cvt(unsafe { libc::shutdown(self.fd.as_raw_fd(), libc::SHUT_WR) }).map(drop)
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn set_timeval(fd: BorrowedFd<'_>, opt: libc::c_int, d: Option<Duration>) -> io::Result<()> {
    let tv = match d {
        // A zero timeval means "no timeout"; round a tiny duration up instead.
        Some(d) => libc::timeval {
            tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
            tv_usec: d.subsec_micros().max(u32::from(d.is_zero())) as libc::suseconds_t,
        },
        None => libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
    };
    setsockopt(fd, libc::SOL_SOCKET, opt, &tv)
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn setsockopt<T>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    opt: libc::c_int,
    val: &T,
) -> io::Result<()> {
    // SAFETY: `val` points to a live `T` of the size passed.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (val as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    cvt(ret).map(drop)
}

/// Ignores SIGPIPE for the whole process, so that writing to a peer that
/// went away is an `EPIPE` error, not death.
pub(crate) fn ignore_sigpipe() {
    // SAFETY: installing SIG_IGN has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// Accepts one connection; the new socket is non-blocking and close-on-exec.
pub(crate) fn accept(listener: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    retry(|| {
        // SAFETY: null address pointers are allowed; the fd is open.
        let fd = unsafe {
            libc::accept4(
                listener.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            )
        };
        owned(fd)
    })
}

/// The address family of a socket (`AF_UNIX`, `AF_INET`, `AF_INET6`).
pub(crate) fn socket_family(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of_val(&addr) as libc::socklen_t;
    // SAFETY: `addr` and `len` are valid for writes and describe each other.
    cvt(unsafe { libc::getsockname(fd.as_raw_fd(), (&raw mut addr).cast(), &mut len) })?;
    Ok(libc::c_int::from(addr.ss_family))
}

/// Whether `fd` is a listening socket: a socket with no peer. The FastCGI
/// spec's own test: `getpeername` fails with `ENOTCONN`.
pub(crate) fn is_listening_socket(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of_val(&addr) as libc::socklen_t;
    // SAFETY: `addr` and `len` are valid for writes and describe each other.
    let ret = unsafe { libc::getpeername(fd.as_raw_fd(), (&raw mut addr).cast(), &mut len) };
    ret == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOTCONN)
}

/// Starts listening with the given backlog (again, to raise a smaller one).
pub(crate) fn listen(fd: BorrowedFd<'_>, backlog: i32) -> io::Result<()> {
    // SAFETY: plain call on an open fd.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), backlog) }).map(drop)
}

/// A new unix stream socket bound at `path`, its mode set before it
/// listens, so that no connection gets in under a looser mode.
pub(crate) fn bind_unix(path: &Path, mode: u32, backlog: i32) -> io::Result<OwnedFd> {
    // SAFETY: sockaddr_un is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { mem::zeroed() };
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "path is {} bytes, longer than a unix socket allows ({})",
                bytes.len(),
                addr.sun_path.len() - 1
            ),
        ));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, &src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    // SAFETY: plain call with constant arguments.
    let fd =
        owned(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    let len = mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: `addr` is a fully initialised sockaddr_un of length `len`.
    cvt(unsafe { libc::bind(fd.as_raw_fd(), (&raw const addr).cast(), len) })?;
    let cpath = CString::new(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: `cpath` is a valid NUL-terminated string.
    cvt(unsafe { libc::chmod(cpath.as_ptr(), mode as libc::mode_t) })?;
    listen(fd.as_fd(), backlog)?;
    Ok(fd)
}

/// An eventfd: a counter that wakes pollers. Writing to it is
/// async-signal-safe, so a signal handler may call [`notify_raw`].
#[derive(Debug)]
pub(crate) struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    pub(crate) fn new() -> io::Result<EventFd> {
        // SAFETY: plain call with constant flags.
        let fd = owned(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        Ok(EventFd { fd })
    }

    /// An eventfd that counts: each [`notify`](EventFd::notify) adds one,
    /// each [`try_take`](EventFd::try_take) takes one; readable while the
    /// count is above 0.
    pub(crate) fn counting() -> io::Result<EventFd> {
        // SAFETY: plain call with constant flags.
        let fd = owned(unsafe {
            libc::eventfd(
                0,
                libc::EFD_CLOEXEC | libc::EFD_NONBLOCK | libc::EFD_SEMAPHORE,
            )
        })?;
        Ok(EventFd { fd })
    }

    /// Takes one from a counting eventfd's count; false when it is 0.
    pub(crate) fn try_take(&self) -> bool {
        let mut count = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live 8-byte buffer; the fd
        // is open and non-blocking.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), count.as_mut_ptr().cast(), 8) };
        n == 8
    }

    /// Makes the eventfd readable, until [`drain`](EventFd::drain).
    pub(crate) fn notify(&self) {
        notify_raw(self.fd.as_raw_fd());
    }

    /// Makes it not readable again (resets its counter).
    pub(crate) fn drain(&self) {
        let mut count = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live 8-byte buffer; the fd
        // is open (and non-blocking, so an empty counter is just EAGAIN).
        unsafe { libc::read(self.fd.as_raw_fd(), count.as_mut_ptr().cast(), 8) };
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Adds one to an eventfd by its number; async-signal-safe.
pub(crate) fn notify_raw(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64; a failure (counter full) still
    // leaves the eventfd readable, which is all we want.
    unsafe { libc::write(fd, (&raw const one).cast(), 8) };
}

/// Waits until one of `fds` is readable (or hung up), or the timeout passes.
/// Returns, for each fd, whether it is ready. At most 2 fds.
pub(crate) fn poll_readable(
    fds: &[BorrowedFd<'_>],
    timeout: Option<Duration>,
) -> io::Result<[bool; 2]> {
    assert!(fds.len() <= 2);
    let mut pfds = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; 2];
    for (p, fd) in pfds.iter_mut().zip(fds) {
        p.fd = fd.as_raw_fd();
        p.events = libc::POLLIN;
    }
    let ms = poll_ms(timeout);
    // SAFETY: `pfds` holds `fds.len()` initialised pollfd entries.
    retry(|| cvt(unsafe { libc::poll(pfds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) }))?;
    Ok([pfds[0].revents != 0, pfds[1].revents != 0])
}

/// Waits until `fd` is ready for `events` (or in error, or hung up), or
/// the timeout passes; returns whether it is.
fn poll_one(
    fd: BorrowedFd<'_>,
    events: libc::c_short,
    timeout: Option<Duration>,
) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    let ms = poll_ms(timeout);
    // SAFETY: `pfd` is one initialised pollfd entry.
    let n = retry(|| cvt(unsafe { libc::poll(&mut pfd, 1, ms) }))?;
    Ok(n == 1)
}

/// A timeout for `poll` and `epoll_wait`: milliseconds, rounded up, or -1.
fn poll_ms(timeout: Option<Duration>) -> libc::c_int {
    timeout.map_or(-1, |d| {
        let ms = d.as_micros().div_ceil(1000);
        ms.min(i32::MAX as u128) as libc::c_int
    })
}

/// How an fd in an epoll set reports readiness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// Reported for as long as it is readable (a listening socket, an
    /// eventfd: every waiter may act on it).
    Level,
    /// Reported each time new bytes arrive (a connection: registered once,
    /// and served by one worker at a time, which the caller arranges).
    Edge,
}

/// An epoll instance.
#[derive(Debug)]
pub(crate) struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    pub(crate) fn new() -> io::Result<Epoll> {
        // SAFETY: plain call with constant flags.
        let fd = owned(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        Ok(Epoll { fd })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `ev` is a valid epoll_event; the fds are open.
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut ev) }).map(drop)
    }

    /// Watches `fd` for readability, reporting `token`. An fd that is
    /// readable already is reported at once.
    pub(crate) fn add(&self, fd: RawFd, token: u64, trigger: Trigger) -> io::Result<()> {
        let mut events = (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
        if trigger == Trigger::Edge {
            events |= libc::EPOLLET as u32;
        }
        self.ctl(libc::EPOLL_CTL_ADD, fd, events, token)
    }

    /// Switches the reports of a level-triggered `fd` off or back on.
    pub(crate) fn set_level(&self, fd: RawFd, token: u64, on: bool) -> io::Result<()> {
        let events = if on { libc::EPOLLIN as u32 } else { 0 };
        self.ctl(libc::EPOLL_CTL_MOD, fd, events, token)
    }

    /// Watches a non-blocking `fd` both ways, edge-triggered, reporting
    /// `token` whenever it becomes readable or writable (or is closed):
    /// registered once, as an event loop does, with no later `epoll_ctl`.
    pub(crate) fn add_both_ways(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let events = libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET;
        self.ctl(libc::EPOLL_CTL_ADD, fd, events as u32, token)
    }

    /// Waits for events, up to `tokens.len()` (at most 64) of them; their
    /// tokens are written to `tokens`, and how many is returned (0 at the
    /// timeout).
    pub(crate) fn wait_many(
        &self,
        tokens: &mut [u64],
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
        let max = tokens.len().min(events.len()) as libc::c_int;
        let ms = poll_ms(timeout);
        let n = retry(|| {
            // SAFETY: `events` has room for the `max` entries asked for.
            cvt(unsafe { libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), max, ms) })
        })? as usize;
        for (t, e) in tokens.iter_mut().zip(&events[..n]) {
            *t = e.u64;
        }
        Ok(n)
    }

    /// Waits for one event; returns its token, or `None` at the timeout.
    pub(crate) fn wait_one(&self, timeout: Option<Duration>) -> io::Result<Option<u64>> {
        let mut event = libc::epoll_event { events: 0, u64: 0 };
        let ms = poll_ms(timeout);
        let n = retry(|| {
            // SAFETY: `event` has room for the one entry asked for.
            cvt(unsafe { libc::epoll_wait(self.fd.as_raw_fd(), &mut event, 1, ms) })
        })?;
        Ok((n == 1).then_some(event.u64))
    }
}

/// Nanoseconds on a monotonic clock of coarse resolution (a few
/// milliseconds): cheaper to read than `Instant::now`, and fine for
/// timeouts that are checked every few milliseconds at best.
pub(crate) fn coarse_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill; the clock id
    // is a constant that Linux defines.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Makes `fd` non-blocking (for a listening socket: `accept` returns
/// `EAGAIN` instead of waiting).
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    set_blocking(fd, false)
}

/// Makes `fd` blocking or not.
fn set_blocking(fd: BorrowedFd<'_>, blocking: bool) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL on an open descriptor; no memory is passed.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    let flags = if blocking {
        flags & !libc::O_NONBLOCK
    } else {
        flags | libc::O_NONBLOCK
    };
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) }).map(drop)
}

/// A duplicate of fd `fd` that we own (close-on-exec).
pub(crate) fn dup(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    fd.try_clone_to_owned()
}

/// Borrows a raw fd that the process was started with, such as fd 0.
pub(crate) fn inherited_fd(fd: RawFd) -> Option<BorrowedFd<'static>> {
    // SAFETY: fcntl(F_GETFD) only inspects the descriptor table.
    let open = unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1;
    // SAFETY: the fd is open, and the inherited descriptors it is used for
    // (0 and the systemd ones) stay open for the life of the process: the
    // crate never closes them.
    open.then(|| unsafe { BorrowedFd::borrow_raw(fd) })
}

/// Whether `fd` is a terminal.
pub(crate) fn isatty(fd: RawFd) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// The IP address of a TCP socket's peer; `None` for other sockets.
pub(crate) fn peer_ip(sock: BorrowedFd<'_>) -> io::Result<Option<std::net::IpAddr>> {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of_val(&addr) as libc::socklen_t;
    // SAFETY: `addr` and `len` are valid for writes and describe each other.
    cvt(unsafe { libc::getpeername(sock.as_raw_fd(), (&raw mut addr).cast(), &mut len) })?;
    Ok(match libc::c_int::from(addr.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a: &libc::sockaddr_in = unsafe { &*(&raw const addr).cast() };
            Some(std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)).into())
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(&raw const addr).cast() };
            Some(std::net::Ipv6Addr::from(a.sin6_addr.s6_addr).into())
        }
        _ => None,
    })
}

/// Takes ownership of a descriptor the process was started with (systemd
/// passes listening sockets from fd 3 on), marking it close-on-exec.
pub(crate) fn adopt_inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_SETFD on a descriptor number; fails with EBADF if not open.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) })?;
    // SAFETY: the descriptor is open (fcntl succeeded) and was handed to
    // this process to use; nothing else in the crate owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Removes the variables of systemd socket activation once their socket is
/// taken, as `sd_listen_fds(1)` does, so that child processes do not take
/// it for theirs.
pub(crate) fn clear_socket_activation_env() {
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        // SAFETY: removing a variable races with other threads reading or
        // writing the environment. `Server::run` calls this before it
        // starts any thread of its own, and documents that the program's
        // other threads must not use the environment while `run` starts.
        unsafe { std::env::remove_var(name) };
    }
}

/// Removes the variables `names` that a process started by a hand-over
/// read at start, so that the program's child processes do not take them
/// for theirs.
///
/// Must be called before the crate starts threads (see
/// [`clear_socket_activation_env`]).
pub(crate) fn clear_start_env(names: &[&str]) {
    for name in names {
        // SAFETY: as in `clear_socket_activation_env`: `Server::run` calls
        // this before it starts any thread of its own.
        unsafe { std::env::remove_var(name) };
    }
}

/// The signals that ask the server to stop: what init systems, web servers
/// (lighttpd, mod_fcgid) and a terminal's Ctrl-C send.
pub(crate) const STOP_SIGNALS: [libc::c_int; 4] =
    [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR1];

static SIGNAL_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);
static SIGNALLED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_stop_signal(sig: libc::c_int) {
    use std::sync::atomic::Ordering::SeqCst;
    // Only async-signal-safe work: two atomics and a write(2).
    SIGNALLED.store(sig, SeqCst);
    let fd = SIGNAL_FD.load(SeqCst);
    if fd >= 0 {
        notify_raw(fd);
    }
}

/// Makes the stop signals notify `event`. The eventfd must stay open for
/// the rest of the process (the caller leaks a reference to it), since a
/// handler may run at any time.
pub(crate) fn catch_stop_signals(event: &EventFd) -> io::Result<()> {
    use std::sync::atomic::Ordering::SeqCst;
    SIGNALLED.store(0, SeqCst);
    SIGNAL_FD.store(event.fd.as_raw_fd(), SeqCst);
    for sig in STOP_SIGNALS {
        // SAFETY: sigaction is plain data; all-zero is a valid value.
        let mut act: libc::sigaction = unsafe { mem::zeroed() };
        act.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        act.sa_flags = libc::SA_RESTART;
        // SAFETY: `act` is initialised and its handler is async-signal-safe.
        cvt(unsafe { libc::sigaction(sig, &act, std::ptr::null_mut()) })?;
    }
    Ok(())
}

/// Gives the stop signals back their default effect (ending the process).
pub(crate) fn restore_stop_signals() {
    for sig in STOP_SIGNALS {
        // SAFETY: installing SIG_DFL has no preconditions.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    SIGNAL_FD.store(-1, std::sync::atomic::Ordering::SeqCst);
}

/// The stop signal received since [`catch_stop_signals`], if any.
pub(crate) fn stop_signal() -> Option<libc::c_int> {
    Some(SIGNALLED.load(std::sync::atomic::Ordering::SeqCst)).filter(|&s| s != 0)
}

/// The name of a stop signal, for messages.
pub(crate) fn signal_name(sig: libc::c_int) -> &'static str {
    match sig {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        libc::SIGUSR1 => "SIGUSR1",
        _ => "a signal",
    }
}

/// Sends SIGTERM to process `pid`: how a web server stops the FastCGI
/// program it started. The caller must not yet have reaped `pid` (with
/// `wait`), so that the id still names its child and not a process that
/// took the number over.
pub(crate) fn terminate(pid: u32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "no such process id"))?;
    // SAFETY: kill takes two integers and touches no memory of ours.
    cvt(unsafe { libc::kill(pid, libc::SIGTERM) }).map(drop)
}

/// Nanoseconds on the monotonic clock: what `Instant` reads, without the
/// arithmetic of its type (requests are timed twice each).
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = mem::MaybeUninit::<libc::timespec>::uninit();
    // SAFETY: `ts` is valid for writes; CLOCK_MONOTONIC always exists, so
    // the call cannot fail and fills `ts`.
    let ts = unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, ts.as_mut_ptr());
        ts.assume_init()
    };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// The CPUs the calling thread may run on (its affinity mask): one
/// system call, where counting with the cgroup's CPU quota as well reads
/// several files. `None` when the mask cannot be read.
pub(crate) fn affinity_cpus() -> Option<usize> {
    // SAFETY: a zeroed `cpu_set_t` is a valid empty set; the kernel writes
    // at most `size_of::<cpu_set_t>()` bytes into it, and CPU_COUNT only
    // reads it.
    unsafe {
        let mut set: libc::cpu_set_t = mem::zeroed();
        if libc::sched_getaffinity(0, mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        usize::try_from(libc::CPU_COUNT(&set))
            .ok()
            .filter(|&n| n > 0)
    }
}

/// The kernel's id of the calling thread (what `/proc/self/task/` lists).
pub(crate) fn thread_id() -> i32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}

/// Shuts a connection down both ways by its descriptor number: its peer
/// reads the end of the stream at once, and reads and writes on it here
/// fail. The caller makes sure the descriptor is still that connection's.
pub(crate) fn shutdown_both(fd: RawFd) -> io::Result<()> {
    // SAFETY: plain call; a stale number at worst fails with EBADF or ENOTSOCK.
    cvt(unsafe { libc::shutdown(fd, libc::SHUT_RDWR) }).map(drop)
}

/// Connections waiting in a TCP listener's accept queue: what `TCP_INFO`
/// reports as `tcpi_unacked` for a socket in the LISTEN state.
pub(crate) fn tcp_accept_queue(fd: BorrowedFd<'_>) -> io::Result<u32> {
    // SAFETY: tcp_info is plain data; all-zero is a valid value.
    let mut info: libc::tcp_info = unsafe { mem::zeroed() };
    let mut len = mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: `info` and `len` are valid for writes and describe each other.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        )
    })?;
    if info.tcpi_state != 10 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a listening TCP socket",
        ));
    }
    Ok(info.tcpi_unacked)
}

/// The inode number of a descriptor's file (a socket's, for sock_diag).
pub(crate) fn inode(fd: BorrowedFd<'_>) -> io::Result<u64> {
    // SAFETY: stat is plain data; all-zero is a valid value.
    let mut st: libc::stat = unsafe { mem::zeroed() };
    // SAFETY: `st` is valid for writes; the fd is open.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st.st_ino)
}

/// Sends `request` to the kernel's socket-diagnostics netlink service
/// (`NETLINK_SOCK_DIAG`, what `ss` uses) and reads its first reply into
/// `reply`; returns the reply's length.
pub(crate) fn sock_diag(request: &[u8], reply: &mut [u8]) -> io::Result<usize> {
    // SAFETY: plain call with constant arguments.
    let fd = owned(unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    })?;
    // SAFETY: `request` is valid for reads of its length; the fd is open.
    let sent = unsafe { libc::send(fd.as_raw_fd(), request.as_ptr().cast(), request.len(), 0) };
    cvt_size(sent)?;
    let sock = Socket::new(fd, Some(Duration::from_secs(1)), None);
    sock.read(reply)
}

/// Fills `ips` with the return addresses on the calling thread's stack,
/// innermost first, without resolving them to names (which would load the
/// debug info); returns how many it found.
pub(crate) fn backtrace(ips: &mut [usize]) -> usize {
    struct Frames<'a> {
        ips: &'a mut [usize],
        n: usize,
    }
    extern "C" fn each(ctx: *mut libc::c_void, arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is the `Frames` passed below, alive for the whole walk.
        let frames = unsafe { &mut *arg.cast::<Frames<'_>>() };
        if frames.n == frames.ips.len() {
            return 5; // _URC_END_OF_STACK: stop here
        }
        // SAFETY: `ctx` is the unwinder's context for this frame.
        frames.ips[frames.n] = unsafe { _Unwind_GetIP(ctx) };
        frames.n += 1;
        0
    }
    let mut frames = Frames { ips, n: 0 };
    // SAFETY: `each` matches the callback the unwinder expects, and `frames`
    // outlives the call.
    unsafe { _Unwind_Backtrace(each, (&raw mut frames).cast()) };
    frames.n
}

unsafe extern "C" {
    fn _Unwind_Backtrace(
        trace: extern "C" fn(*mut libc::c_void, *mut libc::c_void) -> libc::c_int,
        arg: *mut libc::c_void,
    ) -> libc::c_int;
    fn _Unwind_GetIP(ctx: *mut libc::c_void) -> usize;
}

/// The file of the loaded object that holds code address `ip`, and the
/// address it is loaded at.
pub(crate) fn object_of(ip: usize) -> Option<(std::path::PathBuf, usize)> {
    // SAFETY: Dl_info is plain data; all-zero is a valid value.
    let mut info: libc::Dl_info = unsafe { mem::zeroed() };
    // SAFETY: `info` is valid for writes; dladdr only looks the address up.
    if unsafe { libc::dladdr(ip as *const libc::c_void, &mut info) } == 0
        || info.dli_fname.is_null()
    {
        return None;
    }
    // SAFETY: dladdr set `dli_fname` to a NUL-terminated string that lives
    // as long as the object stays loaded; it is copied at once.
    let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
    let path = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(name.to_bytes()));
    Some((path, info.dli_fbase as usize))
}

/// The address a socket is bound to, as far as the crate reports it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LocalAddr {
    /// A unix socket's path (empty when unnamed; starting with NUL when abstract).
    Unix(Vec<u8>),
    /// A TCP/IP socket's address.
    Inet(std::net::SocketAddr),
}

/// The address socket `fd` is bound to.
pub(crate) fn local_addr(fd: BorrowedFd<'_>) -> io::Result<LocalAddr> {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of_val(&addr) as libc::socklen_t;
    // SAFETY: `addr` and `len` are valid for writes and describe each other.
    cvt(unsafe { libc::getsockname(fd.as_raw_fd(), (&raw mut addr).cast(), &mut len) })?;
    if libc::c_int::from(addr.ss_family) == libc::AF_UNIX {
        return Ok(LocalAddr::Unix(unix_path(&addr, len as usize)));
    }
    inet_addr(&addr)
        .map(LocalAddr::Inet)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a unix or TCP/IP socket"))
}

/// The path in a unix socket address of `len` bytes.
fn unix_path(addr: &libc::sockaddr_storage, len: usize) -> Vec<u8> {
    // SAFETY: the caller saw AF_UNIX: the storage holds a sockaddr_un.
    let un: &libc::sockaddr_un = unsafe { &*(addr as *const libc::sockaddr_storage).cast() };
    let at = mem::size_of::<libc::sa_family_t>();
    let n = len.saturating_sub(at).min(un.sun_path.len());
    let mut path: Vec<u8> = un.sun_path[..n].iter().map(|&c| c as u8).collect();
    // A path ends at its NUL; an abstract name starts with one.
    if let Some(end) = path.iter().position(|&b| b == 0).filter(|&e| e > 0) {
        path.truncate(end);
    }
    path
}

/// The IP address and port in a socket address, if it is one.
fn inet_addr(storage: &libc::sockaddr_storage) -> Option<std::net::SocketAddr> {
    let addr = storage as *const libc::sockaddr_storage;
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a: &libc::sockaddr_in = unsafe { &*addr.cast() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some((ip, u16::from_be(a.sin_port)).into())
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*addr.cast() };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some((ip, u16::from_be(a.sin6_port)).into())
        }
        _ => None,
    }
}
