//! The access log: one line per request, appended to a file.
//!
//! ```text
//! time=2025-05-01T12:00:00.123Z remote=127.0.0.1 method=GET uri=/app/items?page=2 status=200 in=0 out=5120 duration=0.001234 outcome=ok
//! ```
//!
//! `time` is when the request began (UTC), `remote` the client's address
//! as the web server sent it (`REMOTE_ADDR`), `in` and `out` the bytes of
//! request and response body, `duration` seconds, `outcome` one of `ok`,
//! `error` (the handler returned an error), `panic`, `aborted` (by the web
//! server) and `timeout` (cut off at the request timeout). Values are
//! quoted as in the server's event lines.
//!
//! Each worker formats its lines in a buffer of its own and writes each
//! with one `write(2)` to a descriptor opened with `O_APPEND`: no lock,
//! and whole lines even with several processes appending to one file.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use crate::observe::log::{self, Utc, push_value};

/// An access log open for appending.
#[derive(Debug)]
pub(crate) struct AccessLog {
    file: File,
    path: PathBuf,
    /// A write failed (and was reported).
    failed: AtomicBool,
}

/// One request, as its line gives it.
#[derive(Debug)]
pub(crate) struct Entry<'a> {
    pub(crate) time: SystemTime,
    pub(crate) remote: &'a [u8],
    pub(crate) method: &'a [u8],
    pub(crate) uri: &'a [u8],
    pub(crate) status: u16,
    /// Request body bytes read, response body bytes written.
    pub(crate) bytes: (u64, u64),
    pub(crate) duration: Duration,
    pub(crate) outcome: &'static str,
}

impl AccessLog {
    /// Opens (creating, mode 0640) `path` for appending.
    pub(crate) fn open(path: &Path) -> io::Result<AccessLog> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .open(path)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot open the access log {}: {e}", path.display()),
                )
            })?;
        Ok(AccessLog {
            file,
            path: path.to_owned(),
            failed: AtomicBool::new(false),
        })
    }

    /// Formats `entry` into `line` (the worker's buffer) and appends it.
    pub(crate) fn write(&self, line: &mut String, entry: &Entry<'_>) {
        line.clear();
        format_line(line, entry);
        if let Err(e) = (&self.file).write(line.as_bytes()) {
            if !self.failed.swap(true, Ordering::Relaxed) {
                let msg = format!(
                    "cannot write to the access log {}: {e}; not reported again",
                    self.path.display()
                );
                log::error("access_log_failed", &msg);
            }
        }
    }
}

/// The line for `e`, newline included.
fn format_line(line: &mut String, e: &Entry<'_>) {
    let _ = write!(line, "time={} remote=", Utc(e.time));
    push_value(line, &String::from_utf8_lossy(e.remote));
    line.push_str(" method=");
    push_value(line, &String::from_utf8_lossy(e.method));
    line.push_str(" uri=");
    push_value(line, &String::from_utf8_lossy(e.uri));
    let _ = writeln!(
        line,
        " status={} in={} out={} duration={}.{:06} outcome={}",
        e.status,
        e.bytes.0,
        e.bytes.1,
        e.duration.as_secs(),
        e.duration.subsec_micros(),
        e.outcome
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn line_format() {
        let entry = Entry {
            time: UNIX_EPOCH + Duration::from_millis(1_500),
            remote: b"::1",
            method: b"POST",
            uri: b"/a b?q=\"x\"\n",
            status: 201,
            bytes: (11, 2048),
            duration: Duration::from_micros(2_000_123),
            outcome: "ok",
        };
        let mut line = String::new();
        format_line(&mut line, &entry);
        assert_eq!(
            line,
            "time=1970-01-01T00:00:01.500Z remote=::1 method=POST \
             uri=\"/a b?q=\\\"x\\\"\\n\" status=201 in=11 out=2048 duration=2.000123 outcome=ok\n"
        );
    }
}
