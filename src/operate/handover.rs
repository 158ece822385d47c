//! The hand-over: on SIGUSR2, or when `max_requests` is reached, the
//! server starts its program again, from the path it was started from
//! (read from disk again, so a replaced binary is the one that runs), and
//! passes it the listening socket the way systemd passes one (on fd 3,
//! `LISTEN_FDS=1`, `LISTEN_PID` the new process's id). The new process
//! says on a pipe (fd 4, named by `FCGI_HANDOVER_FD`) when it serves;
//! only then does this one stop accepting and drain, as on SIGTERM. The
//! socket never closes, so no connection is refused meanwhile.
//!
//! ```text
//!  old process                         new process
//!  SIGUSR2 -> fork, execve(program) --> run(): socket from fd 3
//!  waits on the pipe                    serving -> "READY=1" on fd 4
//!  stops accepting, drains <----------'
//!  exits                                serves alone
//! ```
//!
//! If the new process cannot be started, exits, or stays silent past the
//! timeout, it is stopped and this one goes on serving, saying why.
//! `FCGI_GENERATION` counts the hand-overs that led to a process.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::notify::Notifier;
use crate::observe::log::{self, Level};
use crate::sys::{self, EventFd, spawn};

/// The variable that carries a process's generation.
pub(crate) const GENERATION_VAR: &str = "FCGI_GENERATION";
/// The variable naming the descriptor on which a process started by a
/// hand-over says it serves.
pub(crate) const READY_FD_VAR: &str = "FCGI_HANDOVER_FD";
/// Where the new process gets the listening socket (systemd's first).
const LISTEN_FD: RawFd = 3;
/// Where the new process gets the pipe it says it serves on.
const READY_FD: RawFd = 4;
/// What it says.
const READY: &[u8] = b"READY=1\n";
/// How long this process goes on serving what it accepted, after it
/// stopped accepting, before it drains: a connection accepted just before
/// may have its first request still on the way (the web server connects,
/// then writes), and a connection closed before that request arrived would
/// fail it.
const SETTLE: Duration = Duration::from_millis(200);

/// What makes the pool stop accepting (see `Running::accept_stopper`).
type Stopper = Box<dyn Fn() + Send + Sync>;

/// How this process was started, as far as hand-overs go.
#[derive(Debug)]
pub(crate) struct Origin {
    /// How many hand-overs led to this process (0: started otherwise).
    pub(crate) generation: u64,
    /// The pipe to say on that this process serves, when a hand-over
    /// started it.
    ready: Option<OwnedFd>,
    /// The program's path, resolved now (later, `/proc/self/exe` would
    /// name a deleted file once the binary is replaced).
    program: Option<PathBuf>,
    args: Vec<OsString>,
}

impl Origin {
    /// Reads and removes `FCGI_GENERATION` and `FCGI_HANDOVER_FD` (the
    /// pipe counts only when `LISTEN_PID` names this process), and notes
    /// the program's path and arguments. Before the crate starts threads.
    pub(crate) fn take() -> Origin {
        let var = |name| std::env::var(name).ok();
        let generation = var(GENERATION_VAR).and_then(|v| v.parse().ok());
        let ours = var("LISTEN_PID").and_then(|v| v.parse::<u32>().ok())
            == Some(std::process::id())
            && var("LISTEN_FDS").is_some_and(|v| v.parse::<u32>().is_ok_and(|n| n >= 1));
        let ready = var(READY_FD_VAR)
            .and_then(|v| v.parse::<RawFd>().ok())
            .filter(|&fd| ours && fd > 2)
            .and_then(|fd| sys::adopt_inherited_fd(fd).ok());
        let set: Vec<&str> = [GENERATION_VAR, READY_FD_VAR]
            .into_iter()
            .filter(|name| std::env::var_os(name).is_some())
            .collect();
        if !set.is_empty() {
            sys::clear_start_env(&set);
        }
        Origin {
            generation: generation.unwrap_or(0),
            ready,
            program: program_path(),
            args: std::env::args_os().collect(),
        }
    }

    /// Whether a hand-over started this process: its socket is the one
    /// passed on fd 3, whatever the program was told to bind.
    pub(crate) fn handed_over(&self) -> bool {
        self.ready.is_some()
    }

    /// Tells the process that started this one that it serves; returns
    /// whether there was one to tell.
    pub(crate) fn announce(&mut self) -> bool {
        let Some(fd) = self.ready.take() else {
            return false;
        };
        if let Err(e) = File::from(fd).write_all(READY) {
            log::warn(
                "handover_ready",
                &format!("cannot tell the previous process that this one serves: {e}"),
            );
        }
        true
    }
}

/// The path the program was started from: `argv[0]` made absolute
/// (against the working directory, or found on `PATH`), else what
/// `/proc/self/exe` names now. Symbolic links are kept, so that a link
/// switched to a new release starts that release.
fn program_path() -> Option<PathBuf> {
    let exe = || std::fs::read_link("/proc/self/exe").ok();
    let Some(argv0) = std::env::args_os().next().map(PathBuf::from) else {
        return exe();
    };
    if argv0.is_absolute() {
        return Some(argv0);
    }
    if argv0.components().count() > 1 {
        return std::env::current_dir().ok().map(|d| d.join(argv0));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(&argv0))
        .find(|p| p.is_file() && p.is_absolute())
        .or_else(exe)
}

/// Where the listening socket came from, which decides whether it can be
/// handed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// Bound by the server (`Server::bind`), or handed over by the
    /// process before, which had bound it.
    Bound,
    /// Passed by systemd socket activation (or by a hand-over of one).
    Activated,
    /// Inherited on fd 0 from the web server that started the process.
    Inherited,
    /// Given by the program (`Server::listener`).
    Given,
}

impl Source {
    /// Why a socket from here is not handed over, if it is not.
    fn refusal(self) -> Option<&'static str> {
        match self {
            Source::Bound | Source::Activated => None,
            Source::Inherited => Some(
                "the listening socket was inherited on file descriptor 0 from the web server \
                 (lighttpd bin-path, Apache mod_fcgid, spawn-fcgi), which starts and restarts \
                 its application processes itself",
            ),
            Source::Given => Some(
                "the program gave the server its own listening socket; only a socket the \
                 server bound, or one passed by systemd, is handed over",
            ),
        }
    }
}

/// What the hand-over needs from the server.
#[derive(Debug)]
pub(crate) struct Setup {
    pub(crate) source: Source,
    /// A duplicate of the listening socket, to pass on.
    pub(crate) socket: OwnedFd,
    /// The listening socket's flag that keeps its path once handed over.
    pub(crate) keep_path: Arc<AtomicBool>,
    /// How long the new process may take to say it serves.
    pub(crate) timeout: Duration,
    /// How long a new process that failed may take to stop.
    pub(crate) grace: Duration,
    /// Whether SIGUSR2 asks for a hand-over (the server handles signals).
    pub(crate) signal: bool,
    /// Whether `max_requests` asks for one.
    pub(crate) recycle: bool,
}

/// The thread that hands over when asked, while the server runs.
pub(crate) struct Handover {
    thread: Option<JoinHandle<()>>,
    recycle: Option<Arc<EventFd>>,
    handed_to: Arc<AtomicU32>,
    stopper: Arc<OnceLock<Stopper>>,
}

impl Handover {
    /// Catches SIGUSR2 (when `setup.signal`) and starts the thread, when
    /// there is anything to do: a hand-over, or refusing one.
    pub(crate) fn start(
        origin: &Origin,
        setup: Setup,
        notifier: Option<Arc<Notifier>>,
        stop: &Arc<EventFd>,
    ) -> io::Result<Handover> {
        let refusal = setup.source.refusal();
        let recycle = (setup.recycle && refusal.is_none())
            .then(|| EventFd::new().map(Arc::new))
            .transpose()?;
        let handed_to = Arc::new(AtomicU32::new(0));
        let stopper = Arc::new(OnceLock::new());
        if !setup.signal && recycle.is_none() {
            return Ok(Handover {
                thread: None,
                recycle,
                handed_to,
                stopper,
            });
        }
        let usr2 = Arc::new(EventFd::new()?);
        if setup.signal {
            sys::spawn::catch_handover_signal(&usr2)?;
            // A signal handler may write to it at any time from now on.
            std::mem::forget(Arc::clone(&usr2));
        }
        let watch = Watch {
            program: origin.program.clone(),
            args: origin.args.clone(),
            generation: origin.generation,
            refusal,
            setup,
            notifier,
            stop: Arc::clone(stop),
            usr2,
            recycle: recycle
                .clone()
                .map_or_else(|| EventFd::new().map(Arc::new), Ok)?,
            handed_to: Arc::clone(&handed_to),
            stopper: Arc::clone(&stopper),
        };
        let thread = std::thread::Builder::new()
            .name("fcgi-handover".to_owned())
            .spawn(move || watch.run())?;
        Ok(Handover {
            thread: Some(thread),
            recycle,
            handed_to,
            stopper,
        })
    }

    /// Gives the thread what makes the pool stop accepting, once the pool
    /// runs. Without it, a hand-over stops the server at once.
    pub(crate) fn set_accept_stopper(&self, stop_accepting: impl Fn() + Send + Sync + 'static) {
        let _ = self.stopper.set(Box::new(stop_accepting));
    }

    /// What the pool notifies when `max_requests` is reached, when that
    /// is to hand over (`None`: the pool stops the server instead).
    pub(crate) fn recycle_event(&self) -> Option<Arc<EventFd>> {
        self.recycle.clone()
    }

    /// The process this one handed over to, if it did.
    pub(crate) fn handed_to(&self) -> Option<u32> {
        Some(self.handed_to.load(SeqCst)).filter(|&p| p != 0)
    }

    /// Waits for the thread to end (the stop event has fired).
    pub(crate) fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The hand-over thread's state.
struct Watch {
    program: Option<PathBuf>,
    args: Vec<OsString>,
    generation: u64,
    refusal: Option<&'static str>,
    setup: Setup,
    notifier: Option<Arc<Notifier>>,
    stop: Arc<EventFd>,
    usr2: Arc<EventFd>,
    recycle: Arc<EventFd>,
    handed_to: Arc<AtomicU32>,
    stopper: Arc<OnceLock<Stopper>>,
}

impl Watch {
    /// Hands over when asked, until the server stops (or has handed over).
    fn run(self) {
        loop {
            let fds = [self.stop.as_fd(), self.usr2.as_fd(), self.recycle.as_fd()];
            match spawn::poll_any(fds, None) {
                Ok([true, _, _]) => return,
                Ok([_, signal, limit]) => {
                    self.usr2.drain();
                    self.recycle.drain();
                    let cause = if signal { "SIGUSR2" } else { "max_requests" };
                    if (signal || limit) && self.hand_over(cause) {
                        return;
                    }
                }
                Err(e) => {
                    log::error("poll_failed", &format!("waiting for SIGUSR2 failed: {e}"));
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// One hand-over, asked for by `cause`; returns whether it was done
    /// (the server is stopping then).
    fn hand_over(&self, cause: &str) -> bool {
        if let Some(why) = self.refusal {
            let msg = format!("{cause} received; not handing over: {why}");
            log::event(Level::Warn, "handover_refused", &[("cause", &cause)], &msg);
            return false;
        }
        let next = self.generation + 1;
        let program = self.program.as_deref().unwrap_or(std::path::Path::new("?"));
        let msg = format!(
            "{cause}: starting {} (generation {next}) to hand the socket to",
            program.display()
        );
        log::event(Level::Info, "handover", &[("cause", &cause)], &msg);
        if let Some(n) = &self.notifier {
            n.reloading();
        }
        match self.attempt() {
            Ok(pid) => {
                self.setup.keep_path.store(true, SeqCst);
                self.handed_to.store(pid, SeqCst);
                if let Some(n) = &self.notifier {
                    n.handed_over(pid, next);
                }
                let msg = format!(
                    "pid {pid} (generation {next}) serves on the socket now; \
                     this process stops accepting and finishes its requests"
                );
                log::event(Level::Info, "handed_over", &[("to", &pid)], &msg);
                self.stop_accepting_then_stop();
                true
            }
            Err(why) => {
                let msg = format!("hand-over failed: {why}; this process goes on serving");
                log::event(Level::Error, "handover_failed", &[("cause", &cause)], &msg);
                if let Some(n) = &self.notifier {
                    n.ready(&format!("serving; the last hand-over failed: {why}"));
                }
                false
            }
        }
    }

    /// Stops accepting, serves what was accepted a moment longer (see
    /// [`SETTLE`]), then stops the server, which drains as on SIGTERM.
    fn stop_accepting_then_stop(&self) {
        if let Some(stop_accepting) = self.stopper.get() {
            stop_accepting();
            // Cut short by a stop signal.
            let _ = spawn::poll_any([self.stop.as_fd()], Some(SETTLE));
        }
        self.stop.notify();
    }

    /// Starts the new process and waits until it serves; returns its id.
    fn attempt(&self) -> Result<u32, String> {
        let program = self
            .program
            .as_deref()
            .ok_or("the program's path is not known")?;
        let (ready_r, ready_w) =
            spawn::pipe().map_err(|e| format!("cannot make the readiness pipe: {e}"))?;
        let env = child_env(self.generation + 1);
        let fds = [
            (self.setup.socket.as_fd(), LISTEN_FD),
            (ready_w.as_fd(), READY_FD),
        ];
        let cmd = spawn::Command {
            program,
            args: &self.args,
            env: &env,
            pid_var: "LISTEN_PID",
            fds: &fds,
        };
        let pid =
            spawn::spawn(&cmd).map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        // The new process holds the only write end now: its end (or its
        // exit) reads as end of file.
        drop(ready_w);
        self.wait_ready(pid, File::from(ready_r)).map_err(|why| {
            self.stop_child(pid);
            format!("the new process (pid {pid}) {why}")
        })?;
        Ok(pid)
    }

    /// Waits until process `pid` says on `ready` that it serves, it ends,
    /// the timeout passes, or the server is stopped. SIGUSR2 meanwhile is
    /// refused.
    fn wait_ready(&self, pid: u32, mut ready: File) -> Result<(), String> {
        let deadline = Instant::now() + self.setup.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let t = self.setup.timeout;
                return Err(format!("did not say it was serving within {t:?}"));
            }
            let fds = [
                self.stop.as_fd(),
                self.usr2.as_fd(),
                self.recycle.as_fd(),
                ready.as_fd(),
            ];
            let [stop, signal, limit, readable] =
                spawn::poll_any(fds, Some(left)).map_err(|e| format!("waiting failed: {e}"))?;
            if stop {
                return Err("was stopped, as this server is shutting down".to_owned());
            }
            if signal {
                self.usr2.drain();
                let msg = format!(
                    "SIGUSR2 received; refused: the hand-over to pid {pid} is still under way"
                );
                log::event(
                    Level::Warn,
                    "handover_refused",
                    &[("cause", &"SIGUSR2")],
                    &msg,
                );
            }
            if limit {
                self.recycle.drain();
            }
            if readable && said_ready(pid, &mut ready)? {
                return Ok(());
            }
        }
    }

    /// Stops a new process that failed, if it still runs: SIGTERM, then
    /// SIGKILL past the grace period; and reaps it.
    fn stop_child(&self, pid: u32) {
        if !matches!(spawn::wait(pid, None), Ok(None)) {
            return; // reaped already
        }
        let _ = sys::terminate(pid);
        let patience = self.setup.grace + Duration::from_secs(1);
        if matches!(spawn::wait(pid, Some(patience)), Ok(None)) {
            let _ = spawn::kill(pid);
            let _ = spawn::wait(pid, Some(Duration::from_secs(5)));
        }
    }
}

/// Reads what process `pid` wrote on its readiness pipe: `Ok(true)` once
/// it said it serves; an error naming how it ended if it closed the pipe
/// (exited) first.
fn said_ready(pid: u32, ready: &mut File) -> Result<bool, String> {
    let mut buf = [0u8; 64];
    match ready.read(&mut buf) {
        Ok(0) => Err(match spawn::wait(pid, Some(Duration::from_secs(2))) {
            Ok(Some(end)) => format!("{end} before it was serving"),
            _ => "closed its readiness pipe before it was serving".to_owned(),
        }),
        Ok(n) => Ok(buf[..n].starts_with(&READY[..READY.len() - 1])),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
        Err(e) => Err(format!("cannot be heard: {e}")),
    }
}

/// The new process's environment: this one's, with the socket's and the
/// hand-over's variables set for it (`LISTEN_PID` is added by the spawn).
fn child_env(generation: u64) -> Vec<OsString> {
    let ours = [
        "LISTEN_PID",
        "LISTEN_FDS",
        "LISTEN_FDNAMES",
        GENERATION_VAR,
        READY_FD_VAR,
    ];
    let mut env: Vec<OsString> = std::env::vars_os()
        .filter(|(k, _)| !ours.iter().any(|o| k == o))
        .map(|(mut k, v)| {
            k.push("=");
            k.push(v);
            k
        })
        .collect();
    env.push("LISTEN_FDS=1".into());
    env.push("LISTEN_FDNAMES=fcgi".into());
    env.push(format!("{GENERATION_VAR}={generation}").into());
    env.push(format!("{READY_FD_VAR}={READY_FD}").into());
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_child_environment_carries_the_generation_and_the_socket() {
        let env = child_env(7);
        let has = |e: &str| env.iter().any(|v| v == e);
        assert!(has("LISTEN_FDS=1"));
        assert!(has("FCGI_GENERATION=7"));
        assert!(has("FCGI_HANDOVER_FD=4"));
        let count = |p: &str| {
            env.iter()
                .filter(|v| v.to_string_lossy().starts_with(p))
                .count()
        };
        assert_eq!(count("LISTEN_FDS="), 1);
        assert_eq!(
            count("LISTEN_PID="),
            0,
            "added by the spawn, with the child's id"
        );
        assert_eq!(count("FCGI_GENERATION="), 1);
    }

    #[test]
    fn only_sockets_of_our_own_or_systemd_are_handed_over() {
        assert!(Source::Bound.refusal().is_none());
        assert!(Source::Activated.refusal().is_none());
        assert!(
            Source::Inherited
                .refusal()
                .unwrap()
                .contains("descriptor 0")
        );
        assert!(Source::Given.refusal().is_some());
    }
}
