//! Tower services over FastCGI (cargo feature `tower`): an axum `Router`,
//! or any `tower_service::Service<http::Request<Body>>` whose response
//! body is an `http_body::Body`.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let app = Router::new().route("/", get(|| async { "Hello, World!\n" }));
//!     fcgi_server::Server::new(fcgi_server::tower::handler(app)).run()
//! }
//! ```
//!
//! The request is made from the CGI environment exactly as the `http`
//! adapter makes it, with the same extensions and the same choice of path
//! (the path below the mount point unless
//! [`Builder::full_path`] says otherwise): see [`crate::http`].
//!
//! # Where the futures run
//!
//! Each request's future runs on the worker thread that serves the
//! request, which polls it and sleeps while it waits, inside the context of
//! one tokio runtime shared by all workers. So `tokio::spawn`,
//! `tokio::time` and `tokio::fs` work in handlers, and tokio I/O objects
//! made at start-up (a database pool) work from every worker: the
//! runtime's own threads drive their I/O. The runtime is, in this order:
//! the one given to [`Builder::runtime`]; the one [`handler`] is called in,
//! when that is a multi-thread runtime (as in `#[tokio::main]`); or one
//! the crate starts on first use. A current-thread runtime cannot be used:
//! it drives I/O and timers only while its thread waits in `block_on`, and
//! that thread is in [`Server::run`](crate::Server::run).
//!
//! Futures are never moved between threads, so neither the service's
//! future nor the response body needs to be `Send`.
//!
//! # Bodies
//!
//! The request [`Body`] is read from the web server only as the service
//! polls it, one piece of up to 64 KiB at a time, so an upload of any size
//! passes in constant memory. It may be moved into a spawned task; once
//! the request has ended (its response is complete), polling it gives an
//! error rather than waiting forever.
//!
//! Each data frame of the response body is written as it comes; when the
//! body has no next frame ready, what was written is sent to the web
//! server, so a streaming response (server-sent events, behind nginx with
//! `fastcgi_buffering off`) reaches the client frame by frame. Trailers
//! are dropped; hop-by-hop headers are not passed on; a body of exact
//! length gets a `Content-Length` unless the service set one. 204, 304
//! and HEAD answers are framed as `axum::serve` (hyper) frames them: see
//! [the `http` adapter](crate::http#the-response).
//!
//! A service that fails (returns `Err`, panics, or its body fails before
//! anything was sent) gives a 500 response, and the message goes to the
//! web server's error log.

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::io::{self, Read, Write};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use bytes::{Buf, Bytes};
use http_body::{Frame, SizeHint};
use tokio::runtime::{Handle, Runtime, RuntimeFlavor};
use tower_service::Service;

pub use super::ext::{Https, RawParams, RemoteAddr, ScriptName};
pub use super::stderr::Stderr;
use super::{Finish, RoutePath, no_body, refuse, request_parts, write_head};
use crate::{Request, Response};

/// Errors as tower and http-body pass them.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The largest piece of request body handed to the service at once.
const PIECE: usize = 64 * 1024;

/// Serves a tower service (an axum `Router`) with the default options; see
/// the [module docs](self).
pub fn handler<S, B>(
    service: S,
) -> impl Fn(&mut Request<'_>, &mut Response<'_>) -> io::Result<()> + Send + Sync + 'static
where
    S: Service<::http::Request<Body>, Response = ::http::Response<B>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    Builder::new().handler(service)
}

/// Options of the tower adapter; [`handler`] uses the defaults.
#[derive(Clone, Debug, Default)]
pub struct Builder {
    route: RoutePath,
    runtime: Option<Handle>,
}

impl Builder {
    /// The defaults: the path below the mount point, and the runtime that
    /// [`Builder::handler`] finds (see [Where the futures run](self#where-the-futures-run)).
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Whether the request's URI holds the whole path the client asked
    /// for (`true`) or the path below the mount point (`false`, the
    /// default); see [`crate::http::Builder::full_path`].
    pub fn full_path(mut self, on: bool) -> Builder {
        self.route = RoutePath::full_if(on);
        self
    }

    /// Runs the futures in the context of the runtime of `handle`.
    ///
    /// # Errors
    ///
    /// A current-thread runtime is refused (`InvalidInput`): it drives
    /// I/O and timers only while its own thread waits in `block_on`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// let runtime = tokio::runtime::Builder::new_multi_thread()
    ///     .worker_threads(2)
    ///     .enable_all()
    ///     .build()?;
    /// let app = axum::Router::new();
    /// let handler = fcgi_server::tower::Builder::new()
    ///     .runtime(runtime.handle().clone())?
    ///     .handler(app);
    /// fcgi_server::Server::new(handler).run()
    /// # }
    /// ```
    pub fn runtime(mut self, handle: Handle) -> io::Result<Builder> {
        if handle.runtime_flavor() == RuntimeFlavor::CurrentThread {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "fcgi_server::tower: a current-thread tokio runtime cannot serve requests: \
                 it drives I/O and timers only while its own thread waits in block_on; \
                 use a multi-thread runtime (Builder::new_multi_thread, or #[tokio::main] \
                 without flavor = \"current_thread\")",
            ));
        }
        self.runtime = Some(handle);
        Ok(self)
    }

    /// The server's handler for `service`.
    pub fn handler<S, B>(
        self,
        service: S,
    ) -> impl Fn(&mut Request<'_>, &mut Response<'_>) -> io::Result<()> + Send + Sync + 'static
    where
        S: Service<::http::Request<Body>, Response = ::http::Response<B>>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body,
        B::Error: Into<BoxError>,
    {
        let route = self.route;
        let runtime = self.runtime.or_else(|| {
            Handle::try_current()
                .ok()
                .filter(|h| h.runtime_flavor() != RuntimeFlavor::CurrentThread)
        });
        move |req: &mut Request<'_>, res: &mut Response<'_>| {
            let handle = match &runtime {
                Some(h) => h,
                None => shared_runtime()?,
            };
            serve(&service, handle, route, req, res)
        }
    }
}

/// The runtime the crate starts when it is given none.
fn shared_runtime() -> io::Result<&'static Handle> {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt.handle());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("fcgi-server-tokio")
        .build()?;
    Ok(RUNTIME.get_or_init(|| rt).handle())
}

/// One request through `service`.
fn serve<S, B>(
    service: &S,
    handle: &Handle,
    route: RoutePath,
    req: &mut Request<'_>,
    res: &mut Response<'_>,
) -> io::Result<()>
where
    S: Service<::http::Request<Body>, Response = ::http::Response<B>> + Clone,
    S::Error: Into<BoxError>,
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let stderr = Stderr::for_request();
    let parts = match request_parts(req, route, stderr.clone()) {
        Ok(parts) => parts,
        Err(why) => return refuse(res, &why),
    };
    let is_head = parts.method() == ::http::Method::HEAD;
    let feed = Feed::for_request(req.content_length());
    // Dropped last: a body still held anywhere fails from then on.
    let _end = EndFeed(&feed);
    let _context = handle.enter();
    let request = parts.map(|()| Body {
        feed: Arc::clone(&feed),
    });
    let mut driver = Driver {
        req,
        out: Finish { res, stderr },
        feed: &feed,
        unflushed: false,
    };
    let mut service = service.clone();
    driver
        .run(poll_fn(|cx| service.poll_ready(cx)))?
        .map_err(io::Error::other)?;
    let response = driver
        .run(service.call(request))?
        .map_err(io::Error::other)?;
    let (head, body) = response.into_parts();
    let len = body.size_hint().exact();
    write_head(driver.out.res, is_head, head.status, &head.headers, len);
    if is_head || no_body(head.status) {
        // No body goes out; the service's is dropped unread, as hyper does.
        return driver.out.end();
    }
    write_body(&mut driver, body)?;
    driver.out.end()
}

/// Writes each data frame of `body` as it comes (trailers are dropped).
fn write_body<B>(driver: &mut Driver<'_, '_, '_, '_>, body: B) -> io::Result<()>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let mut body = pin!(body);
    while let Some(frame) = driver.run(poll_fn(|cx| body.as_mut().poll_frame(cx)))? {
        let Ok(mut data) = frame.map_err(io::Error::other)?.into_data() else {
            continue; // trailers
        };
        while data.has_remaining() {
            let chunk = data.chunk();
            driver.out.res.write_all(chunk)?;
            let n = chunk.len();
            data.advance(n);
        }
        driver.unflushed = true;
    }
    Ok(())
}

/// Polls futures on the worker thread, and does the worker's part while
/// they wait: reads request body the service asks for, passes on error
/// output, and sends response output that waits in the buffer.
struct Driver<'d, 'q, 'r, 'a> {
    req: &'d mut Request<'q>,
    out: Finish<'r, 'a>,
    feed: &'d Feed,
    /// Response body was written since the last send.
    unflushed: bool,
}

impl Driver<'_, '_, '_, '_> {
    fn run<F: Future>(&mut self, fut: F) -> io::Result<F::Output> {
        let mut fut = pin!(fut);
        let waker = WAKER.with(Waker::clone);
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                return Ok(out);
            }
            if self.out.stderr.drain(&mut self.out.res.stderr())? {
                self.out.res.stderr().flush()?;
            }
            if self.feed.demand.swap(false, Ordering::AcqRel) {
                self.feed.fill(self.req);
            } else if self.unflushed {
                self.unflushed = false;
                self.out.res.flush()?;
            } else {
                thread::park();
            }
        }
    }
}

/// Wakes a worker thread parked in [`Driver::run`].
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    /// This thread's waker, made once.
    static WAKER: Waker = Waker::from(Arc::new(Unpark(thread::current())));
    /// The worker's last feed, reused when no body holds it any more.
    static CACHED_FEED: RefCell<Option<Arc<Feed>>> = const { RefCell::new(None) };
}

/// A request body's shared state, between the [`Body`] (wherever the
/// service polls it) and the worker thread that reads the web server.
struct Feed {
    /// The body asked for more: the worker is to read a piece.
    demand: AtomicBool,
    /// The worker thread's waker.
    worker: Waker,
    state: Mutex<FeedState>,
}

#[derive(Default)]
struct FeedState {
    /// A piece read, not yet taken.
    piece: Option<Bytes>,
    /// The body has ended.
    eof: bool,
    /// Reading failed.
    error: Option<(io::ErrorKind, String)>,
    /// The request has ended: nothing more will be read.
    ended: bool,
    /// Bytes still to come, from `CONTENT_LENGTH`.
    left: Option<u64>,
    /// The task waiting for the next piece.
    waker: Option<Waker>,
}

impl Feed {
    fn for_request(content_length: Option<u64>) -> Arc<Feed> {
        let reused = CACHED_FEED.with(|c| {
            c.borrow()
                .as_ref()
                .filter(|f| Arc::strong_count(f) == 1)
                .map(Arc::clone)
        });
        let feed = reused.unwrap_or_else(|| {
            let feed = Arc::new(Feed {
                demand: AtomicBool::new(false),
                worker: WAKER.with(Waker::clone),
                state: Mutex::new(FeedState::default()),
            });
            CACHED_FEED.with(|c| *c.borrow_mut() = Some(Arc::clone(&feed)));
            feed
        });
        feed.demand.store(false, Ordering::Relaxed);
        *feed.lock() = FeedState {
            left: content_length,
            ..FeedState::default()
        };
        feed
    }

    fn lock(&self) -> MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the next piece of the body from the web server (blocking)
    /// and hands it to the body.
    fn fill(&self, req: &mut Request<'_>) {
        let left = self.lock().left;
        let want = left.map_or(PIECE, |l| l.min(PIECE as u64) as usize);
        let mut piece = Vec::with_capacity(want);
        let read = req.take(PIECE as u64).read_to_end(&mut piece);
        let mut st = self.lock();
        match read {
            Ok(0) => st.eof = true,
            Ok(n) => {
                st.left = st.left.map(|l| l.saturating_sub(n as u64));
                st.piece = Some(Bytes::from(piece));
            }
            Err(e) => st.error = Some((e.kind(), e.to_string())),
        }
        let waker = st.waker.take();
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Ends a request's feed when the request ends, however it ends.
struct EndFeed<'f>(&'f Feed);

impl Drop for EndFeed<'_> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.ended = true;
        let waker = st.waker.take();
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The request body the service gets: an `http_body::Body` of `Bytes`
/// pieces read from the web server as it is polled.
///
/// `Send + Sync + 'static`: it may be moved into a spawned task. Once the
/// request has ended, polling it gives an error.
pub struct Body {
    feed: Arc<Feed>,
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let mut st = self.feed.lock();
        if let Some(piece) = st.piece.take() {
            return Poll::Ready(Some(Ok(Frame::data(piece))));
        }
        if let Some((kind, msg)) = &st.error {
            return Poll::Ready(Some(Err(io::Error::new(*kind, msg.clone()))));
        }
        if st.eof {
            return Poll::Ready(None);
        }
        if st.ended {
            return Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the request this body belongs to has ended",
            ))));
        }
        match &mut st.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        drop(st);
        self.feed.demand.store(true, Ordering::Release);
        self.feed.worker.wake_by_ref();
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        let st = self.feed.lock();
        st.eof && st.piece.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let st = self.feed.lock();
        let queued = st.piece.as_ref().map_or(0, |p| p.len() as u64);
        match st.left {
            Some(left) if !st.eof => SizeHint::with_exact(left + queued),
            _ if st.eof => SizeHint::with_exact(queued),
            _ => SizeHint::default(),
        }
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body").finish_non_exhaustive()
    }
}
