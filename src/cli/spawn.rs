//! `fcgi request --spawn APP`: starts the application as lighttpd's
//! `bin-path` and Apache mod_fcgid do (a fresh unix listening socket on
//! its fd 0, working directory `/`, an environment of `PATH` and the
//! `--env` variables only), asks it, stops it with SIGTERM, and shows how
//! it ended and what it wrote on its own stdout and stderr.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use super::exchange::{self, Plan};
use super::exit::{self, Exit, Failure};
use super::flags::Args;
use crate::client::Client;
use crate::sys;

/// `PATH` for the application when `fcgi` itself has none.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// How long the application has to exit after SIGTERM before it is killed.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// How long an application whose connection closed early has to exit on
/// its own, before it is sent SIGTERM.
const SETTLE: Duration = Duration::from_secs(1);

/// A private directory for the socket, removed on drop.
struct SocketDir(PathBuf);

impl SocketDir {
    fn new() -> Result<SocketDir, Failure> {
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("fcgi-spawn-{}-{stamp}", std::process::id()));
        std::fs::create_dir(&dir)
            .and_then(|()| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            })
            .map_err(|e| local(format!("cannot make {}: {e}", dir.display())))?;
        Ok(SocketDir(dir))
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn local(sentence: String) -> Failure {
    Failure::new(Exit::Input, sentence)
}

/// The application while it runs, and the threads that collect its output.
struct Started {
    child: Child,
    stdout: JoinHandle<Vec<u8>>,
    stderr: JoinHandle<Vec<u8>>,
}

/// Starts `app`, sends the plan's requests, stops `app` and tells how it
/// ended. Returns the exit status the request earned.
pub(crate) fn run(app: &Path, args: &Args, plan: &mut Plan) -> Result<Exit, Failure> {
    let dir = SocketDir::new()?;
    let sock = dir.0.join("fcgi.sock");
    let listener = sys::bind_unix(&sock, 0o600, 128)
        .map_err(|e| local(format!("cannot listen on {}: {e}", sock.display())))?;
    let wire = exchange::new_wire(plan.trace);
    // Connect before the application starts: the connection waits in the
    // backlog, and an application that dies before it accepts resets it,
    // as it would reset a web server's.
    let stream = UnixStream::connect(&sock)
        .map_err(|e| exit::connect_failed(&sock.display().to_string(), &e))?;
    let mut client = exchange::observed(Client::from_unix(stream), "the socket", &wire);
    let mut started = start(app, args, listener)?;
    let pid = started.child.id();
    exchange::lock(&wire).note(&format!("started {} as process {pid}", app.display()));
    let result = exchange::serve(&mut client, plan, &wire);
    drop(client);
    let settle = if result.is_err() {
        SETTLE
    } else {
        Duration::ZERO
    };
    let ended = stop(&mut started.child, settle);
    if let Err(f) = &result {
        exit::say(f);
    }
    report(app, &ended, started);
    Ok(result.map_or_else(|f| f.exit, |_| Exit::Complete))
}

/// Starts `app` with `listener` on its fd 0.
fn start(app: &Path, args: &Args, listener: OwnedFd) -> Result<Started, Failure> {
    let cwd = args.cwd.as_deref().unwrap_or(Path::new("/"));
    if !cwd.is_dir() {
        return Err(local(format!("--cwd {} is not a directory", cwd.display())));
    }
    let program = resolve(app)?;
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from(DEFAULT_PATH));
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", path)
        .envs(args.env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .stdin(Stdio::from(listener))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| local(format!("cannot start {}: {e}", app.display())))?;
    // Dropping the command closes this process's copy of the listening
    // socket: the application holds the only one.
    drop(cmd);
    let stdout = collect(child.stdout.take());
    let stderr = collect(child.stderr.take());
    Ok(Started {
        child,
        stdout,
        stderr,
    })
}

/// A path with a `/` made absolute (the working directory changes);
/// a bare name is looked up in `PATH`.
fn resolve(app: &Path) -> Result<PathBuf, Failure> {
    if app.components().count() == 1 && !app.is_absolute() {
        return Ok(app.to_path_buf());
    }
    std::fs::canonicalize(app).map_err(|e| local(format!("cannot start {}: {e}", app.display())))
}

/// Reads a pipe to its end in a thread of its own.
fn collect(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut all = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut all);
        }
        all
    })
}

/// How the application ended.
#[derive(Debug)]
enum Ended {
    /// By itself, before it was sent SIGTERM.
    ByItself(ExitStatus),
    AfterTerm(ExitStatus),
    /// Killed after it ignored SIGTERM for [`STOP_WAIT`].
    Killed,
    Unknown(io::Error),
}

/// Waits up to `settle` for the application to exit by itself, then
/// sends SIGTERM and waits again, then kills it.
fn stop(child: &mut Child, settle: Duration) -> Ended {
    match wait_up_to(child, settle) {
        Ok(Some(status)) => return Ended::ByItself(status),
        Ok(None) => {}
        Err(e) => return Ended::Unknown(e),
    }
    if let Err(e) = sys::terminate(child.id()) {
        return Ended::Unknown(e);
    }
    match wait_up_to(child, STOP_WAIT) {
        Ok(Some(status)) => Ended::AfterTerm(status),
        Ok(None) => {
            let _ = child.kill();
            let _ = child.wait();
            Ended::Killed
        }
        Err(e) => Ended::Unknown(e),
    }
}

fn wait_up_to(child: &mut Child, limit: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + limit;
    loop {
        let status = child.try_wait()?;
        if status.is_some() || Instant::now() >= deadline {
            return Ok(status);
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Prints how the application ended, and its own output, line by line.
fn report(app: &Path, ended: &Ended, started: Started) {
    let app = app.display();
    let how = match ended {
        Ended::ByItself(s) => format!("{app} {} by itself, before SIGTERM", describe(*s)),
        Ended::AfterTerm(s) => format!("{app} was sent SIGTERM and {}", describe(*s)),
        Ended::Killed => format!("{app} did not exit within {STOP_WAIT:?} of SIGTERM: killed"),
        Ended::Unknown(e) => format!("cannot tell how {app} ended: {e}"),
    };
    eprintln!("fcgi: {how}");
    let out = gather(started.stdout);
    let err = gather(started.stderr);
    if out.is_empty() && err.is_empty() {
        eprintln!("fcgi: {app} wrote nothing on its stdout and stderr");
    }
    print_lines("app (stdout): ", &out);
    print_lines("app (stderr): ", &err);
}

/// What a collecting thread read, or nothing when the pipe is still held
/// open (by a process the application started) after a while.
fn gather(reader: JoinHandle<Vec<u8>>) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !reader.is_finished() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    match reader.is_finished() {
        true => reader.join().unwrap_or_default(),
        false => Vec::new(),
    }
}

fn print_lines(mark: &str, text: &[u8]) {
    let mut err = io::stderr().lock();
    for line in text.split_inclusive(|&b| b == b'\n') {
        let _ = err.write_all(mark.as_bytes());
        let _ = err.write_all(line);
        if !line.ends_with(b"\n") {
            let _ = err.write_all(b"\n");
        }
    }
}

/// "exited with status 1", "was killed by signal 11 (SIGSEGV)".
fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}{}", signal_name(sig)),
        (None, None) => format!("ended ({status})"),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGTERM => " (SIGTERM)",
        libc::SIGKILL => " (SIGKILL)",
        libc::SIGINT => " (SIGINT)",
        libc::SIGSEGV => " (SIGSEGV)",
        libc::SIGABRT => " (SIGABRT)",
        libc::SIGBUS => " (SIGBUS)",
        _ => "",
    }
}
