//! The `hello` application as an axum `Router` on the tower adapter:
//! every request gets `Hello, World!`. Usage as `hello` (cargo feature
//! `tower`).

use axum::Router;
use axum::routing::get;

#[path = "common/mod.rs"]
mod common;

fn main() {
    let app = Router::new().fallback(get(|| async {
        ([("content-type", "text/plain")], "Hello, World!\n")
    }));
    common::serve("axum_hello", fcgi_server::tower::handler(app));
}
