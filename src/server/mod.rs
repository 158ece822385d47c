//! The builder, `run()` and shutdown.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use std::time::Duration;

use crate::connection::{Buffers, Config, NoControl, Resume, Roles};
use crate::handler::request::Request;
use crate::handler::response::Response;
use crate::observe::log::{self, Level};
use crate::observe::metrics::{MetricsHandle, Registry};
use crate::observe::panic_report;
use crate::operate::handover::{self, Handover, Origin, Source};
use crate::operate::notify::Notifier;
use crate::operate::{Opened, Ops};
use crate::protocol::Role;
use crate::runtime::cgi::{self, Cgi};
use crate::runtime::listener::{self, AllowList, Listener};
use crate::runtime::pool::{self, Settings};
use crate::runtime::serve::serve;
use crate::sys::{self, EventFd};

/// A FastCGI application server: a handler, and how to serve it.
///
/// Build it with [`Server::new`], adjust it with the setters, and call
/// [`run`](Server::run), which blocks until the server shuts down.
///
/// # Examples
///
/// ```no_run
/// use std::io::Write;
///
/// fn main() -> std::io::Result<()> {
///     fcgi_server::Server::new(|req, res| {
///         res.header("Content-Type", "text/plain");
///         write!(res, "Hello from {}\n", req.script_name())
///     })
///     .bind("/run/hello/fcgi.sock")
///     .workers(8)
///     .run()
/// }
/// ```
pub struct Server<H> {
    handler: H,
    cfg: Config,
    bind: Option<String>,
    listener: Option<OwnedFd>,
    socket_mode: u32,
    write_timeout: Option<Duration>,
    idle_timeout: Duration,
    grace: Duration,
    handle_signals: bool,
    max_requests: Option<u64>,
    handover_timeout: Duration,
    shutdown: ShutdownHandle,
    ops: Ops,
    metrics: Arc<Registry>,
}

/// The number of workers unless [`Server::workers`] says otherwise: eight
/// per CPU the process may run on (its CPU affinity; a cgroup's CPU quota
/// is not counted), at least 8 and at most 128. Workers start only as load
/// needs them.
pub fn default_workers() -> usize {
    crate::connection::default_workers()
}

impl<H> Server<H>
where
    H: Fn(&mut Request<'_>, &mut Response<'_>) -> io::Result<()> + Send + Sync + 'static,
{
    /// A server that calls `handler` for every request.
    ///
    /// The handler runs on one of the worker threads; an error it returns,
    /// or a panic, becomes a 500 response (if no output was sent yet) and
    /// a message on the request's error stream, and costs nothing more.
    pub fn new(handler: H) -> Server<H> {
        Server {
            handler,
            cfg: Config::default(),
            bind: None,
            listener: None,
            socket_mode: 0o660,
            write_timeout: Some(Duration::from_secs(60)),
            idle_timeout: Duration::from_secs(120),
            grace: Duration::from_secs(3),
            handle_signals: true,
            max_requests: None,
            handover_timeout: Duration::from_secs(30),
            shutdown: ShutdownHandle::new(),
            ops: Ops::default(),
            metrics: Registry::new(),
        }
    }

    /// Listens on `addr` instead of the socket inherited on fd 0: a unix
    /// socket path (`/run/app/fcgi.sock`, also `unix:/run/...`) or a TCP
    /// `HOST:PORT` (`127.0.0.1:9000`, `[::1]:9000`).
    ///
    /// A stale unix socket file left by an earlier run is replaced; a
    /// socket that another process still listens on is not (`run` fails
    /// with `AddrInUse`), nor is a file that is not a socket. The socket
    /// file is removed when `run` returns.
    pub fn bind(mut self, addr: impl Into<String>) -> Self {
        self.bind = Some(addr.into());
        self
    }

    /// Serves on a listening socket the caller already has (a
    /// `std::os::unix::net::UnixListener` or `std::net::TcpListener`, for
    /// instance), instead of binding or using fd 0.
    ///
    /// Whichever socket the server listens on, it makes it non-blocking:
    /// the workers accept from it themselves and must not wait in
    /// `accept` when another worker (or another process sharing the
    /// socket) took the connection.
    pub fn listener(mut self, listener: impl Into<OwnedFd>) -> Self {
        self.listener = Some(listener.into());
        self
    }

    /// The file mode of a unix socket made by [`bind`](Server::bind).
    /// Default `0o660`: the owner and its group may connect, nobody else.
    /// Put the web server's user in that group, or ask for `0o666`.
    pub fn socket_mode(mut self, mode: u32) -> Self {
        self.socket_mode = mode;
        self
    }

    /// How many worker threads may serve requests at once (at least 1).
    /// See [`default_workers`] for the default. Workers start as load needs
    /// them, up to this number, and then stay; an idle server holds one.
    /// Idle keep-alive connections do not occupy a worker.
    pub fn workers(mut self, n: usize) -> Self {
        self.cfg.workers = Some(n.max(1));
        self
    }

    /// The most bytes of params (the CGI environment) one request may
    /// send, and so the longest name or value. Default 1 MiB. A request
    /// over the limit is answered with status 431, the reason on its
    /// error stream, and its connection closed.
    pub fn max_params_bytes(mut self, n: usize) -> Self {
        self.cfg.max_params_bytes = n.clamp(1, u32::MAX as usize);
        self
    }

    /// Which roles the application plays; the handler learns a request's
    /// from [`Request::role`]. Default: responder only.
    ///
    /// Others are refused with `FCGI_UNKNOWN_ROLE`; a refused authorizer
    /// request also gets a 403 response, so that no web server reads the
    /// refusal as a grant (lighttpd ignores the protocol status).
    ///
    /// ```no_run
    /// use fcgi_server::{Role, Server};
    /// # let handler = |_: &mut fcgi_server::Request<'_>, _: &mut fcgi_server::Response<'_>| Ok(());
    /// Server::new(handler).roles(&[Role::Responder, Role::Authorizer]);
    /// ```
    pub fn roles(mut self, roles: &[Role]) -> Self {
        self.cfg.roles = Roles::of(roles);
        self
    }

    /// Puts the handler's error text into the body of 500 responses, not
    /// only on the error stream. For development; default off.
    pub fn debug(mut self, on: bool) -> Self {
        self.cfg.debug = on;
        self
    }

    /// How long a request may take to arrive, from its first byte to its
    /// last param, and how long one read of its body may wait, before the
    /// connection is given up. Default 60 s; `None` waits forever.
    ///
    /// A peer that stalls before its params are complete does not hold a
    /// worker meanwhile: its connection waits with the idle ones, holding
    /// only the bytes it sent. A stalled body is read by the handler, so
    /// it holds that worker for up to this long.
    pub fn read_timeout(mut self, d: Option<Duration>) -> Self {
        self.cfg.read_timeout = d;
        self
    }

    /// The most params (CGI variables) one request may send. Default
    /// 1000. A request over the limit is answered with status 431, the
    /// reason on its error stream, and its connection closed.
    pub fn max_params(mut self, n: usize) -> Self {
        self.cfg.max_params = n;
        self
    }

    /// The most records a connection may send from the end of one request
    /// to the moment the next one's params are complete (management
    /// records and records for other request ids count). Default 10,000.
    /// Over the limit, the request is answered with status 400 and the
    /// connection closed: a peer cannot keep a worker busy without ever
    /// finishing a request.
    pub fn max_records(mut self, n: u32) -> Self {
        self.cfg.max_records = n.max(2);
        self
    }

    /// How long a write to the web server may wait before the connection
    /// is given up. Default 60 s; `None` waits forever.
    pub fn write_timeout(mut self, d: Option<Duration>) -> Self {
        self.write_timeout = d;
        self
    }

    /// How long a kept-open connection may sit idle before it is closed.
    /// Default 120 s.
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }

    /// How long shutdown waits for requests in flight. Default 3 s, below
    /// the few seconds that spawning web servers wait before SIGKILL.
    pub fn grace_period(mut self, d: Duration) -> Self {
        self.grace = d;
        self
    }

    /// Whether SIGTERM, SIGINT, SIGHUP and SIGUSR1 shut the server down
    /// gracefully, and SIGUSR2 hands the listening socket over to a fresh
    /// start of the program (see [`handover_timeout`](Server::handover_timeout);
    /// default: yes). Switch it off in a program that handles signals
    /// itself; it can stop the server with a [`ShutdownHandle`].
    pub fn handle_signals(mut self, on: bool) -> Self {
        self.handle_signals = on;
        self
    }

    /// Replaces the process after `n` requests: the counterpart of
    /// `FcgidMaxRequestsPerProcess` and PHP-FPM's `pm.max_requests`. No
    /// request is cut off; kept-open connections are closed after their
    /// current request. Default: no limit.
    ///
    /// Where the server bound its socket ([`bind`](Server::bind)) or got
    /// it from systemd, it hands the socket over to a fresh start of the
    /// program, as on SIGUSR2, so that someone accepts at every moment
    /// (should that fail, it goes on serving and tries again after `n`
    /// more). Otherwise (the socket inherited on fd 0 from lighttpd or
    /// mod_fcgid, or given by the program) it shuts down, and the process
    /// that spawned it starts a fresh one.
    pub fn max_requests(mut self, n: u64) -> Self {
        self.max_requests = Some(n.max(1));
        self
    }

    /// How long a process started by a hand-over (SIGUSR2, or recycling
    /// after [`max_requests`](Server::max_requests)) may take to say that
    /// it serves. Default 30 s. Past it, or if the new process exits
    /// first, it is stopped and this one goes on serving, saying why on
    /// standard error.
    ///
    /// The hand-over starts the program again from the path it was
    /// started from (a replaced binary is the one that runs), with the
    /// same arguments and environment, and passes it the listening socket
    /// as systemd does (`LISTEN_FDS`, `LISTEN_PID`), which it uses instead
    /// of binding. Once the new process serves, this one stops accepting
    /// and drains as on SIGTERM; the socket never closes in between. The
    /// socket inherited on fd 0 from a web server (lighttpd, mod_fcgid,
    /// spawn-fcgi) is not handed over: SIGUSR2 is refused with a log line
    /// there. The [upgrade guide](crate::guide::upgrade) shows it under
    /// systemd.
    pub fn handover_timeout(mut self, d: Duration) -> Self {
        self.handover_timeout = d;
        self
    }

    /// Serves up to `n` requests at once on one connection, each on a
    /// worker of its own, their records interleaved on the way in and out
    /// (FastCGI multiplexing). `FCGI_GET_VALUES` then answers
    /// `FCGI_MPXS_CONNS=1`. Off by default (0 or 1: one request at a time,
    /// a second one refused with `FCGI_CANT_MPX_CONN`): the web servers in
    /// common use (nginx, Apache, lighttpd, Caddy, h2o) send one request
    /// at a time on a connection.
    ///
    /// A request on a multiplexed connection keeps every limit of a
    /// request (params size and count, records, read timeout); more than
    /// `n` at once are refused with `FCGI_OVERLOADED`; a request's body
    /// waits in memory (up to 256 KiB) until its handler reads it. A
    /// handler that fails after output began closes the whole connection,
    /// as on any connection (the web server can tell a cut-off response
    /// only that way).
    pub fn multiplex(mut self, n: usize) -> Self {
        self.cfg.multiplex = n;
        self
    }

    /// The application serves the web server's whole site (it is mounted
    /// at `/`): `SCRIPT_NAME` is reported empty and the request path as
    /// `PATH_INFO`, whatever the web server sent. lighttpd at a root mount
    /// puts the path in `SCRIPT_NAME` (unless `fix-root-scriptname` is
    /// enabled there); this is the equivalent of werkzeug's
    /// `LighttpdCGIRootFix`. Default off.
    pub fn mounted_at_root(mut self, on: bool) -> Self {
        self.cfg.root_mount = on;
        self
    }

    /// A handle that shuts the server down from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Answers requests whose path (`SCRIPT_NAME` + `PATH_INFO`) is `path`
    /// with the status page, without calling the handler: the server's
    /// figures as plain text, `?json`, or `?openmetrics` (also chosen by
    /// `Accept: application/openmetrics-text`); `&full` adds one entry per
    /// worker. Status requests are not counted in the figures. Default:
    /// none.
    ///
    /// The page shows the URIs of requests in flight: let the web server
    /// pass it only to those who may see them (see "Operating it" in the
    /// README for nginx).
    ///
    /// ```no_run
    /// # use std::io::Write;
    /// fcgi_server::Server::new(|_req, res| res.write_all(b"hi\n"))
    ///     .status_path("/fcgi-status")
    ///     .ping_path("/fcgi-ping")
    ///     .run()
    /// # .unwrap();
    /// ```
    pub fn status_path(mut self, path: impl Into<String>) -> Self {
        self.ops.status_path = Some(path.into());
        self
    }

    /// Answers requests whose path is `path` with status 200 and `pong`,
    /// without calling the handler (and without counting them): a health
    /// check of the application itself. Default: none.
    pub fn ping_path(mut self, path: impl Into<String>) -> Self {
        self.ops.ping_path = Some(path.into());
        self
    }

    /// Serves the status page and the ping path on a second socket as
    /// well, `addr` in the syntax of [`bind`](Server::bind), from a thread
    /// of its own: they answer there within milliseconds even while every
    /// worker is busy. On it, the ping path (`/ping` unless
    /// [`ping_path`](Server::ping_path) says otherwise) answers `pong` and
    /// any other path the status page. A unix socket gets the mode of
    /// [`socket_mode`](Server::socket_mode). Default: none.
    pub fn status_listen(mut self, addr: impl Into<String>) -> Self {
        self.ops.status_listen = Some(addr.into());
        self
    }

    /// Logs a request still running after `d`, once, while it runs: its
    /// method, URI, elapsed time, worker, and where its thread waits (the
    /// kernel's wait channel and system call, from `/proc`). Like PHP-FPM's
    /// `request_slowlog_timeout`. Default: off.
    pub fn slow_request_log(mut self, d: Duration) -> Self {
        self.ops.slow = Some(d);
        self
    }

    /// Cuts off a request still running after `d`: its connection is shut
    /// down, so that the web server answers its client at once (nginx with
    /// 502) instead of waiting for its own timeout; the handler sees the
    /// request aborted ([`Request::is_aborted`], and its reads and writes
    /// fail). Logged and counted. The worker is free again once the
    /// handler returns. Like PHP-FPM's `request_terminate_timeout`.
    /// Default: off.
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.ops.timeout = Some(d);
        self
    }

    /// Appends one line per request to the file at `path` (created with
    /// mode 0640 if missing): time, remote address, method, URI, status,
    /// bytes in and out, duration, outcome. Each worker writes its lines
    /// itself, with no lock. Default: none.
    pub fn access_log(mut self, path: impl Into<PathBuf>) -> Self {
        self.ops.access_log = Some(path.into());
        self
    }

    /// A handle that reads the server's figures (those of the status page)
    /// from any thread, for programs that export them elsewhere. Taken
    /// before [`run`](Server::run), it also gives each worker's request in
    /// flight (as the status page's `&full` does).
    ///
    /// ```no_run
    /// # use std::io::Write;
    /// let server = fcgi_server::Server::new(|_req, res| res.write_all(b"hi\n"));
    /// let metrics = server.metrics_handle();
    /// std::thread::spawn(move || server.run());
    /// // ...
    /// let m = metrics.snapshot();
    /// println!("{} requests, {} workers busy", m.requests, m.workers_busy);
    /// ```
    pub fn metrics_handle(&self) -> MetricsHandle {
        self.metrics.handle()
    }

    /// The listening socket and where it came from, or `None` for CGI
    /// mode. A process started by a hand-over takes the socket passed to
    /// it rather than bind.
    fn open_listener(&mut self, origin: &Origin) -> io::Result<Option<(Listener, Source)>> {
        if cgi::forced() {
            return Ok(None);
        }
        if let Some(fd) = self.listener.take() {
            return Ok(Some((Listener::from_fd(fd), Source::Given)));
        }
        let bind = self.bind.as_deref();
        if origin.handed_over() {
            if let Some(l) = listener::systemd(bind)? {
                let source = if bind.is_some() {
                    Source::Bound
                } else {
                    Source::Activated
                };
                return Ok(Some((l, source)));
            }
        }
        if let Some(addr) = bind {
            return listener::bind(addr, self.socket_mode).map(|l| Some((l, Source::Bound)));
        }
        if let Some(l) = listener::systemd(None)? {
            return Ok(Some((l, Source::Activated)));
        }
        Ok(listener::inherited()?.map(|l| (l, Source::Inherited)))
    }

    /// Answers the one request described by the environment and stdin.
    fn run_cgi(self) -> io::Result<()> {
        if sys::isatty(0) {
            log::info(
                "cgi",
                "standard input is a terminal, not a FastCGI socket: answering one \
                 request as CGI, from the environment (see \"Debugging\" in the README)",
            );
        }
        let _capture = panic_report::capture();
        let cgi = Cgi::from_env(io::stdin().lock());
        let mut bufs = Buffers::new();
        serve(
            &cgi,
            &mut bufs,
            &self.cfg,
            &self.handler,
            &NoControl,
            Resume::NEW,
            None,
        )?;
        Ok(())
    }

    /// Serves until shut down: by a signal (see
    /// [`handle_signals`](Server::handle_signals)), a [`ShutdownHandle`], or
    /// [`max_requests`](Server::max_requests).
    ///
    /// The listening socket is, in this order: the one given to
    /// [`listener`](Server::listener), the address given to
    /// [`bind`](Server::bind), a socket passed by systemd socket activation
    /// (`LISTEN_PID`, `LISTEN_FDS`; taking it removes those variables, so
    /// other threads of the program must not use the environment while
    /// `run` starts), or the listening socket inherited on file
    /// descriptor 0. When there is none (fd 0 is a terminal, a pipe or
    /// a file), or `FCGI_FORCE_CGI` starts with `Y`, the server answers one
    /// request as CGI, from the environment and stdin to stdout, and
    /// returns. Errors in setting up name what failed.
    ///
    /// TCP connections from addresses not listed in
    /// `FCGI_WEB_SERVER_ADDRS` (when set) are closed before anything is read.
    ///
    /// On shutdown the server stops accepting, closes idle connections,
    /// lets requests in flight finish within the grace period, and returns.
    /// The same follows a hand-over to a new process (SIGUSR2, or
    /// [`max_requests`](Server::max_requests)), once that one serves; see
    /// [`handover_timeout`](Server::handover_timeout). A process started by
    /// a hand-over serves the socket passed to it, whatever it was told
    /// to bind; it reads and removes `FCGI_GENERATION` and
    /// `FCGI_HANDOVER_FD` as it starts.
    ///
    /// With `NOTIFY_SOCKET` set (systemd's `Type=notify`), the server
    /// tells the service manager `READY=1` once it serves, `RELOADING=1`
    /// and then `MAINPID=` (the new process) around a hand-over, and
    /// `STOPPING=1` when it shuts down.
    pub fn run(mut self) -> io::Result<()> {
        sys::ignore_sigpipe();
        panic_report::install();
        let origin = Origin::take();
        let Some((listener, source)) = self.open_listener(&origin)? else {
            return self.run_cgi();
        };
        let allow = AllowList::from_env()?;
        let opened = self.ops.open(self.socket_mode)?;
        let stop = self.shutdown.arm()?;
        let signals = self.handle_signals;
        if signals {
            sys::catch_stop_signals(&stop)?;
            // A signal handler may write to it at any time from now on.
            std::mem::forget(Arc::clone(&stop));
        }
        let served = self.serve_pool(listener, (allow, opened), &stop, (origin, source));
        if signals {
            sys::restore_stop_signals();
            sys::spawn::restore_handover_signal();
        }
        served
    }

    /// Starts the hand-over's thread (and catches SIGUSR2) for `listener`.
    fn start_handover(
        &self,
        (origin, source): (&Origin, Source),
        listener: &Listener,
        notifier: Option<Arc<Notifier>>,
        stop: &Arc<EventFd>,
    ) -> io::Result<Handover> {
        let socket = sys::dup(listener.as_fd())
            .map_err(|e| io::Error::new(e.kind(), format!("the listening socket: {e}")))?;
        let setup = handover::Setup {
            source,
            socket,
            keep_path: listener.handed_over_flag(),
            timeout: self.handover_timeout,
            grace: self.grace,
            signal: self.handle_signals,
            recycle: self.max_requests.is_some(),
        };
        Handover::start(origin, setup, notifier, stop)
    }

    /// Runs the pool and the operating threads on `listener` until `stop`
    /// fires, then shuts them down.
    fn serve_pool(
        self,
        listener: Listener,
        (allow, opened): (Option<AllowList>, Opened),
        stop: &Arc<EventFd>,
        (mut origin, source): (Origin, Source),
    ) -> io::Result<()> {
        let (workers, at) = (self.cfg.workers(), listener::describe(listener.as_fd()));
        self.metrics.set_generation(origin.generation);
        let started = self
            .ops
            .start(opened, &self.metrics, (workers, &listener), stop)
            .inspect_err(|_| stop.notify())?;
        let notifier = Notifier::from_env().map(Arc::new);
        let handover = self
            .start_handover((&origin, source), &listener, notifier.clone(), stop)
            .inspect_err(|_| stop.notify())?;
        let settings = Settings {
            cfg: self.cfg,
            idle_timeout: self.idle_timeout,
            write_timeout: self.write_timeout,
            max_requests: self.max_requests,
            recycle: handover.recycle_event(),
            allow,
            metrics: Arc::clone(&self.metrics),
        };
        let handler = Box::new(self.handler);
        let running = match pool::start(settings, handler, listener, Arc::clone(stop)) {
            Ok(running) => running,
            Err(e) => {
                stop.notify();
                handover.join();
                started.join();
                return Err(e);
            }
        };
        handover.set_accept_stopper(running.accept_stopper());
        self.ops.log_start(&at, workers, origin.generation);
        if !origin.announce() {
            notifier
                .as_ref()
                .inspect(|n| n.ready(&format!("serving on {at}")));
        }
        running.supervise(stop);
        let handed_to = handover.handed_to();
        handover.join();
        if handed_to.is_none() {
            notifier.as_ref().inspect(|n| n.stopping());
        }
        log_shutdown(&self.shutdown, self.max_requests, handed_to);
        started.release_listener();
        running.shut_down(self.grace);
        started.join();
        log::info("stopped", "stopped");
        Ok(())
    }
}

impl<H> fmt::Debug for Server<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("bind", &self.bind)
            .field("workers", &self.cfg.workers())
            .field("roles", &self.cfg.roles)
            .field("read_timeout", &self.cfg.read_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("grace_period", &self.grace)
            .field("max_requests", &self.max_requests)
            .field("handover_timeout", &self.handover_timeout)
            .field("ops", &self.ops)
            .finish_non_exhaustive()
    }
}

/// Logs why the server is shutting down: a hand-over, a signal, the
/// shutdown handle, or `max_requests`.
fn log_shutdown(handle: &ShutdownHandle, max_requests: Option<u64>, handed_to: Option<u32>) {
    let stop_signal = sys::stop_signal().filter(|_| handed_to.is_none());
    let (cause, msg) = match stop_signal {
        None if handed_to.is_some() => (
            "handover",
            format!(
                "handed over to pid {}; finishing requests in flight",
                handed_to.unwrap_or_default()
            ),
        ),
        Some(sig) => {
            let name = sys::signal_name(sig);
            (
                name,
                format!("{name} received; finishing requests in flight"),
            )
        }
        None if handle.inner.requested.load(Ordering::SeqCst) => (
            "shutdown_handle",
            "shutdown requested by the program; finishing requests in flight".to_owned(),
        ),
        None => (
            "max_requests",
            format!(
                "served {} requests (max_requests); finishing requests in flight",
                max_requests.unwrap_or_default()
            ),
        ),
    };
    log::event(Level::Info, "shutdown", &[("cause", &cause)], &msg);
}

/// Shuts a running [`Server`] down from any thread; see
/// [`Server::shutdown_handle`].
///
/// # Examples
///
/// ```no_run
/// use std::io::Write;
///
/// let server = fcgi_server::Server::new(|_req, res| res.write_all(b"hi\n"))
///     .bind("127.0.0.1:9000");
/// let handle = server.shutdown_handle();
/// let running = std::thread::spawn(move || server.run());
/// // ... later:
/// handle.shutdown();
/// running.join().unwrap().unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    inner: Arc<ShutdownInner>,
}

#[derive(Debug)]
struct ShutdownInner {
    requested: AtomicBool,
    event: Mutex<Option<Arc<EventFd>>>,
}

impl ShutdownHandle {
    fn new() -> ShutdownHandle {
        ShutdownHandle {
            inner: Arc::new(ShutdownInner {
                requested: AtomicBool::new(false),
                event: Mutex::new(None),
            }),
        }
    }

    /// Stops accepting, closes idle connections, lets requests in flight
    /// finish within the grace period; then `run` returns. Calling it
    /// before `run` makes `run` return at once; calling it again does nothing.
    pub fn shutdown(&self) {
        self.inner.requested.store(true, Ordering::SeqCst);
        if let Some(ev) = &*self.inner.event.lock().unwrap_or_else(|e| e.into_inner()) {
            ev.notify();
        }
    }

    /// The eventfd that `run` waits on, made now.
    fn arm(&self) -> io::Result<Arc<EventFd>> {
        let ev = Arc::new(EventFd::new()?);
        *self.inner.event.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&ev));
        if self.inner.requested.load(Ordering::SeqCst) {
            ev.notify();
        }
        Ok(ev)
    }
}
