//! The status socket (`Server::status_listen`): a second listening socket,
//! unix or TCP, served by a thread of its own, so that the status page
//! and the ping path answer within milliseconds even while every worker
//! is busy, which is when an operator needs them.
//!
//! It serves one connection at a time, through the same connection code
//! as the workers (waiting in `poll` while a peer has sent nothing more): a request whose path is the ping path (`/ping` unless
//! `Server::ping_path` says otherwise) gets `pong`, any other the status
//! page. A peer gets short timeouts, so that one that stalls holds the
//! thread for a second at most.

use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::connection::{Buffers, Config, NoControl, Resume};
use crate::handler::request::Request;
use crate::handler::response::Response;
use crate::observe::metrics::{Page, Registry};
use crate::runtime::listener::Listener;
use crate::runtime::serve::{Outcome, serve};
use crate::status;
use crate::sys::{self, EventFd, Socket};

/// How long a status peer may keep the thread waiting, at each step.
const PATIENCE: Duration = Duration::from_secs(1);

/// Starts the status thread on `listener`; it ends when `stop` fires.
pub(crate) fn start(
    listener: Listener,
    registry: Arc<Registry>,
    ping: String,
    stop: Arc<EventFd>,
) -> io::Result<JoinHandle<()>> {
    sys::set_nonblocking(listener.as_fd())?;
    thread::Builder::new()
        .name("fcgi-status".into())
        .spawn(move || {
            let handler = move |req: &mut Request<'_>, res: &mut Response<'_>| {
                let page = page_for(req, &ping);
                status::answer(page, req, res, || registry.snapshot(None))
            };
            let mut bufs = Buffers::new();
            let cfg = config();
            while wait(listener.as_fd(), &stop) {
                if let Ok(fd) = sys::accept(listener.as_fd()) {
                    let sock = Socket::new(fd, Some(PATIENCE), Some(PATIENCE));
                    serve_one(sock, &mut bufs, &cfg, &handler, &stop);
                }
            }
        })
}

/// Limits for status peers: small requests, quickly.
fn config() -> Config {
    Config {
        max_params_bytes: 64 * 1024,
        max_params: 200,
        max_records: 200,
        read_timeout: Some(PATIENCE),
        ..Config::default()
    }
}

/// Waits until `fd` is readable; false once `stop` fired.
fn wait(fd: std::os::fd::BorrowedFd<'_>, stop: &EventFd) -> bool {
    loop {
        match sys::poll_readable(&[fd, stop.as_fd()], None) {
            Ok([_, true]) => return false,
            Ok([true, _]) => return true,
            _ => {}
        }
    }
}

/// The ping path answers `pong`; any other path, the status page.
fn page_for(req: &Request<'_>, ping: &str) -> Page {
    let (script, info) = (req.script_name(), req.path_info());
    let is_ping =
        ping.len() == script.len() + info.len() && ping.starts_with(script) && ping.ends_with(info);
    if is_ping { Page::Ping } else { Page::Status }
}

/// Serves one status connection until it closes, stalls or idles.
fn serve_one(
    sock: Socket,
    bufs: &mut Buffers,
    cfg: &Config,
    handler: &crate::runtime::serve::Handler,
    stop: &EventFd,
) {
    // Between reads the thread waits in poll (below), not in a read.
    let mut resume = Resume::NEW;
    while let Ok(Outcome::Park(r)) = serve(&sock, bufs, cfg, handler, &NoControl, resume, None) {
        let ready = sys::poll_readable(&[sock.as_fd(), stop.as_fd()], Some(PATIENCE));
        if !matches!(ready, Ok([true, false])) {
            break;
        }
        resume = r;
    }
    let _ = sock.shutdown_write();
    bufs.trim();
}
