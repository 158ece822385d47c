//! The `echo` application (see `echo/contract.rs`) written on the `http`
//! adapter: a synchronous `Fn(http::Request<Body>) -> http::Response<_>`.
//! It behaves as `examples/echo` does, item for item: the query is the raw
//! `QUERY_STRING`, the listing is of the raw params (the `RawParams`
//! extension), `stderr=` writes to the `Stderr` extension, and `size=` and
//! `digest=1` stream.
//!
//! Usage: `http_echo [ADDRESS]`, as `echo` (cargo feature `http`).

use std::io::{self, Read, Write};
use std::time::Duration;

use fcgi_server::http::{Body, RawParams, ResponseBody, Stderr};
use http::Response;

#[path = "common/mod.rs"]
mod common;
#[path = "echo/contract.rs"]
mod contract;
#[path = "echo/http_head.rs"]
mod http_head;

use contract::{Ask, Digest};

fn main() {
    common::serve("http_echo", fcgi_server::http::handler(echo));
}

/// A response body: bytes made whole, or the pattern written in pieces.
enum Reply {
    Bytes(Vec<u8>),
    Pattern(u64),
}

impl ResponseBody for Reply {
    fn len_hint(&self) -> Option<u64> {
        match self {
            Reply::Bytes(b) => Some(b.len() as u64),
            Reply::Pattern(size) => Some(*size),
        }
    }

    fn write_to(self, out: &mut dyn Write) -> io::Result<()> {
        match self {
            Reply::Bytes(b) => out.write_all(&b),
            Reply::Pattern(size) => contract::pieces(size).try_for_each(|p| out.write_all(p)),
        }
    }
}

fn echo(req: http::Request<Body<'_>>) -> Response<Reply> {
    let params = req
        .extensions()
        .get::<RawParams>()
        .expect("RawParams")
        .clone();
    let ask = Ask::parse(params.get_str("QUERY_STRING").unwrap_or(""));
    if let Some(ms) = ask.sleep_ms {
        std::thread::sleep(Duration::from_millis(ms));
    }
    if let Some(text) = ask.stderr {
        let stderr = req.extensions().get::<Stderr>().expect("Stderr");
        let _ = writeln!(&*stderr, "{text}");
    }
    if ask.panic {
        panic!("{}", contract::PANIC);
    }
    let mut res = http_head::response(&ask, Reply::Bytes(Vec::new()));
    let posted = contract::posted(req.method().as_str());
    let mut body = req.into_body();
    *res.body_mut() = if let Some(size) = ask.size {
        Reply::Pattern(size)
    } else if posted && ask.digest {
        Reply::Bytes(digest(&mut body).line().into_bytes())
    } else if posted {
        let mut all = Vec::new();
        // A failed read ends the body there; the web server has gone.
        let _ = body.read_to_end(&mut all);
        Reply::Bytes(all)
    } else {
        let mut listing = Vec::new();
        let _ = contract::write_listing(&mut listing, params.iter());
        Reply::Bytes(listing)
    };
    res
}

/// The digest of the request body, read in pieces.
fn digest(body: &mut Body<'_>) -> Digest {
    let mut buf = vec![0u8; 64 * 1024];
    let mut digest = Digest::new();
    while let Ok(n @ 1..) = body.read(&mut buf) {
        digest.update(&buf[..n]);
    }
    digest
}
