//! Handlers written with the `http` crate's types (cargo feature `http`).
//!
//! [`handler`] turns a synchronous `Fn(http::Request<Body>) ->
//! http::Response<B>` into the server's plain handler, so it is served by
//! the same [`Server`](crate::Server) as a plain closure:
//!
//! ```no_run
//! use fcgi_server::http::Body;
//!
//! fn hello(req: http::Request<Body<'_>>) -> http::Response<String> {
//!     http::Response::builder()
//!         .header("Content-Type", "text/plain")
//!         .body(format!("Hello from {}\n", req.uri().path()))
//!         .unwrap()
//! }
//!
//! fn main() -> std::io::Result<()> {
//!     fcgi_server::Server::new(fcgi_server::http::handler(hello)).run()
//! }
//! ```
//!
//! # The request
//!
//! The CGI environment the web server sends becomes the request:
//!
//! - the method from `REQUEST_METHOD` (`GET` when absent; an invalid one
//!   is answered with 400 before the handler is called);
//! - the URI: path and query, as a server sees them in the request line
//!   (see [path below the mount point](#the-path-below-the-mount-point));
//!   the query from `QUERY_STRING`;
//! - the version from `SERVER_PROTOCOL`;
//! - the headers from the `HTTP_*` params (`HTTP_USER_AGENT` is
//!   `user-agent`), `CONTENT_TYPE` and `CONTENT_LENGTH` (when not empty),
//!   and `Host` from `SERVER_NAME:SERVER_PORT` when the client sent none.
//!   A header the web server passes twice (nginx does so with two `Cookie`
//!   headers) keeps every value: cookies joined with `"; "` into one
//!   `Cookie` header, other names as several values. Values need not be
//!   UTF-8;
//! - the body, read from the web server as the handler reads it ([`Body`]);
//! - the extensions, for what the web server knows and the client cannot
//!   forge: [`RemoteAddr`], [`ScriptName`] (the mount point), [`Https`],
//!   [`RawParams`] (every param), and a [`Stderr`] writer for the web
//!   server's error log.
//!
//! # The path below the mount point
//!
//! An application mounted at `/yourapplication` gets a request for
//! `/yourapplication/users/7`. By default its URI is `/users/7`: the path
//! below the mount point (`SCRIPT_NAME`), as WSGI applications see it, so
//! the same routes work at any mount point and at the root; the mount
//! point is in the [`ScriptName`] extension, for making links.
//!
//! The path is the client's own, from `REQUEST_URI` as the client encoded
//! it, as an HTTP server would hand it to the application, whenever
//! `REQUEST_URI` starts with the mount point and the rest names the
//! resource `PATH_INFO` names once both are normalised as web servers
//! normalise (percent-decoded, slashes merged, `.` and `..` resolved): so
//! `//a//b` and `/static/..%2fsecret` reach the application's routing and
//! its own traversal checks as they do natively, not as the web server
//! cleaned them. An encoded slash that the web server left encoded in
//! `PATH_INFO` (Apache's `AllowEncodedSlashes NoDecode`) stays one. When
//! the web server rewrote the request to another resource, the path is
//! `PATH_INFO`, percent-encoded.
//!
//! With [`Builder::full_path`], the URI is the whole path the client
//! asked for (`REQUEST_URI`; without it, `SCRIPT_NAME` and `PATH_INFO`),
//! as Go's `net/http/fcgi` does, and the application nests its routes
//! under its mount point.
//!
//! # The response
//!
//! The status and headers go out as they are, except the hop-by-hop
//! headers `Connection`, `Transfer-Encoding` and `Keep-Alive`; a body of
//! known length gets a `Content-Length` unless the handler set one. As an
//! HTTP/1.1 server frames them: a 204 or 304 answer goes out without
//! `Content-Length` and without a body; a HEAD answer without a body, with
//! the `Content-Length` the handler set, or else its body's length when
//! not zero (so a handler may answer HEAD as it answers GET). The
//! body is anything that implements [`ResponseBody`]: `String`, `Vec<u8>`,
//! `&'static str`, `Bytes`, `()`, or any [`io::Read`] wrapped in
//! [`ReadBody`], which is streamed out in pieces. A handler that panics
//! gets a 500 response, and the panic message goes to the error log.

use std::io::{self, Read, Write};

use bytes::Bytes;

pub use super::ext::{Https, RawParams, RemoteAddr, ScriptName};
pub use super::stderr::Stderr;
use super::{Finish, RoutePath, no_body, refuse, request_parts, write_head};
use crate::{Request, Response};

/// The request body: read from the web server only as the handler reads
/// it, so a body of any size passes in constant memory.
pub struct Body<'r> {
    src: &'r mut (dyn Read + 'r),
}

impl Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.src.read(buf)
    }
}

impl std::fmt::Debug for Body<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body").finish_non_exhaustive()
    }
}

/// A response body the `http` adapter can send.
///
/// Implemented for the usual owned bodies and for [`ReadBody`]; implement
/// it for a type of your own to write a large or generated body in pieces
/// (the pieces are framed without a copy when they are 32 KiB or more).
pub trait ResponseBody {
    /// The body's length in bytes, when known before it is written; it is
    /// sent as `Content-Length` unless the handler set that header.
    fn len_hint(&self) -> Option<u64> {
        None
    }

    /// Writes the body.
    fn write_to(self, out: &mut dyn Write) -> io::Result<()>;
}

macro_rules! owned_bodies {
    ($($t:ty),*) => {$(
        impl ResponseBody for $t {
            fn len_hint(&self) -> Option<u64> {
                Some(<[u8]>::len(self.as_ref()) as u64)
            }

            fn write_to(self, out: &mut dyn Write) -> io::Result<()> {
                out.write_all(self.as_ref())
            }
        }
    )*};
}

owned_bodies!(Vec<u8>, String, &'static str, &'static [u8], Bytes);

impl ResponseBody for () {
    fn len_hint(&self) -> Option<u64> {
        Some(0)
    }

    fn write_to(self, _out: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
}

/// A response body read from any [`io::Read`] (a file, a pipe, a
/// generator) and sent in pieces of up to 64 KiB, never held whole.
///
/// A read that returns less than a full piece is sent on at once, so a
/// reader that produces slowly reaches the client as it produces.
#[derive(Debug)]
pub struct ReadBody<R>(pub R);

impl<R: Read> ResponseBody for ReadBody<R> {
    fn write_to(mut self, out: &mut dyn Write) -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match self.0.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            out.write_all(&buf[..n])?;
            if n < buf.len() {
                out.flush()?;
            }
        }
    }
}

/// Serves a handler written with the `http` crate's types; see the
/// [module docs](self).
///
/// ```no_run
/// let app = |req: http::Request<fcgi_server::http::Body>| {
///     http::Response::new(format!("{} {}\n", req.method(), req.uri()))
/// };
/// fcgi_server::Server::new(fcgi_server::http::handler(app)).run()
/// # ; Ok::<(), std::io::Error>(())
/// ```
pub fn handler<F, B>(
    f: F,
) -> impl Fn(&mut Request<'_>, &mut Response<'_>) -> io::Result<()> + Send + Sync + 'static
where
    F: for<'r> Fn(::http::Request<Body<'r>>) -> ::http::Response<B> + Send + Sync + 'static,
    B: ResponseBody,
{
    Builder::new().handler(f)
}

/// Options of the `http` adapter; [`handler`] uses the defaults.
#[derive(Clone, Debug, Default)]
pub struct Builder {
    route: RoutePath,
}

impl Builder {
    /// The defaults: the URI holds the path below the mount point.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Whether the request's URI holds the whole path the client asked
    /// for, mount point included (`true`), or the path below the mount
    /// point (`false`, the default); see [the module docs](self#the-path-below-the-mount-point).
    pub fn full_path(mut self, on: bool) -> Builder {
        self.route = RoutePath::full_if(on);
        self
    }

    /// The server's handler for `f`.
    pub fn handler<F, B>(
        self,
        f: F,
    ) -> impl Fn(&mut Request<'_>, &mut Response<'_>) -> io::Result<()> + Send + Sync + 'static
    where
        F: for<'r> Fn(::http::Request<Body<'r>>) -> ::http::Response<B> + Send + Sync + 'static,
        B: ResponseBody,
    {
        let route = self.route;
        move |req: &mut Request<'_>, res: &mut Response<'_>| {
            let stderr = Stderr::for_request();
            let parts = match request_parts(req, route, stderr.clone()) {
                Ok(parts) => parts,
                Err(why) => return refuse(res, &why),
            };
            let is_head = parts.method() == ::http::Method::HEAD;
            let request = parts.map(|()| Body { src: req });
            let mut finish = Finish { res, stderr };
            let (head, body) = f(request).into_parts();
            write_head(
                finish.res,
                is_head,
                head.status,
                &head.headers,
                body.len_hint(),
            );
            // A HEAD answer has the GET's headers and no body.
            if !is_head && !no_body(head.status) {
                body.write_to(finish.res)?;
            }
            finish.end()
        }
    }
}
