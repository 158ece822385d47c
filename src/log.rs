//! The server's own messages: one line each, prefixed `fcgi-server:`, on
//! the process's standard error, where a spawning web server (lighttpd,
//! mod_fcgid) or the init system records it.

use std::io::{self, Write};

/// Writes one line to standard error.
pub(crate) fn log(msg: &str) {
    let _ = writeln!(io::stderr().lock(), "fcgi-server: {msg}");
}
