//! Starting the program again with descriptors placed at fixed numbers
//! (the hand-over), waiting for it, and the signal that asks for it.
//!
//! The new process must see its own process id in `LISTEN_PID`, which is
//! known only after `fork`: the environment is laid out before `fork`,
//! with a slot that the child fills with its id before `execve`. Between
//! `fork` and `execve` the child, a copy of a threaded process, calls
//! only async-signal-safe functions and allocates nothing.

use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering::SeqCst};
use std::time::Duration;

use super::{EventFd, cvt, notify_raw, poll_ms, retry};

/// A pipe whose ends are both close-on-exec: `(read, write)`.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds: [libc::c_int; 2] = [-1, -1];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both are new descriptors from a successful call; nothing
    // else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A program to start: its path, its arguments (the first is its
/// `argv[0]`), its environment (`NAME=VALUE` each), and the descriptors
/// it gets at fixed numbers.
#[derive(Debug)]
pub(crate) struct Command<'a> {
    pub(crate) program: &'a Path,
    pub(crate) args: &'a [OsString],
    pub(crate) env: &'a [OsString],
    /// A variable added to the environment whose value is the new
    /// process's own id (`LISTEN_PID`).
    pub(crate) pid_var: &'a str,
    /// Each descriptor, and the number it has in the new process (not
    /// close-on-exec there).
    pub(crate) fds: &'a [(BorrowedFd<'a>, RawFd)],
}

fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{s:?} contains a NUL byte"),
        )
    })
}

/// What the child needs, laid out before `fork`: nothing is allocated
/// after it.
struct Prepared {
    program: CString,
    _args: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    _env: Vec<CString>,
    envp: Vec<*const libc::c_char>,
    /// `NAME=` and room for the digits and the NUL; `envp` points at it.
    _pid_slot: Vec<u8>,
    /// Where the digits go in it (the pointer `envp` holds is derived
    /// from the same one, so the write reaches what `execve` reads).
    pid_digits: *mut u8,
    /// Each descriptor duplicated above every target number, and its target.
    fds: Vec<(OwnedFd, RawFd)>,
}

impl Prepared {
    fn new(cmd: &Command<'_>) -> io::Result<Prepared> {
        let program = cstring(cmd.program.as_os_str())?;
        let args: Vec<CString> = cmd
            .args
            .iter()
            .map(|a| cstring(a))
            .collect::<io::Result<_>>()?;
        let env: Vec<CString> = cmd
            .env
            .iter()
            .map(|e| cstring(e))
            .collect::<io::Result<_>>()?;
        let mut pid_slot = format!("{}=", cmd.pid_var).into_bytes();
        let pid_at = pid_slot.len();
        pid_slot.resize(pid_at + PID_ROOM, 0);
        let slot = pid_slot.as_mut_ptr();
        let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
        envp.push(slot.cast_const().cast());
        envp.push(std::ptr::null());
        // Above every target, so that placing one cannot overwrite another.
        let above = cmd.fds.iter().map(|&(_, t)| t).max().unwrap_or(2) + 1;
        let fds = cmd
            .fds
            .iter()
            .map(|&(fd, target)| dup_above(fd, above).map(|high| (high, target)))
            .collect::<io::Result<_>>()?;
        Ok(Prepared {
            program,
            _args: args,
            argv,
            _env: env,
            envp,
            _pid_slot: pid_slot,
            // SAFETY: `pid_at` is within the buffer (PID_ROOM bytes follow it).
            pid_digits: unsafe { slot.add(pid_at) },
            fds,
        })
    }
}

/// Bytes for a process id's digits and a NUL.
const PID_ROOM: usize = 24;

/// A close-on-exec duplicate of `fd` numbered `min` or above.
fn dup_above(fd: BorrowedFd<'_>, min: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on an open descriptor; no memory is passed.
    let new = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) })?;
    // SAFETY: a new descriptor from a successful call; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Starts `cmd` (fork, then execve) and returns the new process's id. An
/// `execve` that fails (no such file, not executable, not a program) is
/// this call's error, and the failed child is reaped.
pub(crate) fn spawn(cmd: &Command<'_>) -> io::Result<u32> {
    let prep = Prepared::new(cmd)?;
    let (err_r, err_w) = pipe()?;
    // SAFETY: fork has no preconditions. In the child, `exec_child` keeps
    // to async-signal-safe calls and never returns.
    let pid = cvt(unsafe { libc::fork() })?;
    if pid == 0 {
        exec_child(&prep, err_w.as_raw_fd());
    }
    drop(err_w);
    drop(prep);
    let mut errno = [0u8; 4];
    let mut got = 0;
    let mut err = std::fs::File::from(err_r);
    while got < 4 {
        match io::Read::read(&mut err, &mut errno[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if got == 0 {
        return Ok(pid as u32);
    }
    let _ = wait(pid as u32, None);
    Err(io::Error::from_raw_os_error(i32::from_ne_bytes(errno)))
}

/// The child's side of [`spawn`]: its own id into the environment, the
/// descriptors into place, the signal mask and SIGPIPE back to their
/// defaults, then `execve`; on failure its `errno` goes to `report` and
/// the child exits with status 127.
fn exec_child(prep: &Prepared, report: RawFd) -> ! {
    // SAFETY: getpid is async-signal-safe and cannot fail.
    let pid = unsafe { libc::getpid() };
    // SAFETY: `pid_digits` points at PID_ROOM bytes of the slot, which
    // nothing else reads or writes in this process until `execve`.
    let room = unsafe { std::slice::from_raw_parts_mut(prep.pid_digits, PID_ROOM) };
    write_digits(room, pid as u64);
    // SAFETY: the calls below are async-signal-safe (POSIX lists them) and
    // are given valid pointers into `prep`, which the fork copied; nothing
    // allocates. `execve` replaces the process or returns an error.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGPIPE, &act, std::ptr::null_mut());
        for (high, target) in &prep.fds {
            if libc::dup2(high.as_raw_fd(), *target) == -1 {
                fail_child(report);
            }
        }
        libc::execve(
            prep.program.as_ptr(),
            prep.argv.as_ptr(),
            prep.envp.as_ptr(),
        );
        fail_child(report)
    }
}

/// Reports `errno` on `report` and exits the child at once.
fn fail_child(report: RawFd) -> ! {
    let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
    let bytes = errno.to_ne_bytes();
    // SAFETY: write and _exit are async-signal-safe; `bytes` is a live
    // 4-byte buffer.
    unsafe {
        libc::write(report, bytes.as_ptr().cast(), 4);
        libc::_exit(127)
    }
}

/// Writes `n` in decimal at the start of `out`, then a NUL; no allocation.
fn write_digits(out: &mut [u8], mut n: u64) {
    let mut digits = [0u8; 20];
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for (i, d) in digits[..len].iter().rev().enumerate() {
        out[i] = *d;
    }
    out[len] = 0;
}

/// How a child process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// It exited with this status.
    Exited(i32),
    /// A signal ended it.
    Signalled(i32),
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ended::Exited(code) => write!(f, "exited with status {code}"),
            Ended::Signalled(sig) => write!(f, "was killed by signal {sig}"),
        }
    }
}

/// Reaps child `pid` if it has ended, waiting up to `limit` for it
/// (`None`: not at all); `Ok(None)` while it runs.
pub(crate) fn wait(pid: u32, limit: Option<Duration>) -> io::Result<Option<Ended>> {
    let deadline = limit.map(|d| std::time::Instant::now() + d);
    loop {
        let mut status: libc::c_int = 0;
        let got = retry(|| {
            // SAFETY: `status` is valid for writes; WNOHANG never blocks.
            cvt(unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) })
        })?;
        if got != 0 {
            return Ok(Some(if libc::WIFSIGNALED(status) {
                Ended::Signalled(libc::WTERMSIG(status))
            } else {
                Ended::Exited(libc::WEXITSTATUS(status))
            }));
        }
        match deadline {
            Some(at) if std::time::Instant::now() < at => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => return Ok(None),
        }
    }
}

/// Sends SIGKILL to child `pid`, which must not have been reaped yet.
pub(crate) fn kill(pid: u32) -> io::Result<()> {
    // SAFETY: kill takes two integers and touches no memory of ours.
    cvt(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }).map(drop)
}

/// Waits until one of `fds` is readable (or hung up), or the timeout
/// passes. Returns, for each fd, whether it is ready.
pub(crate) fn poll_any<const N: usize>(
    fds: [BorrowedFd<'_>; N],
    timeout: Option<Duration>,
) -> io::Result<[bool; N]> {
    let mut pfds = fds.map(|fd| libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    });
    let ms = poll_ms(timeout);
    // SAFETY: `pfds` holds N initialised pollfd entries.
    retry(|| cvt(unsafe { libc::poll(pfds.as_mut_ptr(), N as libc::nfds_t, ms) }))?;
    Ok(pfds.map(|p| p.revents != 0))
}

static HANDOVER_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_handover_signal(_sig: libc::c_int) {
    // Only async-signal-safe work: an atomic and a write(2).
    let fd = HANDOVER_FD.load(SeqCst);
    if fd >= 0 {
        notify_raw(fd);
    }
}

/// Makes SIGUSR2 notify `event`. The eventfd must stay open for the rest
/// of the process (the caller leaks a reference to it), since a handler
/// may run at any time.
pub(crate) fn catch_handover_signal(event: &EventFd) -> io::Result<()> {
    HANDOVER_FD.store(event.as_fd().as_raw_fd(), SeqCst);
    // SAFETY: sigaction is plain data; all-zero is a valid value.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = on_handover_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    act.sa_flags = libc::SA_RESTART;
    // SAFETY: `act` is initialised and its handler is async-signal-safe.
    cvt(unsafe { libc::sigaction(libc::SIGUSR2, &act, std::ptr::null_mut()) }).map(drop)
}

/// Gives SIGUSR2 back its default effect.
pub(crate) fn restore_handover_signal() {
    // SAFETY: installing SIG_DFL has no preconditions.
    unsafe { libc::signal(libc::SIGUSR2, libc::SIG_DFL) };
    HANDOVER_FD.store(-1, SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `script` under /bin/sh with a pipe's write end on fd 3;
    /// returns how it ended.
    fn run_sh(script: &str, program: &str) -> io::Result<Ended> {
        let (_r, w) = pipe()?;
        let args: Vec<OsString> = vec!["sh".into(), "-c".into(), script.into()];
        let env: Vec<OsString> = vec!["PATH=/usr/bin:/bin".into()];
        let fds = [(w.as_fd(), 3)];
        let pid = spawn(&Command {
            program: Path::new(program),
            args: &args,
            env: &env,
            pid_var: "LISTEN_PID",
            fds: &fds,
        })?;
        Ok(wait(pid, Some(Duration::from_secs(10)))?.expect("it ended"))
    }

    #[test]
    fn the_child_sees_its_own_pid_and_the_descriptor_in_place() {
        let script = r#"[ "$LISTEN_PID" = "$$" ] || exit 1; [ -p /dev/fd/3 ] || exit 2; exit 7"#;
        assert_eq!(run_sh(script, "/bin/sh").unwrap(), Ended::Exited(7));
        let err = run_sh("exit 0", "/nonexistent/program").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn digits_are_written_with_a_nul() {
        for (n, want) in [(0u64, &b"0\0"[..]), (7, b"7\0"), (4242, b"4242\0")] {
            let mut out = [0xffu8; 24];
            write_digits(&mut out, n);
            assert_eq!(&out[..want.len()], want);
        }
        let mut out = [0xffu8; 24];
        write_digits(&mut out, u64::MAX);
        assert_eq!(&out[..21], b"18446744073709551615\0");
    }
}
