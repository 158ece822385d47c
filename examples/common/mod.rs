//! The command line the example applications share (see
//! `examples/README.md`): no argument serves the listening socket on
//! fd 0 (or answers one request as CGI); one argument is an address to
//! bind, a unix socket path or `HOST:PORT`. `FCGI_WORKERS` sizes the pool;
//! the operating knobs (`FCGI_STATUS_PATH`, `FCGI_PING_PATH`,
//! `FCGI_STATUS_LISTEN`, `FCGI_SLOW_MS`, `FCGI_REQUEST_TIMEOUT_MS`,
//! `FCGI_ACCESS_LOG`, `FCGI_MULTIPLEX`, `FCGI_MAX_REQUESTS`,
//! `FCGI_HANDOVER_TIMEOUT_MS`) turn on the server setting of the same
//! meaning.
//!
//! Signals: SIGTERM drains and exits; SIGUSR2 hands the listening socket
//! to a fresh start of the same program path and drains (when the
//! application bound it, or got it from systemd; refused, with a log
//! line, for the socket inherited on fd 0). `FCGI_MAX_REQUESTS=N`
//! replaces the process the same way after N requests.

use std::io;
use std::time::Duration;

use fcgi_server::{Request, Response, Role, Server};

/// Serves `handler`, a responder, as the command line says; on a start-up
/// error, prints it (naming what failed) and exits with status 1.
#[allow(dead_code)] // an example calls this or `serve_roles`
pub(crate) fn serve<H>(name: &str, handler: H)
where
    H: Fn(&mut Request<'_>, &mut Response<'_>) -> io::Result<()> + Send + Sync + 'static,
{
    serve_roles(name, &[Role::Responder], handler);
}

/// Like [`serve`], for a handler that plays `roles`.
pub(crate) fn serve_roles<H>(name: &str, roles: &[Role], handler: H)
where
    H: Fn(&mut Request<'_>, &mut Response<'_>) -> io::Result<()> + Send + Sync + 'static,
{
    let mut server = operated(Server::new(handler).roles(roles));
    if let Some(addr) = std::env::args().nth(1) {
        server = server.bind(addr);
    }
    if let Some(n) = env("FCGI_WORKERS").and_then(|v| v.parse().ok()) {
        server = server.workers(n);
    }
    if let Some(n) = env("FCGI_MULTIPLEX").and_then(|v| v.parse().ok()) {
        server = server.multiplex(n);
    }
    if let Err(e) = server.run() {
        eprintln!("{name}: {e}");
        std::process::exit(1);
    }
}

/// The environment variable `name`, when set and not empty.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The environment variable `name` as milliseconds.
fn millis(name: &str) -> Option<Duration> {
    env(name)?.parse().ok().map(Duration::from_millis)
}

/// `server` with each operating knob that is set turned on.
fn operated<H>(mut server: Server<H>) -> Server<H>
where
    H: Fn(&mut Request<'_>, &mut Response<'_>) -> io::Result<()> + Send + Sync + 'static,
{
    if let Some(path) = env("FCGI_STATUS_PATH") {
        server = server.status_path(path);
    }
    if let Some(path) = env("FCGI_PING_PATH") {
        server = server.ping_path(path);
    }
    if let Some(addr) = env("FCGI_STATUS_LISTEN") {
        server = server.status_listen(addr);
    }
    if let Some(d) = millis("FCGI_SLOW_MS") {
        server = server.slow_request_log(d);
    }
    if let Some(d) = millis("FCGI_REQUEST_TIMEOUT_MS") {
        server = server.request_timeout(d);
    }
    if let Some(path) = env("FCGI_ACCESS_LOG") {
        server = server.access_log(path);
    }
    if let Some(n) = env("FCGI_MAX_REQUESTS").and_then(|v| v.parse().ok()) {
        server = server.max_requests(n);
    }
    if let Some(d) = millis("FCGI_HANDOVER_TIMEOUT_MS") {
        server = server.handover_timeout(d);
    }
    server
}
