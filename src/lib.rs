//! A FastCGI application server: a Rust web handler becomes one `.fcgi`
//! binary that nginx, lighttpd, Apache (mod_fcgid, mod_proxy_fcgi), h2o or
//! caddy talk to over FastCGI.
//!
//! The server is synchronous and thread-pooled: a fixed pool of worker
//! threads waits in one epoll set for the listening socket and for every
//! open connection; the worker woken for one accepts or reads, parses
//! records from its reusable buffers and calls a plain closure. Idle
//! keep-alive connections wait in epoll, not on a worker.
//!
//! # Example
//!
//! ```no_run
//! use std::io::Write;
//!
//! fn main() -> std::io::Result<()> {
//!     fcgi_server::Server::new(|req, res| {
//!         res.header("Content-Type", "text/plain");
//!         write!(res, "Hello from {}\n", req.script_name())
//!     })
//!     .run()
//! }
//! ```
//!
//! With no [`bind`](Server::bind), [`run`](Server::run) serves the
//! listening socket inherited on file descriptor 0: how lighttpd's
//! `bin-path`, Apache mod_fcgid and spawn-fcgi start the program.
//!
//! # Cargo features
//!
//! - `http`: the module `http`, handlers written with the `http` crate's types,
//!   `Fn(http::Request<Body>) -> http::Response<B>`.
//! - `tower`: the module `tower`, any tower service, such as an axum `Router`
//!   (brings `http`).
//!
//! Both are served by the same [`Server`], through its plain handler.
//! Without them, the crate depends on `crossbeam-channel` and `libc` only.
//!
//! # Operating it
//!
//! The server answers a status page and a ping path itself
//! ([`Server::status_path`], [`Server::ping_path`], also on a socket of
//! their own: [`Server::status_listen`]), logs slow requests and cuts off
//! those past a timeout ([`Server::slow_request_log`],
//! [`Server::request_timeout`]), writes an access log
//! ([`Server::access_log`]), and reports its events, a handler's panic
//! included, one line each on stderr. A program reads the same figures
//! from [`Server::metrics_handle`].
//!
//! Linux only: the server uses epoll and eventfd.
//!
//! # The guide
//!
//! The [`guide`] says how to write, deploy, operate and secure an
//! application: [the API in brief](guide::api), [axum and the `http`
//! crate's types](guide::adapters), [each front end](guide::deploy)
//! (nginx, lighttpd, Apache, Caddy, h2o, spawn-fcgi, systemd, shared
//! hosting, an authorizer in front), [operating it](guide::operate) (the
//! status page, logs, health checks, the `fcgi` tool), [upgrading without
//! downtime](guide::upgrade), [security](guide::security) (the threat
//! model and the limits) and [the protocol](guide::protocol) (roles and
//! multiplexing).
#![cfg_attr(docsrs, feature(doc_cfg))]

// The layers, from the bottom; each imports only from those above it in
// this list (docs/architecture.md draws them).
mod sys;
// `protocol` and `client` are public, below.
#[cfg(feature = "http")]
mod adapter;
mod connection;
mod handler;
#[cfg(any(test, feature = "fuzzing"))]
mod memio;
mod mux;
mod observe;
mod operate;
mod runtime;
mod server;
mod status;

pub mod client;
pub mod guide;
pub mod protocol;

/// The README's code blocks, compiled as doctests (with every feature, as
/// its axum example needs).
#[cfg(all(doctest, feature = "tower"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The `fcgi` command-line tool, which `src/bin/fcgi.rs` runs; not part
/// of the API.
#[doc(hidden)]
pub mod cli;

/// Entry points for the fuzz targets in `fuzz/`; not part of the API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::memio::check_connection;
}

#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use adapter::http;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use adapter::tower;
pub use handler::request::{Data, Params, Request};
pub use handler::response::{Response, Stderr};
pub use observe::metrics::{
    CurrentRequest, Histogram, Metrics, MetricsHandle, Timeouts, WorkerState, WorkerStatus,
};
pub use protocol::Role;
pub use server::{Server, ShutdownHandle, default_workers};
pub use status::StatusFormat;
