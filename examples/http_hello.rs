//! The `hello` application on the `http` adapter: every request gets
//! `Hello, World!`. Usage as `hello` (cargo feature `http`).

use fcgi_server::http::Body;
use http::{Response, header};

#[path = "common/mod.rs"]
mod common;

fn hello(_req: http::Request<Body<'_>>) -> Response<&'static str> {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain")
        .body("Hello, World!\n")
        .expect("a valid response")
}

fn main() {
    common::serve("http_hello", fcgi_server::http::handler(hello));
}
