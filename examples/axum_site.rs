//! A realistic axum site, the one `tests/differential.rs` serves both ways
//! to compare them answer by answer: over FastCGI with this crate's tower
//! adapter, and natively with `axum::serve`. Extractors (path, query,
//! JSON, form, headers, raw body), tower-http's `ServeDir` (ranges and
//! conditional requests), gzip, CORS, a timeout and a body limit,
//! server-sent events, a streamed body, redirects and several cookies.
//!
//! ```text
//! axum_site [ADDRESS]          FastCGI (socket on fd 0 when none given)
//! axum_site --http HOST:PORT   HTTP/1.1, with axum::serve
//! ```
//!
//! Static files are served from `static/` next to the executable.

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Form, Json, Path, Query, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::sse::{Event, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use tower_http::compression::CompressionLayer;
use tower_http::cors::CorsLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::services::ServeDir;
use tower_http::timeout::TimeoutLayer;

/// The site: every route and layer, the same on both servers.
fn app() -> Router {
    let exe = std::env::current_exe().expect("the executable's path");
    let static_dir = exe.parent().expect("a directory").join("static");
    Router::new()
        .route("/", get(index))
        .route("/hello/{name}", get(hello).post(hello))
        .route("/echo", get(echo).post(echo).put(echo).delete(echo))
        .route("/files/{*rest}", get(files))
        .merge(api())
        .route("/form", post(form))
        .route("/cookies", get(cookies))
        .route("/redirect/{code}", get(redirect))
        .route("/status/{code}", get(status))
        .route("/etag", get(etag))
        .route("/stream", get(streamed))
        .route("/big", get(big))
        .route("/sse", get(sse))
        .route(
            "/upload",
            post(upload).layer(DefaultBodyLimit::max(64 * 1024)),
        )
        .route(
            "/upload-stream",
            post(upload_stream).layer(RequestBodyLimitLayer::new(32 * 1024)),
        )
        .route("/slow/{ms}", get(slow))
        .route("/transport", get(transport))
        .nest_service("/static", ServeDir::new(static_dir))
        .fallback(not_found)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(300),
        ))
        .layer(CompressionLayer::new())
}

/// The JSON API, with CORS for one other origin.
fn api() -> Router {
    let cors = CorsLayer::new()
        .allow_origin(HeaderValue::from_static("https://app.example"))
        .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
        .allow_credentials(true)
        .max_age(Duration::from_secs(600));
    Router::new()
        .route("/api/items", post(add_item))
        .route(
            "/api/items/{id}",
            get(item).put(put_item).delete(delete_item),
        )
        .layer(cors)
}

async fn index() -> Html<&'static str> {
    Html(
        "<!doctype html>\n<title>site</title>\n<form method=post action=/form>\n<input name=text>\n</form>\n",
    )
}

#[derive(Deserialize)]
struct Greeting {
    greeting: Option<String>,
}

async fn hello(Path(name): Path<String>, Query(q): Query<Greeting>) -> String {
    format!("{}, {name}!\n", q.greeting.as_deref().unwrap_or("Hello"))
}

/// What the application was asked: method, path, query, the headers a
/// client sets, and the body's length.
async fn echo(req: Request) -> String {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let mut out = format!(
        "{} {} query={:?}\n",
        parts.method,
        parts.uri.path(),
        parts.uri.query()
    );
    for name in [
        "user-agent",
        "accept-language",
        "x-custom",
        "authorization",
        "content-type",
    ] {
        for v in parts.headers.get_all(name) {
            out += &format!("{name}: {}\n", String::from_utf8_lossy(v.as_bytes()));
        }
    }
    out + &format!("body {} bytes\n", body.len())
}

async fn files(Path(rest): Path<String>, uri: Uri) -> String {
    format!("file {rest:?} at {}\n", uri.path())
}

#[derive(Serialize, Deserialize)]
struct Item {
    id: u32,
    name: String,
}

async fn item(Path(id): Path<u32>) -> Response {
    if id > 100 {
        let err = NoItem {
            error: "no such item",
            id,
        };
        return (StatusCode::NOT_FOUND, Json(err)).into_response();
    }
    Json(Item {
        id,
        name: format!("item {id}"),
    })
    .into_response()
}

#[derive(Serialize)]
struct NoItem {
    error: &'static str,
    id: u32,
}

async fn add_item(Json(item): Json<Item>) -> impl IntoResponse {
    let location = format!("/api/items/{}", item.id);
    (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(item),
    )
}

async fn put_item(Path(id): Path<u32>, Json(mut item): Json<Item>) -> Json<Item> {
    item.id = id;
    Json(item)
}

async fn delete_item(Path(_): Path<u32>) -> StatusCode {
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Note {
    text: String,
}

/// A form post: two cookies set, and a redirect (303) to the page.
async fn form(Form(note): Form<Note>) -> Response {
    let mut res = Redirect::to(&format!("/hello/{}", note.text.len())).into_response();
    let h = res.headers_mut();
    h.append(
        header::SET_COOKIE,
        HeaderValue::from_static("session=abc123; Path=/; HttpOnly"),
    );
    h.append(
        header::SET_COOKIE,
        HeaderValue::from_static("theme=dark; Path=/; Max-Age=3600"),
    );
    res
}

/// Every cookie the client sent, in order, from every `Cookie` header.
async fn cookies(headers: HeaderMap) -> String {
    let mut out = String::new();
    for v in headers.get_all(header::COOKIE) {
        for c in v.to_str().unwrap_or("").split(';') {
            out += &format!("{}\n", c.trim());
        }
    }
    out
}

async fn redirect(Path(code): Path<u16>) -> Response {
    match code {
        301 => Redirect::permanent("/hello/moved").into_response(),
        303 => Redirect::to("/hello/other").into_response(),
        307 => Redirect::temporary("/hello/temp").into_response(),
        _ => (
            StatusCode::FOUND,
            [(header::LOCATION, "/hello/found")],
            "found\n",
        )
            .into_response(),
    }
}

async fn status(Path(code): Path<u16>) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return status.into_response();
    }
    (status, format!("status {code}\n")).into_response()
}

/// An application-level conditional request: 304 when the client has it.
async fn etag(headers: HeaderMap) -> Response {
    let tag = "\"v1\"";
    let fresh = headers.get(header::IF_NONE_MATCH).is_some_and(|v| v == tag);
    if fresh {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response();
    }
    (
        [(header::ETAG, tag), (header::CACHE_CONTROL, "max-age=60")],
        "tagged\n",
    )
        .into_response()
}

/// A body of unknown length, produced in pieces with pauses between.
async fn streamed() -> Response {
    let pieces = stream::iter(0..5).then(|i| async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Ok::<_, std::io::Error>(Bytes::from(format!("piece {i} of a streamed body\n")))
    });
    (
        [(header::CONTENT_TYPE, "text/plain")],
        Body::from_stream(pieces),
    )
        .into_response()
}

async fn big() -> String {
    (0..4000)
        .map(|i| format!("line {i} of a large page\n"))
        .collect()
}

/// Four server-sent events, 150 ms apart.
async fn sse() -> impl IntoResponse {
    let events = stream::iter(0..4).then(|i| async move {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        let e = Event::default()
            .id(i.to_string())
            .event("tick")
            .data(format!("tick {i}\nline two"));
        Ok::<Event, std::convert::Infallible>(e)
    });
    ([("x-accel-buffering", "no")], Sse::new(events))
}

async fn upload(body: Bytes) -> String {
    let sum: u64 = body.iter().map(|&b| u64::from(b)).sum();
    format!("{} bytes, sum {sum}\n", body.len())
}

async fn upload_stream(body: Body) -> Response {
    let mut data = body.into_data_stream();
    let mut n = 0;
    while let Some(piece) = data.next().await {
        match piece {
            Ok(p) => n += p.len(),
            Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "too large\n").into_response(),
        }
    }
    format!("streamed {n} bytes\n").into_response()
}

async fn slow(Path(ms): Path<u64>) -> String {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("slept {ms} ms\n")
}

/// Which server answered: over FastCGI the request carries the params.
/// The one route whose answer differs by design (the differential test
/// checks that it sees this difference through every front end).
async fn transport(req: Request) -> String {
    match req.extensions().get::<fcgi_server::tower::RawParams>() {
        Some(_) => "fastcgi\n".to_owned(),
        None => "http\n".to_owned(),
    }
}

async fn not_found(uri: Uri) -> (StatusCode, String) {
    (
        StatusCode::NOT_FOUND,
        format!("no page at {}\n", uri.path()),
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let first = args.next();
    if first.as_deref() == Some("--http") {
        let addr = args.next().expect("--http HOST:PORT");
        let listener = tokio::net::TcpListener::bind(addr).await?;
        return axum::serve(listener, app()).await;
    }
    let mut server = fcgi_server::Server::new(fcgi_server::tower::handler(app()));
    if let Some(addr) = first {
        server = server.bind(addr);
    }
    server.run()
}
