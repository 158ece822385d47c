//! The guide: how to write, deploy, operate and secure a FastCGI
//! application built on this crate, one page per subject. The reference
//! for each item is on its own page ([`Server`](crate::Server),
//! [`Request`](crate::Request), [`Response`](crate::Response), …); these
//! pages say how the items fit together and what the web servers in front
//! do with them.
//!
//! | page | what it covers |
//! |---|---|
//! | [`api`] | the [`Server`](crate::Server) builder's setters and their defaults, the handler, [`Request`](crate::Request) and [`Response`](crate::Response) |
//! | [`adapters`] | your axum application (any tower service) or a handler on the `http` crate's types: the mount point, the extensions, tokio, streaming |
//! | [`deploy`] | each front end (nginx, lighttpd, Apache mod_fcgid and mod_proxy_fcgi, Caddy, h2o, spawn-fcgi, systemd socket activation), shared hosting, an authorizer in front, signals and recycling |
//! | [`operate`] | the status page and ping path, health checks, slow requests, the access log, the server's events, the `fcgi` tool, finding a "premature end of script headers" |
//! | [`upgrade`] | handing the socket over to a new binary without dropping a request |
//! | [`security`] | who can connect, what each limit protects, and what the limits do not do |
//! | [`protocol`] | the three FastCGI roles, multiplexing, and the protocol details |
//!
//! Elsewhere in the repository:
//! [`docs/performance.md`](https://github.com/fcgi-server/fcgi-server/blob/main/docs/performance.md)
//! (how the figures are measured and what they rest on),
//! [`docs/robustness.md`](https://github.com/fcgi-server/fcgi-server/blob/main/docs/robustness.md)
//! (how the limits and hostile input are tested: property tests, fuzzing,
//! the soak run),
//! [`docs/architecture.md`](https://github.com/fcgi-server/fcgi-server/blob/main/docs/architecture.md)
//! (how the code is laid out), and
//! [`examples/README.md`](https://github.com/fcgi-server/fcgi-server/blob/main/examples/README.md)
//! (the example applications that the tests and the benchmark drive, and
//! their contract).

/// The text of a file in `deploy/` as a fenced code block in language
/// `$lang`, headed by its path: the guide shows the very files that the
/// integration tests run the front ends with.
macro_rules! deploy_file {
    ($lang:literal, $file:literal) => {
        concat!(
            "\n\n`deploy/",
            $file,
            "`:\n\n```",
            $lang,
            "\n",
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/", $file)),
            "```\n\n"
        )
    };
}

#[doc = include_str!("api.md")]
pub mod api {}

#[cfg_attr(feature = "tower", doc = include_str!("adapters.md"))]
#[cfg_attr(
    not(feature = "tower"),
    doc = "# Your axum application over FastCGI\n\nThis page is built with \
           the `tower` feature, which its examples and links need: \
           `cargo doc --features tower`, or read it on docs.rs."
)]
pub mod adapters {}

pub mod deploy;

#[doc = include_str!("operate.md")]
#[doc = deploy_file!("nginx", "nginx-status.conf")]
#[doc = include_str!("operate-tools.md")]
pub mod operate {}

#[doc = include_str!("upgrade.md")]
pub mod upgrade {}

#[doc = include_str!("security.md")]
pub mod security {}

#[doc = include_str!("protocol.md")]
pub mod protocol {}
