//! The command line the example applications share (see
//! `examples/README.md`): no argument serves the listening socket on
//! fd 0 (or answers one request as CGI); one argument is an address to
//! bind, a unix socket path or `HOST:PORT`. `FCGI_WORKERS` sizes the pool.

use std::io;

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
    let mut server = Server::new(handler).roles(roles);
    if let Some(addr) = std::env::args().nth(1) {
        server = server.bind(addr);
    }
    if let Some(n) = std::env::var("FCGI_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        server = server.workers(n);
    }
    if let Err(e) = server.run() {
        eprintln!("{name}: {e}");
        std::process::exit(1);
    }
}
