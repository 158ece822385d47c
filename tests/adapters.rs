//! The http and tower adapters in a server in this process, driven by a
//! FastCGI client: what the application gets, what the web server gets,
//! failures, the tokio runtime, and request bodies held past their request.
#![cfg(feature = "http")]

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use ::http::{Response, StatusCode};
use fcgi_server::http::{Body, ReadBody, Stderr};
use support::{Reply, TestServer, request};

fn params<'a>(
    method: &'a str,
    uri: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let mut p = vec![
        ("REQUEST_METHOD", method),
        ("REQUEST_URI", uri),
        ("QUERY_STRING", query),
        ("SCRIPT_NAME", "/app"),
        ("PATH_INFO", path.strip_prefix("/app").unwrap_or(path)),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
    ];
    p.extend_from_slice(extra);
    p
}

/// The whole stdout (headers and body) of one request, as bytes.
fn raw_stdout(srv: &TestServer, params: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut raw = srv.connect();
    raw.send(&request(1, false, params, body)).unwrap();
    raw.read_reply(1)
}

fn http_server<F, B>(f: F) -> TestServer
where
    F: for<'r> Fn(::http::Request<Body<'r>>) -> Response<B> + Send + Sync + 'static,
    B: fcgi_server::http::ResponseBody,
{
    TestServer::start(fcgi_server::http::handler(f), |s| s)
}

#[test]
fn http_request_and_response() {
    let srv = http_server(|req: ::http::Request<Body>| {
        let mut body = String::new();
        let (parts, mut b) = req.into_parts();
        b.read_to_string(&mut body).unwrap();
        let text = format!(
            "{} {} {:?} ua={:?} body={body}\n",
            parts.method,
            parts.uri,
            parts.version,
            parts.headers.get("user-agent").unwrap()
        );
        Response::builder()
            .status(StatusCode::ACCEPTED)
            .header("x-latin", &b"caf\xe9"[..])
            .header("connection", "close")
            .header("transfer-encoding", "chunked")
            .header("keep-alive", "timeout=5")
            .body(text)
            .unwrap()
    });
    let extra = [("HTTP_USER_AGENT", "t/1"), ("CONTENT_LENGTH", "5")];
    let reply = raw_stdout(&srv, &params("PUT", "/app/x/y?q=1", &extra), b"hello");
    let out = reply.stdout.clone();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("Status: 202 Accepted\r\n"), "{text}");
    let latin = b"x-latin: caf\xe9\r\n";
    assert!(out.windows(latin.len()).any(|w| w == latin), "{text}");
    for hop in ["connection", "transfer-encoding", "keep-alive"] {
        assert!(!text.contains(hop), "{hop} passed on: {text}");
    }
    let body = "PUT /x/y?q=1 HTTP/1.1 ua=\"t/1\" body=hello\n";
    assert!(
        text.contains(&format!("content-length: {}\r\n", body.len())),
        "{text}"
    );
    assert_eq!(reply.body(), body.as_bytes());
}

#[test]
fn http_stderr_panic_and_bad_method() {
    let srv = http_server(|req: ::http::Request<Body>| {
        let err = req.extensions().get::<Stderr>().unwrap();
        writeln!(&*err, "a note for the log").unwrap();
        if req.uri().path() == "/boom" {
            panic!("boom on purpose");
        }
        Response::new("fine\n")
    });
    let mut c = srv.client();
    c.keep_conn(true);
    let res = c.request(params("GET", "/app/ok", &[]), &b""[..]).unwrap();
    assert_eq!((res.status, &res.body[..]), (200, &b"fine\n"[..]));
    assert_eq!(res.stderr, b"a note for the log\n");
    let res = c
        .request(params("GET", "/app/boom", &[]), &b""[..])
        .unwrap();
    assert_eq!(res.status, 500);
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.starts_with("a note for the log\n"), "{err}");
    assert!(err.contains("boom on purpose"), "{err}");
    let res = c
        .request(params("BAD METHOD", "/app/ok", &[]), &b""[..])
        .unwrap();
    assert_eq!(res.status, 400);
    assert!(String::from_utf8_lossy(&res.stderr).contains("invalid REQUEST_METHOD"));
}

/// A `ReadBody` streams: a reader that produces slowly reaches the web
/// server piece by piece, before the response ends.
#[test]
fn http_read_body_streams() {
    struct Slow(u32);
    impl Read for Slow {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Ok(0);
            }
            self.0 -= 1;
            std::thread::sleep(Duration::from_millis(50));
            buf[..6].copy_from_slice(b"piece\n");
            Ok(6)
        }
    }
    let srv = http_server(|_req: ::http::Request<Body>| Response::new(ReadBody(Slow(3))));
    let reply = raw_stdout(&srv, &params("GET", "/app/", &[]), b"");
    let stdout_records = reply
        .records
        .iter()
        .filter(|r| r.header.record_type == fcgi_server::protocol::record_type::STDOUT)
        .count();
    // Headers with the first piece, two more pieces, the empty record.
    assert!(stdout_records >= 4, "{:?}", reply.records);
    assert_eq!(reply.body(), b"piece\npiece\npiece\n");
}

#[cfg(feature = "tower")]
mod tower {
    use super::support::{TempDir, eventually};
    use super::*;
    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::Request;
    use axum::routing::{get, post};
    use fcgi_server::tower::{Builder, RawParams};
    use std::sync::{Arc, Mutex};

    fn tower_server(router: Router) -> TestServer {
        TestServer::start(fcgi_server::tower::handler(router), |s| s)
    }

    /// tokio::spawn, tokio::time and tokio::fs work in handlers, on the
    /// runtime the crate starts.
    #[test]
    fn tokio_works_in_handlers() {
        let file = TempDir::new("tokio-fs");
        let path = file.path("greeting.txt");
        std::fs::write(&path, "from a file").unwrap();
        let router = Router::new().route(
            "/",
            get(move || async move {
                let spawned = tokio::spawn(async { 6 * 7 });
                tokio::time::sleep(Duration::from_millis(20)).await;
                let text = tokio::fs::read_to_string(&path).await.unwrap();
                format!("{} {text}\n", spawned.await.unwrap())
            }),
        );
        let srv = tower_server(router);
        let res = srv
            .client()
            .request(params("GET", "/app/", &[]), &b""[..])
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&res.body), "42 from a file\n");
    }

    /// A body moved into a task that outlives the request gets an error
    /// once the request has ended, not a wait for ever.
    #[test]
    fn a_body_held_past_its_request_fails() {
        let outcome: Arc<Mutex<Option<String>>> = Arc::default();
        let seen = Arc::clone(&outcome);
        let router = Router::new().route(
            "/",
            post(move |req: Request| {
                let seen = Arc::clone(&seen);
                async move {
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        let read = axum::body::to_bytes(req.into_body(), usize::MAX).await;
                        *seen.lock().unwrap() = Some(format!("{read:?}"));
                    });
                    "answered before reading\n"
                }
            }),
        );
        let srv = tower_server(router);
        let extra = [("CONTENT_LENGTH", "4")];
        let res = srv
            .client()
            .request(params("POST", "/app/", &extra), &b"body"[..])
            .unwrap();
        assert_eq!(res.status, 200);
        let done = eventually(Duration::from_secs(10), || {
            outcome.lock().unwrap().is_some()
        });
        assert!(done, "the held body still waits");
        let got = outcome.lock().unwrap().clone().unwrap();
        assert!(got.starts_with("Err("), "{got}");
    }

    /// The body is read as the service polls it, across several pieces.
    #[test]
    fn a_large_body_arrives_in_pieces() {
        let router = Router::new().route(
            "/",
            post(|req: Request| async move {
                let mut body = req.into_body();
                let (mut pieces, mut len) = (0, 0);
                while let Some(frame) = std::future::poll_fn(|cx| {
                    http_body::Body::poll_frame(std::pin::Pin::new(&mut body), cx)
                })
                .await
                {
                    let data: Bytes = frame.unwrap().into_data().unwrap();
                    pieces += 1;
                    len += data.len();
                }
                format!("{pieces} {len}")
            }),
        );
        let srv = tower_server(router);
        let body = vec![7u8; 1 << 20];
        let len = body.len().to_string();
        let extra = [("CONTENT_LENGTH", len.as_str())];
        let res = srv
            .client()
            .request(params("POST", "/app/", &extra), &body[..])
            .unwrap();
        let text = String::from_utf8(res.body).unwrap();
        let (pieces, got) = text.split_once(' ').unwrap();
        assert_eq!(got, len);
        assert!(pieces.parse::<usize>().unwrap() >= 16, "{text}");
    }

    /// A service error, a panic, and a body that fails before output all
    /// give 500 with the message on FCGI_STDERR; trailers are dropped.
    #[test]
    fn failures_give_500() {
        #[derive(Clone)]
        struct Failing;
        impl tower_service::Service<::http::Request<fcgi_server::tower::Body>> for Failing {
            type Response = Response<String>;
            type Error = std::io::Error;
            type Future = std::future::Ready<Result<Response<String>, std::io::Error>>;
            fn poll_ready(
                &mut self,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Self::Error>> {
                std::task::Poll::Ready(Ok(()))
            }
            fn call(&mut self, _: ::http::Request<fcgi_server::tower::Body>) -> Self::Future {
                std::future::ready(Err(std::io::Error::other("the database is down")))
            }
        }
        let srv = TestServer::start(fcgi_server::tower::handler(Failing), |s| s);
        let res = srv
            .client()
            .request(params("GET", "/app/", &[]), &b""[..])
            .unwrap();
        assert_eq!(res.status, 500);
        assert!(String::from_utf8_lossy(&res.stderr).contains("the database is down"));

        let router = Router::new()
            .route("/panic", get(|| async { panic_now() }))
            .route("/ok", get(|| async { "ok" }));
        let srv = tower_server(router);
        let mut c = srv.client();
        c.keep_conn(true);
        let res = c
            .request(params("GET", "/app/panic", &[]), &b""[..])
            .unwrap();
        assert_eq!(res.status, 500);
        assert!(String::from_utf8_lossy(&res.stderr).contains("tower handler panics"));
        let res = c.request(params("GET", "/app/ok", &[]), &b""[..]).unwrap();
        assert_eq!((res.status, &res.body[..]), (200, &b"ok"[..]));
    }

    fn panic_now() -> &'static str {
        panic!("tower handler panics")
    }

    /// The default path is below the mount point; `full_path(true)` gives
    /// the whole path; both at a prefix and at the root.
    #[test]
    fn routing_path_at_a_prefix_and_at_the_root() {
        let app = || {
            Router::new().fallback(|req: Request| async move {
                let p = req.extensions().get::<RawParams>().unwrap();
                format!("{} {}", req.uri(), p.get_str("SCRIPT_NAME").unwrap())
            })
        };
        let below = TestServer::start(fcgi_server::tower::handler(app()), |s| s);
        let full = Builder::new().full_path(true).handler(app());
        let full = TestServer::start(full, |s| s);
        let root = [
            ("REQUEST_METHOD", "GET"),
            ("REQUEST_URI", "/a/b?x=1"),
            ("QUERY_STRING", "x=1"),
            ("SCRIPT_NAME", ""),
            ("PATH_INFO", "/a/b"),
        ];
        let get = |srv: &TestServer, p: &[(&str, &str)]| {
            String::from_utf8(srv.client().request(p.to_vec(), &b""[..]).unwrap().body).unwrap()
        };
        let prefix = params("GET", "/app/a/b?x=1", &[]);
        assert_eq!(get(&below, &prefix), "/a/b?x=1 /app");
        assert_eq!(get(&full, &prefix), "/app/a/b?x=1 /app");
        assert_eq!(get(&below, &root), "/a/b?x=1 ");
        assert_eq!(get(&full, &root), "/a/b?x=1 ");
    }

    /// Data frames go out; a trailers frame is dropped.
    #[test]
    fn trailers_are_dropped() {
        struct WithTrailers(u8);
        impl http_body::Body for WithTrailers {
            type Data = Bytes;
            type Error = std::convert::Infallible;
            fn poll_frame(
                mut self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
                self.0 += 1;
                let mut trailers = http::HeaderMap::new();
                trailers.insert("x-checksum", http::HeaderValue::from_static("abc"));
                std::task::Poll::Ready(match self.0 {
                    1 => Some(Ok(http_body::Frame::data(Bytes::from_static(b"data\n")))),
                    2 => Some(Ok(http_body::Frame::trailers(trailers))),
                    _ => None,
                })
            }
        }
        let router = Router::new().route(
            "/",
            get(|| async { axum::body::Body::new(WithTrailers(0)) }),
        );
        let srv = tower_server(router);
        let reply = raw_stdout(&srv, &params("GET", "/app/", &[]), b"");
        assert_eq!(reply.body(), b"data\n");
        assert!(
            !reply.stdout_str().contains("x-checksum"),
            "{}",
            reply.stdout_str()
        );
    }

    #[test]
    fn a_current_thread_runtime_is_refused() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = Builder::new().runtime(rt.handle().clone()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("current-thread"), "{err}");
        let rt = tokio::runtime::Builder::new_multi_thread().build().unwrap();
        assert!(Builder::new().runtime(rt.handle().clone()).is_ok());
    }
}
