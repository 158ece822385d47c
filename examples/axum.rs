//! A small axum application served over FastCGI: path parameters, a query,
//! a JSON API, an HTML form, a cookie, shared state, a connection made at
//! start-up and used by every worker, a streamed upload and a streaming
//! response. The `Router` is plain axum; only the last line of `main`
//! is fcgi-server's.
//!
//! Build it (cargo feature `tower`) and deploy it as `app.fcgi`:
//!
//! ```text
//! cargo build --release --features tower --example axum
//! cp target/release/examples/axum /srv/yourapplication/app.fcgi
//! ```
//!
//! Each front end, with its config from `deploy/`:
//!
//! - nginx (`nginx-prefix.conf` or `nginx-root.conf`, and
//!   `fastcgi_buffering off` for `/stream` to stream):
//!   `app.fcgi /run/yourapplication/fcgi.sock` (or systemd:
//!   `yourapplication.socket` + `.service`, or `spawn-fcgi.sh`);
//! - lighttpd (`lighttpd-prefix.conf`, `lighttpd-root.conf`): it starts
//!   `app.fcgi` itself (`bin-path`);
//! - Apache mod_fcgid (`apache-fcgid.conf`): it starts `app.fcgi` itself;
//!   on shared hosting, `deploy/.htaccess` next to `app.fcgi`;
//! - Apache mod_proxy_fcgi (`apache-proxy-fcgi-prefix.conf`,
//!   `apache-proxy-fcgi-root.conf`), Caddy (`caddy-prefix.Caddyfile`,
//!   `caddy-root.Caddyfile`): `app.fcgi /run/yourapplication/fcgi.sock`;
//! - h2o (`h2o.conf`): it starts `app.fcgi` itself (`fastcgi.spawn`).
//!
//! Run by hand, it answers one request as CGI:
//! `REQUEST_METHOD=GET PATH_INFO=/hello/you ./app.fcgi`.
//!
//! The routes (below the mount point, wherever the application is mounted):
//!
//! | route | what |
//! |---|---|
//! | `GET /` | an HTML page with a form |
//! | `POST /notes` | the form: stores a note, sets a cookie, redirects |
//! | `GET /hello/{name}?greeting=Hi` | a path parameter and a query |
//! | `GET /api/notes/{id}`, `POST /api/notes` | JSON out, JSON in |
//! | `GET /cookies` | the `Cookie` header the application got |
//! | `GET /visits` | a counter behind a connection made at start-up |
//! | `POST /upload` | the body's length and FNV-1a hash, read as it streams |
//! | `GET /stream?n=5` | n server-sent events, 100 ms apart |
//! | `GET /panic` | a handler that panics (a 500; the server goes on) |
//! | `GET /where` | the path the application routes on, and its mount point |

use std::future::poll_fn;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Form, Json, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use fcgi_server::tower::{ScriptName, Stderr};
use http_body::{Body as _, Frame};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// What every request shares: the notes, and the connection to the
/// counter service (a stand-in for a database connection or pool).
#[derive(Clone)]
struct AppState {
    notes: Arc<Mutex<Vec<Note>>>,
    counter: Arc<tokio::sync::Mutex<BufReader<UnixStream>>>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Note {
    text: String,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let (ours, theirs) = UnixStream::pair()?;
    tokio::spawn(counter_service(theirs));
    let state = AppState {
        notes: Arc::new(Mutex::new(Vec::new())),
        counter: Arc::new(tokio::sync::Mutex::new(BufReader::new(ours))),
    };
    let app = Router::new()
        .route("/", get(index))
        .route("/notes", post(add_note))
        .route("/hello/{name}", get(hello))
        .route("/api/notes", post(api_add_note))
        .route("/api/notes/{id}", get(api_note))
        .route("/cookies", get(cookies))
        .route("/visits", get(visits))
        .route("/upload", post(upload))
        .route("/stream", get(stream))
        .route("/panic", get(panics))
        .route("/where", get(where_am_i))
        .with_state(state);
    let mut server = fcgi_server::Server::new(fcgi_server::tower::handler(app));
    if let Some(addr) = std::env::args().nth(1) {
        server = server.bind(addr);
    }
    server.run()
}

async fn index(
    State(state): State<AppState>,
    Extension(mount): Extension<ScriptName>,
) -> Html<String> {
    let notes = state
        .notes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let items: String = notes
        .iter()
        .map(|n| format!("<li>{}</li>", escape(&n.text)))
        .collect();
    let mount = mount.as_str();
    Html(format!(
        "<!doctype html><title>Notes</title><ul>{items}</ul>\
         <form method=post action=\"{mount}/notes\"><input name=text><button>Add</button></form>"
    ))
}

async fn add_note(
    State(state): State<AppState>,
    Extension(mount): Extension<ScriptName>,
    Form(note): Form<Note>,
) -> Response {
    let cookie = format!("last_note={}; Path=/; HttpOnly", cookie_safe(&note.text));
    state
        .notes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(note);
    let to = format!("{}/", mount.as_str());
    ([(header::SET_COOKIE, cookie)], Redirect::to(&to)).into_response()
}

#[derive(Deserialize)]
struct Greeting {
    greeting: Option<String>,
}

async fn hello(Path(name): Path<String>, Query(q): Query<Greeting>) -> String {
    let greeting = q.greeting.as_deref().unwrap_or("Hello");
    format!("{greeting}, {name}!\n")
}

#[derive(Serialize)]
struct Stored {
    id: usize,
    text: String,
}

async fn api_add_note(State(state): State<AppState>, Json(note): Json<Note>) -> impl IntoResponse {
    let mut notes = state.notes.lock().unwrap_or_else(|e| e.into_inner());
    notes.push(note.clone());
    let stored = Stored {
        id: notes.len() - 1,
        text: note.text,
    };
    (StatusCode::CREATED, Json(stored))
}

async fn api_note(State(state): State<AppState>, Path(id): Path<usize>) -> Response {
    let notes = state.notes.lock().unwrap_or_else(|e| e.into_inner());
    match notes.get(id) {
        Some(n) => Json(Stored {
            id,
            text: n.text.clone(),
        })
        .into_response(),
        None => {
            let error = ApiError {
                error: "no such note",
            };
            (StatusCode::NOT_FOUND, Json(error)).into_response()
        }
    }
}

#[derive(Serialize)]
struct ApiError {
    error: &'static str,
}

/// The `Cookie` headers as the application got them, one per line.
async fn cookies(headers: HeaderMap) -> String {
    headers
        .get_all(header::COOKIE)
        .iter()
        .map(|v| format!("{}\n", String::from_utf8_lossy(v.as_bytes())))
        .collect()
}

#[derive(Serialize)]
struct Visit {
    count: u64,
    /// The worker thread that served this request.
    worker: String,
}

/// Asks the counter service, over the connection made at start-up.
async fn visits(
    State(state): State<AppState>,
    Extension(stderr): Extension<Stderr>,
) -> Result<Json<Visit>, StatusCode> {
    let mut conn = state.counter.lock().await;
    let mut line = String::new();
    let asked = async {
        conn.get_mut().write_all(b"INCR\n").await?;
        conn.read_line(&mut line).await
    };
    if let Err(e) = asked.await {
        let _ = writeln!(&stderr, "the counter service failed: {e}");
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    let count = line.trim().parse().map_err(|_| StatusCode::BAD_GATEWAY)?;
    let worker = std::thread::current().name().unwrap_or("?").to_owned();
    Ok(Json(Visit { count, worker }))
}

/// The counter service: answers each `INCR` line with the new count.
async fn counter_service(conn: UnixStream) {
    let mut conn = BufReader::new(conn);
    let mut count = 0u64;
    let mut line = String::new();
    while conn.read_line(&mut line).await.is_ok_and(|n| n > 0) {
        count += 1;
        line.clear();
        if conn
            .get_mut()
            .write_all(format!("{count}\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

#[derive(Serialize)]
struct Uploaded {
    bytes: u64,
    fnv1a: String,
}

/// Reads the body frame by frame as it arrives, never whole.
async fn upload(body: Body) -> Result<Json<Uploaded>, StatusCode> {
    let mut body = body;
    let (mut bytes, mut hash) = (0u64, 0xcbf2_9ce4_8422_2325u64);
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|_| StatusCode::BAD_REQUEST)?;
        if let Some(data) = frame.data_ref() {
            bytes += data.len() as u64;
            for &b in data.iter() {
                hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    Ok(Json(Uploaded {
        bytes,
        fnv1a: format!("{hash:016x}"),
    }))
}

#[derive(Deserialize)]
struct Count {
    n: Option<u32>,
}

/// `n` server-sent events, 100 ms apart, each sent as it is made.
async fn stream(Query(c): Query<Count>) -> Response {
    let ticks = Ticks {
        left: c.n.unwrap_or(5),
        sent: 0,
        interval: every_100_ms(),
    };
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::new(ticks),
    )
        .into_response()
}

/// Ticks 100 ms apart, also when one comes late (no burst to catch up).
fn every_100_ms() -> tokio::time::Interval {
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}

/// A body that yields one event per tick of `interval`.
struct Ticks {
    left: u32,
    sent: u32,
    interval: tokio::time::Interval,
}

impl http_body::Body for Ticks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        if self.interval.poll_tick(cx).is_pending() {
            return Poll::Pending;
        }
        self.left -= 1;
        self.sent += 1;
        let event = format!("data: tick {}\n\n", self.sent);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(event)))))
    }
}

/// What a deployment looks like from inside: the path the `Router` sees
/// (below the mount point) and the mount point.
async fn where_am_i(uri: Uri, Extension(mount): Extension<ScriptName>) -> String {
    format!("path {} mount {}\n", uri.path(), mount.as_str())
}

async fn panics() -> &'static str {
    panic!("the /panic route panics")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A cookie value may not hold `;`, `,`, spaces, quotes or control bytes.
fn cookie_safe(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .collect()
}
