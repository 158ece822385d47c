//! The echo handler, as a plain closure: the query's keys (see
//! `contract.rs`) applied to the server's own `Request` and `Response`.
//!
//! It plays the other FastCGI roles too (see `examples/README.md`,
//! "echo's other roles"):
//! - authorizer: grants (200, `Variable-AUTH_USER: alice`) when
//!   `HTTP_AUTHORIZATION` is `Bearer let-me-in`, denies (403, `denied`)
//!   otherwise;
//! - filter: reads the body to its end, then writes the data stream back
//!   (or, with `digest=1`, its `LENGTH HASH` line), with the headers
//!   `X-Stdin-Length` and `X-Data-Length`.

use std::io::{self, Read, Write};
use std::time::Duration;

use fcgi_server::{Request, Response, Role};

#[path = "contract.rs"]
pub(crate) mod contract;

use contract::{Ask, Digest};

/// The roles that `handle` plays.
#[allow(dead_code)] // the tests that include this file serve the responder only
pub(crate) const ROLES: &[Role] = &[Role::Responder, Role::Authorizer, Role::Filter];

/// Serves one request in the role asked for.
pub(crate) fn handle(req: &mut Request<'_>, res: &mut Response<'_>) -> io::Result<()> {
    match req.role() {
        Role::Authorizer => authorize(req, res),
        Role::Filter => filter(req, res),
        Role::Responder => respond(req, res),
    }
}

/// The authorizer: grants the bearer of the one token, as alice.
fn authorize(req: &mut Request<'_>, res: &mut Response<'_>) -> io::Result<()> {
    if req.param("HTTP_AUTHORIZATION") == Some("Bearer let-me-in") {
        res.variable("AUTH_USER", "alice");
        return Ok(());
    }
    res.status(403).header("Content-Type", "text/plain");
    res.write_all(b"denied\n")
}

/// The filter: the body read to its end, then the data stream echoed.
fn filter(req: &mut Request<'_>, res: &mut Response<'_>) -> io::Result<()> {
    let stdin = io::copy(req, &mut io::sink())?;
    res.header("Content-Type", "text/plain")
        .header("X-Stdin-Length", &stdin.to_string());
    if let Some(length) = req.param("FCGI_DATA_LENGTH") {
        res.header("X-Data-Length", length);
    }
    if Ask::parse(req.query_string()).digest {
        return res.write_all(digest(&mut req.data())?.line().as_bytes());
    }
    io::copy(&mut req.data(), res).map(drop)
}

/// The responder: the query's keys, as `contract.rs` describes.
fn respond(req: &mut Request<'_>, res: &mut Response<'_>) -> io::Result<()> {
    let ask = Ask::parse(req.query_string());
    if let Some(ms) = ask.sleep_ms {
        std::thread::sleep(Duration::from_millis(ms));
    }
    if let Some(text) = ask.stderr {
        writeln!(res.stderr(), "{text}")?;
    }
    if ask.panic {
        panic!("{}", contract::PANIC);
    }
    if let Some(code) = ask.status {
        res.status(code);
    }
    res.header("Content-Type", "text/plain");
    if let Some((name, value)) = ask.header {
        res.header(name, value);
    }
    let posted = contract::posted(req.method());
    if let Some(size) = ask.size {
        contract::pieces(size).try_for_each(|piece| res.write_all(piece))
    } else if posted && ask.digest {
        res.write_all(digest(req)?.line().as_bytes())
    } else if posted {
        let mut body = Vec::new();
        req.read_to_end(&mut body)?;
        res.write_all(&body)
    } else {
        contract::write_listing(res, req.params())
    }
}

/// The digest of a body read in pieces.
pub(crate) fn digest(body: &mut impl Read) -> io::Result<Digest> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut digest = Digest::new();
    loop {
        let n = body.read(&mut buf)?;
        if n == 0 {
            return Ok(digest);
        }
        digest.update(&buf[..n]);
    }
}
