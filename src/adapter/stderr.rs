//! `FCGI_STDERR` for adapter handlers: a writer that any thread may hold
//! (it lives in the request extensions, which must be `'static`), over a
//! bounded buffer that the worker drains into the response's error stream.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Text beyond this much, written faster than the worker drains it, is
/// dropped (and the number of bytes dropped is said).
const LIMIT: usize = 64 * 1024;

/// A writer for the request's `FCGI_STDERR` stream, which the web server
/// writes to its error log.
///
/// Both adapters put one in the request extensions: get it with
/// `req.extensions().get::<Stderr>()`, or, in axum, with the
/// `Extension<Stderr>` extractor. It is `Clone + Send + Sync + 'static`:
/// a task spawned by the handler may keep a clone. What is written reaches
/// the web server with the response (as the response is written, and at
/// its end); up to 64 KiB may wait, more is dropped, and the drop is said.
/// Text written after the request has ended goes to the process's standard
/// error instead.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "http")] {
/// use std::io::Write;
/// use fcgi_server::http::{Body, Stderr};
///
/// fn handle(req: http::Request<Body<'_>>) -> http::Response<&'static str> {
///     if let Some(err) = req.extensions().get::<Stderr>() {
///         let _ = writeln!(&*err, "slow query: {}", req.uri());
///     }
///     http::Response::new("ok\n")
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct Stderr {
    shared: Arc<Shared>,
}

struct Shared {
    /// Set when `buf` holds text, so that the worker need not lock to know.
    pending: AtomicBool,
    buf: Mutex<Buf>,
}

#[derive(Default)]
struct Buf {
    text: Vec<u8>,
    dropped: usize,
    /// The request has ended: text goes to the process's stderr.
    ended: bool,
}

thread_local! {
    /// The worker's last `Shared`, reused when no clone of it is left.
    static CACHED: RefCell<Option<Arc<Shared>>> = const { RefCell::new(None) };
}

impl Stderr {
    /// A writer for the next request served on this thread.
    pub(crate) fn for_request() -> Stderr {
        let reused = CACHED.with(|c| {
            let mut c = c.borrow_mut();
            match c.as_mut() {
                Some(shared) if Arc::strong_count(shared) == 1 => Some(Arc::clone(shared)),
                _ => None,
            }
        });
        let shared = reused.unwrap_or_else(|| {
            let shared = Arc::new(Shared {
                pending: AtomicBool::new(false),
                buf: Mutex::new(Buf::default()),
            });
            CACHED.with(|c| *c.borrow_mut() = Some(Arc::clone(&shared)));
            shared
        });
        let stderr = Stderr { shared };
        stderr.lock().ended = false;
        stderr
    }

    fn lock(&self) -> MutexGuard<'_, Buf> {
        self.shared.buf.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the text written so far to `out`; says whether there was any.
    pub(crate) fn drain(&self, out: &mut impl Write) -> io::Result<bool> {
        if !self.shared.pending.swap(false, Ordering::Acquire) {
            return Ok(false);
        }
        let mut buf = self.lock();
        let result = out.write_all(&buf.text);
        buf.text.clear();
        if buf.text.capacity() > LIMIT {
            buf.text = Vec::new();
        }
        if buf.dropped > 0 {
            let dropped = std::mem::take(&mut buf.dropped);
            writeln!(
                out,
                "fcgi-server: {dropped} bytes of this request's error output were dropped"
            )?;
        }
        result.map(|()| true)
    }

    /// Drains into `out`; from now on, text goes to the process's stderr.
    pub(crate) fn end(&self, out: &mut impl Write) -> io::Result<()> {
        let result = self.drain(out);
        self.lock().ended = true;
        result.map(drop)
    }
}

impl Write for &Stderr {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut buf = self.lock();
        if buf.ended {
            drop(buf);
            return io::stderr().write(data);
        }
        let room = LIMIT.saturating_sub(buf.text.len());
        let take = data.len().min(room);
        buf.text.extend_from_slice(&data[..take]);
        buf.dropped += data.len() - take;
        self.shared.pending.store(true, Ordering::Release);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for Stderr {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        (&*self).write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for Stderr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stderr").finish_non_exhaustive()
    }
}
