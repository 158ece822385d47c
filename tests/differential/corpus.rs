//! The named requests, each sent to every server of the differential
//! test; the routes are those of examples/axum_site.rs.
#![allow(unreachable_pub)]

use super::wire::Ask;

/// Request headers: (name, value).
type H = &'static [(&'static str, &'static str)];

/// An HTTP date long after any file here was written, and one before.
const AFTER: &str = "Fri, 01 Jan 2100 00:00:00 GMT";
const BEFORE: &str = "Thu, 01 Jan 1998 00:00:00 GMT";

/// (name, method, target, headers, body)
type Case = (&'static str, &'static str, &'static str, H, Body);

/// A request body.
#[derive(Clone, Copy)]
pub enum Body {
    None,
    Text(&'static str),
    /// This many bytes of a pattern.
    Sized(usize),
}

const JSON: (&str, &str) = ("Content-Type", "application/json");
const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");
const GZIP: (&str, &str) = ("Accept-Encoding", "gzip");
const ORIGIN: (&str, &str) = ("Origin", "https://app.example");

const CASES: &[Case] = &[
    ("index", "GET", "/", &[], Body::None),
    ("index-head", "HEAD", "/", &[], Body::None),
    ("index-gzip", "GET", "/", &[GZIP], Body::None),
    ("hello", "GET", "/hello/world", &[], Body::None),
    (
        "hello-query",
        "GET",
        "/hello/world?greeting=Hi%20there",
        &[],
        Body::None,
    ),
    ("hello-utf8", "GET", "/hello/caf%C3%A9", &[], Body::None),
    ("hello-space", "GET", "/hello/a%20b", &[], Body::None),
    ("hello-post", "POST", "/hello/x", &[], Body::Text("ignored")),
    (
        "hello-method-not-allowed",
        "DELETE",
        "/hello/x",
        &[],
        Body::None,
    ),
    ("double-slash", "GET", "//hello//world", &[], Body::None),
    ("dot-segments", "GET", "/hello/../hello/x", &[], Body::None),
    (
        "encoded-dot-segments",
        "GET",
        "/static/docs/..%2fhello.txt",
        &[],
        Body::None,
    ),
    ("encoded-slash", "GET", "/files/a%2Fb.txt", &[], Body::None),
    ("nested-path", "GET", "/files/x/y/z.txt", &[], Body::None),
    (
        "encoded-percent",
        "GET",
        "/files/50%25.txt",
        &[],
        Body::None,
    ),
    (
        "echo-headers",
        "GET",
        "/echo?x=1&y=2",
        &[
            ("User-Agent", "diff/1"),
            ("Accept-Language", "fr"),
            ("X-Custom", "a b c"),
        ],
        Body::None,
    ),
    (
        "echo-bearer",
        "GET",
        "/echo",
        &[("Authorization", "Bearer t0ken.abc")],
        Body::None,
    ),
    (
        "echo-repeated-header",
        "GET",
        "/echo",
        &[("X-Custom", "one"), ("X-Custom", "two")],
        Body::None,
    ),
    (
        "echo-post",
        "POST",
        "/echo",
        &[("Content-Type", "text/plain")],
        Body::Text("hello there"),
    ),
    ("echo-put", "PUT", "/echo", &[], Body::Sized(3000)),
    ("echo-delete", "DELETE", "/echo", &[], Body::None),
    ("echo-head", "HEAD", "/echo", &[], Body::None),
    (
        "echo-query-encoded",
        "GET",
        "/echo?q=a%20b&r=%2F&s=&t=%C3%A9",
        &[],
        Body::None,
    ),
    ("api-get", "GET", "/api/items/7", &[], Body::None),
    ("api-missing", "GET", "/api/items/500", &[], Body::None),
    ("api-bad-id", "GET", "/api/items/abc", &[], Body::None),
    (
        "api-post",
        "POST",
        "/api/items",
        &[JSON],
        Body::Text(r#"{"id":9,"name":"nine"}"#),
    ),
    (
        "api-post-bad-json",
        "POST",
        "/api/items",
        &[JSON],
        Body::Text("{not json"),
    ),
    (
        "api-post-missing-field",
        "POST",
        "/api/items",
        &[JSON],
        Body::Text(r#"{"id":9}"#),
    ),
    (
        "api-post-wrong-type",
        "POST",
        "/api/items",
        &[("Content-Type", "text/plain")],
        Body::Text("x"),
    ),
    (
        "api-put",
        "PUT",
        "/api/items/3",
        &[JSON],
        Body::Text(r#"{"id":0,"name":"three"}"#),
    ),
    ("api-delete", "DELETE", "/api/items/3", &[], Body::None),
    (
        "cors-preflight",
        "OPTIONS",
        "/api/items",
        &[
            ORIGIN,
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
        Body::None,
    ),
    ("cors-simple", "GET", "/api/items/1", &[ORIGIN], Body::None),
    (
        "cors-other-origin",
        "GET",
        "/api/items/1",
        &[("Origin", "https://evil.example")],
        Body::None,
    ),
    (
        "form",
        "POST",
        "/form",
        &[FORM],
        Body::Text("text=a+note%21"),
    ),
    (
        "form-missing-field",
        "POST",
        "/form",
        &[FORM],
        Body::Text("other=1"),
    ),
    (
        "cookies",
        "GET",
        "/cookies",
        &[("Cookie", "a=1; b=2")],
        Body::None,
    ),
    (
        "cookies-two-headers",
        "GET",
        "/cookies",
        &[("Cookie", "a=1"), ("Cookie", "b=2")],
        Body::None,
    ),
    ("redirect-301", "GET", "/redirect/301", &[], Body::None),
    ("redirect-302", "GET", "/redirect/302", &[], Body::None),
    ("redirect-303", "GET", "/redirect/303", &[], Body::None),
    ("redirect-307", "GET", "/redirect/307", &[], Body::None),
    ("status-204", "GET", "/status/204", &[], Body::None),
    ("status-204-head", "HEAD", "/status/204", &[], Body::None),
    ("status-418", "GET", "/status/418", &[], Body::None),
    ("status-429", "GET", "/status/429", &[], Body::None),
    ("status-451", "GET", "/status/451", &[], Body::None),
    ("status-503", "GET", "/status/503", &[], Body::None),
    ("etag", "GET", "/etag", &[], Body::None),
    ("etag-head", "HEAD", "/etag", &[], Body::None),
    (
        "etag-not-modified",
        "GET",
        "/etag",
        &[("If-None-Match", "\"v1\"")],
        Body::None,
    ),
    (
        "etag-not-modified-head",
        "HEAD",
        "/etag",
        &[("If-None-Match", "\"v1\"")],
        Body::None,
    ),
    ("stream", "GET", "/stream", &[], Body::None),
    ("stream-head", "HEAD", "/stream", &[], Body::None),
    ("stream-gzip", "GET", "/stream", &[GZIP], Body::None),
    ("big", "GET", "/big", &[], Body::None),
    ("big-head", "HEAD", "/big", &[], Body::None),
    ("big-gzip", "GET", "/big", &[GZIP], Body::None),
    ("big-gzip-head", "HEAD", "/big", &[GZIP], Body::None),
    (
        "sse",
        "GET",
        "/sse",
        &[("Accept", "text/event-stream")],
        Body::None,
    ),
    ("sse-gzip", "GET", "/sse", &[GZIP], Body::None),
    ("upload", "POST", "/upload", &[], Body::Sized(1000)),
    ("upload-empty", "POST", "/upload", &[], Body::None),
    (
        "upload-too-large",
        "POST",
        "/upload",
        &[],
        Body::Sized(70_000),
    ),
    (
        "upload-stream",
        "POST",
        "/upload-stream",
        &[],
        Body::Sized(20_000),
    ),
    (
        "upload-stream-too-large",
        "POST",
        "/upload-stream",
        &[],
        Body::Sized(33_000),
    ),
    ("slow-in-time", "GET", "/slow/10", &[], Body::None),
    ("timeout", "GET", "/slow/2000", &[], Body::None),
    ("static", "GET", "/static/hello.txt", &[], Body::None),
    ("static-head", "HEAD", "/static/hello.txt", &[], Body::None),
    (
        "static-range",
        "GET",
        "/static/hello.txt",
        &[("Range", "bytes=0-4")],
        Body::None,
    ),
    (
        "static-range-suffix",
        "GET",
        "/static/hello.txt",
        &[("Range", "bytes=-5")],
        Body::None,
    ),
    (
        "static-range-open",
        "GET",
        "/static/hello.txt",
        &[("Range", "bytes=3-")],
        Body::None,
    ),
    (
        "static-range-head",
        "HEAD",
        "/static/hello.txt",
        &[("Range", "bytes=0-4")],
        Body::None,
    ),
    (
        "static-range-unsatisfiable",
        "GET",
        "/static/hello.txt",
        &[("Range", "bytes=1000-2000")],
        Body::None,
    ),
    (
        "static-multi-range",
        "GET",
        "/static/hello.txt",
        &[("Range", "bytes=0-1,3-4")],
        Body::None,
    ),
    (
        "static-not-modified",
        "GET",
        "/static/hello.txt",
        &[("If-Modified-Since", AFTER)],
        Body::None,
    ),
    (
        "static-not-modified-head",
        "HEAD",
        "/static/hello.txt",
        &[("If-Modified-Since", AFTER)],
        Body::None,
    ),
    (
        "static-modified",
        "GET",
        "/static/hello.txt",
        &[("If-Modified-Since", BEFORE)],
        Body::None,
    ),
    (
        "static-precondition-failed",
        "GET",
        "/static/hello.txt",
        &[("If-Unmodified-Since", BEFORE)],
        Body::None,
    ),
    ("static-big", "GET", "/static/big.txt", &[], Body::None),
    (
        "static-big-gzip",
        "GET",
        "/static/big.txt",
        &[GZIP],
        Body::None,
    ),
    (
        "static-big-range",
        "GET",
        "/static/big.txt",
        &[("Range", "bytes=50000-50099")],
        Body::None,
    ),
    ("static-html", "GET", "/static/page.html", &[], Body::None),
    (
        "static-dir-redirect",
        "GET",
        "/static/docs",
        &[],
        Body::None,
    ),
    ("static-dir-index", "GET", "/static/docs/", &[], Body::None),
    ("static-missing", "GET", "/static/nope.txt", &[], Body::None),
    ("static-space", "GET", "/static/a%20b.txt", &[], Body::None),
    (
        "static-utf8",
        "GET",
        "/static/caf%C3%A9.txt",
        &[],
        Body::None,
    ),
    ("not-found", "GET", "/nothing/here", &[], Body::None),
    ("not-found-head", "HEAD", "/nothing/here", &[], Body::None),
    (
        "not-found-post",
        "POST",
        "/nothing/here",
        &[],
        Body::Text("x"),
    ),
];

/// The static files next to the application: (path, content).
pub fn static_files() -> Vec<(&'static str, Vec<u8>)> {
    let big: String = (0..3000).map(|i| format!("static line {i}\n")).collect();
    vec![
        ("hello.txt", b"Hello, static world!\n".to_vec()),
        ("big.txt", big.into_bytes()),
        ("page.html", b"<!doctype html>\n<p>a page</p>\n".to_vec()),
        (
            "docs/index.html",
            b"<!doctype html>\n<p>the docs</p>\n".to_vec(),
        ),
        ("a b.txt", b"a space\n".to_vec()),
        ("caf\u{e9}.txt", b"caf\xc3\xa9\n".to_vec()),
    ]
}

/// Every case as (name, request).
pub fn cases() -> Vec<(&'static str, Ask)> {
    CASES
        .iter()
        .map(|&(name, method, target, headers, body)| {
            let body = match body {
                Body::None => Vec::new(),
                Body::Text(t) => t.as_bytes().to_vec(),
                Body::Sized(n) => (0..n).map(|i| b'a' + (i % 26) as u8).collect(),
            };
            let headers = headers.iter().map(|&(n, v)| (n, v.to_owned())).collect();
            let ask = Ask {
                method,
                target: target.to_owned(),
                headers,
                body,
            };
            (name, ask)
        })
        .collect()
}
