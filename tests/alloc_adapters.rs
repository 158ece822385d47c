//! Heap allocations per request on the adapters, counted as in
//! `tests/alloc.rs` (a counting global allocator; the client side of the
//! loop allocates nothing): printed, and held under a bound, so that a
//! change that makes them much costlier fails here. The plain closure
//! makes none; an adapter makes the `http::Request` (headers, URI,
//! extensions) and whatever the application allocates.
#![cfg(feature = "http")]

mod support;

use std::io::{Read, Write};
use std::sync::atomic::Ordering;

use support::{ALLOCATIONS, Counting, Raw, TestServer, request};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations per keep-conn hello request with 25 nginx-like params, in
/// steady state (after a warm-up), on a server with one worker.
fn per_request<H>(handler: H) -> f64
where
    H: Fn(&mut fcgi_server::Request<'_>, &mut fcgi_server::Response<'_>) -> std::io::Result<()>
        + Send
        + Sync
        + 'static,
{
    let srv = TestServer::start(handler, |s| s.workers(1));
    // As nginx's fastcgi_params sends them (benches/fcgi.rs sends the same).
    let params: Vec<(&str, String)> = [
        ("QUERY_STRING", "x=1"),
        ("REQUEST_METHOD", "GET"),
        ("CONTENT_TYPE", ""),
        ("CONTENT_LENGTH", ""),
        ("SCRIPT_NAME", "/app"),
        ("REQUEST_URI", "/app/hello?x=1"),
        ("DOCUMENT_URI", "/app/hello"),
        ("DOCUMENT_ROOT", "/var/www/html"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REQUEST_SCHEME", "http"),
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("SERVER_SOFTWARE", "nginx/1.22.1"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("REMOTE_PORT", "51234"),
        ("SERVER_ADDR", "127.0.0.1"),
        ("SERVER_PORT", "80"),
        ("SERVER_NAME", "localhost"),
        ("REDIRECT_STATUS", "200"),
        ("PATH_INFO", "/hello"),
        ("HTTP_HOST", "localhost"),
        (
            "HTTP_USER_AGENT",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0",
        ),
        ("HTTP_ACCEPT", "text/html,application/xhtml+xml,*/*;q=0.8"),
        ("HTTP_ACCEPT_LANGUAGE", "en-US,en;q=0.5"),
        ("HTTP_ACCEPT_ENCODING", "gzip, deflate, br"),
        ("HTTP_CONNECTION", "keep-alive"),
    ]
    .iter()
    .map(|(k, v)| (*k, (*v).to_owned()))
    .collect();
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let req = request(1, true, &params, b"");
    let mut raw: Raw = srv.connect();
    raw.send(&req).unwrap();
    let first = raw.read_reply(1);
    assert!(
        first.stdout_str().contains("Hello, World!"),
        "{}",
        first.stdout_str()
    );
    let len: usize = first.records.iter().map(|r| r.header.record_len()).sum();
    let mut buf = vec![0u8; len];
    let mut round_trip = |raw: &mut Raw| {
        raw.stream.write_all(&req).unwrap();
        raw.stream.read_exact(&mut buf).unwrap();
    };
    for i in 0..200 {
        round_trip(&mut raw);
        if i % 20 == 0 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    let n = 1000;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..n {
        round_trip(&mut raw);
    }
    (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / n as f64
}

/// One test for both, one after the other: the count is process-wide.
#[test]
fn allocations_per_request() {
    let handler = fcgi_server::http::handler(|_req: http::Request<fcgi_server::http::Body>| {
        http::Response::builder()
            .header("Content-Type", "text/plain")
            .body("Hello, World!\n")
            .unwrap()
    });
    let n = per_request(handler);
    eprintln!("http adapter: {n:.1} allocations per request");
    assert!(n <= 24.0, "http adapter: {n} allocations per request");
    #[cfg(feature = "tower")]
    {
        let hello = || async { ([("content-type", "text/plain")], "Hello, World!\n") };
        let app = axum::Router::new().route("/hello", axum::routing::get(hello));
        let n = per_request(fcgi_server::tower::handler(app));
        eprintln!("tower adapter (axum Router): {n:.1} allocations per request");
        assert!(n <= 40.0, "tower adapter: {n} allocations per request");
    }
}
