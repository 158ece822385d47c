//! The `echo` application: reflects what it was sent, as the query string
//! asks (see `app.rs` for the keys).
//!
//! Usage: `echo [ADDRESS]`. With no argument it serves the listening
//! socket inherited on file descriptor 0 (lighttpd `bin-path`, Apache
//! mod_fcgid, spawn-fcgi), or answers one request as CGI when fd 0 is not
//! a socket; with one it binds it: a path is a unix socket, `HOST:PORT` is
//! TCP. `FCGI_WORKERS` sets the number of workers. It plays the three
//! FastCGI roles: responder, authorizer and filter.

mod app;
#[path = "../common/mod.rs"]
mod common;

fn main() {
    common::serve_roles("echo", app::ROLES, app::handle);
}
