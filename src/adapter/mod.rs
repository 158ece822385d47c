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
/// `Content-Length` when the body's length is known and no header gives it.
pub(crate) fn write_head(
    res: &mut Response<'_>,
    status: StatusCode,
    headers: &HeaderMap,
    len: Option<u64>,
) {
    res.status(status.as_u16());
    for (name, value) in headers {
        if !is_hop_by_hop(name) {
            res.header_bytes(name.as_str(), value.as_bytes());
        }
    }
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if let (Some(len), false, false) = (len, bodiless, headers.contains_key(header::CONTENT_LENGTH))
    {
        let mut digits = [0u8; 20];
        let n = {
            let mut w = &mut digits[..];
            let _ = write!(w, "{len}");
            20 - w.len()
        };
        res.header_bytes("content-length", &digits[..n]);
    }
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
