//! The `hello` application: every request gets `Hello, World!`.
//!
//! Usage: `hello [ADDRESS]`. With no argument it serves the listening
//! socket inherited on file descriptor 0 (lighttpd `bin-path`, Apache
//! mod_fcgid, spawn-fcgi), or answers one request as CGI when fd 0 is not
//! a socket; with one it binds it: a path is a unix socket, `HOST:PORT` is
//! TCP. `FCGI_WORKERS` sets the number of workers.

use std::io::Write;

mod common;

fn main() {
    common::serve("hello", |_req, res| {
        res.header("Content-Type", "text/plain");
        res.write_all(b"Hello, World!\n")
    });
}
