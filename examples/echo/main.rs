//! The `echo` application: reflects what it was sent, as the query string
//! asks (see `app.rs` for the keys).
//!
//! Usage: `echo [ADDRESS]`. With no argument it serves the listening
//! socket inherited on file descriptor 0 (lighttpd `bin-path`, Apache
//! mod_fcgid, spawn-fcgi); with one it binds it: a path is a unix socket,
//! `HOST:PORT` is TCP. `FCGI_WORKERS` sets the number of workers.

mod app;

fn main() {
    let mut server = fcgi_server::Server::new(app::handle);
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
        eprintln!("echo: {e}");
        std::process::exit(1);
    }
}
