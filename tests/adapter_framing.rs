//! How both adapters frame an answer and pick the path the application
//! routes on, as `axum::serve` (hyper) does for the same application:
//! no `Content-Length` on 204 and 304, a HEAD answer's length only when
//! known, the client's own path whenever it names the resource the web
//! server's `PATH_INFO` names, an encoded slash left encoded, and the
//! `http` crate's reason phrases. Driven by raw FastCGI records against a
//! server in this process.
#![cfg(feature = "http")]

mod support;

use ::http::{Response, StatusCode};
use fcgi_server::http::Body;
use support::{Reply, TestServer, request};

/// The header block and body of one request with these params.
fn exchange(srv: &TestServer, params: &[(&str, &str)]) -> (String, Vec<u8>) {
    let mut raw = srv.connect();
    raw.send(&request(1, false, params, b"")).unwrap();
    let reply: Reply = raw.read_reply(1);
    let text = String::from_utf8_lossy(&reply.stdout).into_owned();
    let head = text.split("\r\n\r\n").next().unwrap_or("").to_owned();
    (head.to_ascii_lowercase(), reply.body().to_vec())
}

/// Params as nginx sends them for `method` and the client's `uri`, with
/// the normalised `path_info` nginx derives, at the site root.
fn root_params<'a>(method: &'a str, uri: &'a str, path_info: &'a str) -> Vec<(&'a str, &'a str)> {
    let query = uri.split_once('?').map_or("", |(_, q)| q);
    vec![
        ("REQUEST_METHOD", method),
        ("REQUEST_URI", uri),
        ("QUERY_STRING", query),
        ("SCRIPT_NAME", ""),
        ("PATH_INFO", path_info),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
    ]
}

fn content_length(head: &str) -> Option<&str> {
    head.lines()
        .find_map(|l| l.strip_prefix("content-length: "))
}

/// The `http` adapter: a handler that answers by the query.
fn http_app(req: ::http::Request<Body<'_>>) -> Response<String> {
    let q = req.uri().query().unwrap_or("").to_owned();
    let mut res = Response::builder();
    let body = match q.as_str() {
        "204" => {
            res = res.status(204).header("content-length", "0");
            String::new()
        }
        "304" => {
            res = res.status(304).header("etag", "\"v1\"");
            String::new()
        }
        "451" => {
            res = res.status(451);
            "gone by law\n".to_owned()
        }
        _ => format!("path {}\n", req.uri().path()),
    };
    res.body(body).unwrap()
}

#[test]
fn http_adapter_no_length_on_204_and_304() {
    let srv = TestServer::start(fcgi_server::http::handler(http_app), |s| s);
    for q in ["204", "304"] {
        let uri = format!("/x?{q}");
        let (head, body) = exchange(&srv, &root_params("GET", &uri, "/x"));
        assert!(head.starts_with(&format!("status: {q} ")), "{head}");
        assert_eq!(content_length(&head), None, "{q}: {head}");
        assert!(body.is_empty());
    }
}

#[test]
fn http_adapter_head_has_the_get_length_and_no_body() {
    let srv = TestServer::start(fcgi_server::http::handler(http_app), |s| s);
    let (get_head, get_body) = exchange(&srv, &root_params("GET", "/x", "/x"));
    let (head, body) = exchange(&srv, &root_params("HEAD", "/x", "/x"));
    assert_eq!(get_body, b"path /x\n");
    assert_eq!(content_length(&get_head), Some("8"));
    assert_eq!(content_length(&head), Some("8"), "{head}");
    assert!(body.is_empty(), "a HEAD answer with a body");
}

#[test]
fn http_adapter_reason_phrases_are_the_http_crates() {
    let srv = TestServer::start(fcgi_server::http::handler(http_app), |s| s);
    let (head, _) = exchange(&srv, &root_params("GET", "/x?451", "/x"));
    let want = StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS;
    let line = format!("status: 451 {}", want.canonical_reason().unwrap());
    assert!(head.starts_with(&line.to_ascii_lowercase()), "{head}");
}

/// (client's path, nginx's or Apache's PATH_INFO, the path the application sees)
const PATHS: &[(&str, &str, &str)] = &[
    ("//hello//world", "/hello/world", "//hello//world"),
    (
        "/static/docs/..%2fhello.txt",
        "/static/hello.txt",
        "/static/docs/..%2fhello.txt",
    ),
    ("/files/a%2Fb.txt", "/files/a%2Fb.txt", "/files/a%2Fb.txt"),
    ("/caf%C3%A9", "/café", "/caf%C3%A9"),
    // A rewrite: PATH_INFO names another resource.
    ("/old", "/new", "/new"),
];

#[test]
fn http_adapter_routes_on_the_clients_path() {
    let srv = TestServer::start(fcgi_server::http::handler(http_app), |s| s);
    for (uri, info, want) in PATHS {
        let (_, body) = exchange(&srv, &root_params("GET", uri, info));
        assert_eq!(
            String::from_utf8_lossy(&body),
            format!("path {want}\n"),
            "{uri}"
        );
    }
}

#[cfg(feature = "tower")]
mod tower {
    use super::*;
    use axum::Router;
    use axum::extract::Path;
    use axum::response::IntoResponse;
    use axum::routing::get;

    fn server() -> TestServer {
        let stream = || {
            let pieces = ["one ", "two ", "three\n"].map(Ok::<_, std::io::Error>);
            axum::body::Body::from_stream(futures_util::stream::iter(pieces))
        };
        let app = Router::new()
            .route("/empty", get(|| async { StatusCode::NO_CONTENT }))
            .route(
                "/same",
                get(|| async { (StatusCode::NOT_MODIFIED, [("etag", "\"v1\"")]) }),
            )
            .route("/stream", get(move || async move { stream() }))
            .route(
                "/legal",
                get(|| async { StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS }),
            )
            .route("/hello/world", get(|| async { "hello\n" }))
            .route(
                "/files/{name}",
                get(|Path(n): Path<String>| async move { format!("file {n}\n") }),
            )
            .fallback(|uri: axum::http::Uri| async move {
                (StatusCode::NOT_FOUND, format!("no {}\n", uri.path())).into_response()
            });
        TestServer::start(fcgi_server::tower::handler(app), |s| s)
    }

    #[test]
    fn no_length_on_204_and_304() {
        let srv = server();
        for (path, status) in [("/empty", "204"), ("/same", "304")] {
            for method in ["GET", "HEAD"] {
                let (head, body) = exchange(&srv, &root_params(method, path, path));
                assert!(head.starts_with(&format!("status: {status} ")), "{head}");
                assert_eq!(content_length(&head), None, "{method} {path}: {head}");
                assert!(body.is_empty());
            }
        }
    }

    #[test]
    fn head_of_a_streamed_body_has_no_length() {
        let srv = server();
        let (head, body) = exchange(&srv, &root_params("GET", "/stream", "/stream"));
        assert_eq!(body, b"one two three\n");
        assert_eq!(content_length(&head), None, "{head}");
        let (head, body) = exchange(&srv, &root_params("HEAD", "/stream", "/stream"));
        assert_eq!(content_length(&head), None, "HEAD: {head}");
        assert!(body.is_empty());
        // A known length is kept on HEAD.
        let (head, _) = exchange(&srv, &root_params("HEAD", "/hello/world", "/hello/world"));
        assert_eq!(content_length(&head), Some("6"), "{head}");
    }

    #[test]
    fn reason_phrase_of_451() {
        let srv = server();
        let (head, _) = exchange(&srv, &root_params("GET", "/legal", "/legal"));
        assert!(
            head.starts_with("status: 451 unavailable for legal reasons\r\n"),
            "{head}"
        );
    }

    #[test]
    fn routes_on_the_clients_path() {
        let srv = server();
        // Natively `//hello//world` is no route of the application.
        let (head, body) = exchange(&srv, &root_params("GET", "//hello//world", "/hello/world"));
        assert!(head.starts_with("status: 404 "), "{head}");
        assert_eq!(body, b"no //hello//world\n");
        // Apache's AllowEncodedSlashes NoDecode: the extractor decodes it.
        let p = root_params("GET", "/files/a%2Fb.txt", "/files/a%2Fb.txt");
        let (_, body) = exchange(&srv, &p);
        assert_eq!(body, b"file a/b.txt\n");
        // After a rewrite the application routes on PATH_INFO.
        let (_, body) = exchange(&srv, &root_params("GET", "/old/path", "/hello/world"));
        assert_eq!(body, b"hello\n");
    }
}
