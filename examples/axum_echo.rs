//! The `echo` application (see `echo/contract.rs`) written as an axum
//! `Router` on the tower adapter. It behaves as `examples/echo` does, item
//! for item: the query is the raw `QUERY_STRING`, the listing is of the raw
//! params (the `RawParams` extension), `stderr=` writes to the `Stderr`
//! extension, `sleep_ms=` sleeps with `tokio::time`, and `size=` and
//! `digest=1` stream.
//!
//! Usage: `axum_echo [ADDRESS]`, as `echo` (cargo feature `tower`).

use std::future::poll_fn;
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Request};
use axum::response::Response;
use fcgi_server::tower::{RawParams, Stderr};
use http_body::{Body as _, Frame};

#[path = "common/mod.rs"]
mod common;
#[path = "echo/contract.rs"]
mod contract;
#[path = "echo/http_head.rs"]
mod http_head;

use contract::{Ask, Digest};

fn main() {
    let app = Router::new().fallback(echo);
    common::serve("axum_echo", fcgi_server::tower::handler(app));
}

async fn echo(
    Extension(params): Extension<RawParams>,
    Extension(stderr): Extension<Stderr>,
    req: Request,
) -> Response {
    let ask = Ask::parse(params.get_str("QUERY_STRING").unwrap_or(""));
    if let Some(ms) = ask.sleep_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(text) = ask.stderr {
        let _ = writeln!(&stderr, "{text}");
    }
    if ask.panic {
        panic!("{}", contract::PANIC);
    }
    let mut res = http_head::response(&ask, Body::empty());
    let posted = contract::posted(req.method().as_str());
    let mut body = req.into_body();
    *res.body_mut() = if let Some(size) = ask.size {
        Body::new(Pattern(contract::pieces(size)))
    } else if posted && ask.digest {
        Body::from(digest(&mut body).await.line())
    } else if posted {
        // A failed read ends the body there; the web server has gone.
        Body::from(
            axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default(),
        )
    } else {
        let mut listing = Vec::new();
        let _ = contract::write_listing(&mut listing, params.iter());
        Body::from(listing)
    };
    res
}

/// The digest of the request body, taken frame by frame as it arrives.
async fn digest(body: &mut Body) -> Digest {
    let mut digest = Digest::new();
    while let Some(Ok(frame)) = poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await {
        if let Some(data) = frame.data_ref() {
            digest.update(data);
        }
    }
    digest
}

/// The download pattern as a streamed body: one frame per piece, each a
/// slice of the static pattern (no copy).
struct Pattern<I>(I);

impl<I: Iterator<Item = &'static [u8]> + Unpin> http_body::Body for Pattern<I> {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(
            self.0
                .next()
                .map(|p| Ok(Frame::data(Bytes::from_static(p)))),
        )
    }
}
