//! The adapters: `http` and `tower` handlers served by the same [`Server`]
//! through its plain handler, on the public [`Request`] and [`Response`]
//! only.
//!
//! [`Server`]: crate::Server

use std::io::{self, Write};

use ::http::header::{self, HeaderName};
use ::http::{HeaderMap, StatusCode};

use crate::Response;

mod env;
mod ext;
pub mod http;
mod stderr;
#[cfg(feature = "tower")]
pub mod tower;

pub(crate) use env::{Refused, RoutePath, request_parts};
pub(crate) use stderr::Stderr;

/// Hop-by-hop headers: they concern one HTTP connection, and the one
/// between the web server and the client is not the application's.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION || name == header::TRANSFER_ENCODING || name.as_str() == "keep-alive"
}

/// Sets the response's status and headers, less the hop-by-hop ones, and
/// `Content-Length` when the body's length (`len`) is known and no header
/// gives it, as an HTTP/1.1 server (hyper) frames it:
///
/// - a 1xx, 204 or 304 answer has no body and no `Content-Length`
///   (RFC 9110 8.6: never in a 204; in a 304 only the length the 200
///   would have had, which the empty body an application gives a 304 does
///   not tell);
/// - a HEAD answer (`head`) keeps the `Content-Length` the application
///   set, the length of the GET body it would have sent, but none is
///   derived from an empty body: frameworks (axum) answer HEAD with an
///   empty body, which says nothing of the GET's length.
pub(crate) fn write_head(
    res: &mut Response<'_>,
    head: bool,
    status: StatusCode,
    headers: &HeaderMap,
    len: Option<u64>,
) {
    res.status(status.as_u16());
    let bodiless = no_body(status);
    for (name, value) in headers {
        let dropped = is_hop_by_hop(name) || (bodiless && name == header::CONTENT_LENGTH);
        if !dropped {
            res.header_bytes(name.as_str(), value.as_bytes());
        }
    }
    let len = len.filter(|&n| !(bodiless || (head && n == 0)));
    if let (Some(len), false) = (len, headers.contains_key(header::CONTENT_LENGTH)) {
        let mut digits = [0u8; 20];
        let n = {
            let mut w = &mut digits[..];
            let _ = write!(w, "{len}");
            20 - w.len()
        };
        res.header_bytes("content-length", &digits[..n]);
    }
}

/// Whether an answer with `status` has no body (1xx, 204, 304).
pub(crate) fn no_body(status: StatusCode) -> bool {
    status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
}

/// Answers a request that is not valid HTTP with 400, and says why on the
/// error stream.
pub(crate) fn refuse(res: &mut Response<'_>, why: &Refused) -> io::Result<()> {
    writeln!(res.stderr(), "fcgi-server: bad request: {}", why.message())?;
    res.status(400).header("Content-Type", "text/plain");
    writeln!(res, "Bad Request: {}", why.message())
}

/// Drains a request's [`Stderr`] into its response when the handler is done
/// with it, also when the handler panics.
pub(crate) struct Finish<'r, 'a> {
    pub(crate) res: &'r mut Response<'a>,
    pub(crate) stderr: Stderr,
}

impl Finish<'_, '_> {
    /// Ends the request's error output; what the handler wrote meanwhile
    /// goes out with the response.
    pub(crate) fn end(&mut self) -> io::Result<()> {
        self.stderr.end(&mut self.res.stderr())
    }
}

impl Drop for Finish<'_, '_> {
    fn drop(&mut self) {
        let _ = self.end();
    }
}
