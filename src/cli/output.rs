//! Where a response goes: the body to stdout byte for byte (after the
//! status line and headers with `-i`), the application's FCGI_STDERR to
//! stderr line by line, each line marked as the application's.

use std::io::{self, Write};

use crate::client::{ResponseHead, ResponseSink};

/// The mark before each line of the application's FCGI_STDERR.
pub(crate) const STDERR_MARK: &str = "app (FCGI_STDERR): ";

/// A [`ResponseSink`] that prints.
#[derive(Debug, Default)]
pub(crate) struct Output {
    /// Print the status line and the headers before the body.
    include: bool,
    /// Print nothing of the response (`health`).
    quiet: bool,
    pub(crate) head: Option<ResponseHead>,
    pub(crate) body: u64,
    /// An unfinished line of FCGI_STDERR.
    line: Vec<u8>,
    /// Why stdout could not be written, when it could not.
    pub(crate) failed: Option<io::Error>,
}

impl Output {
    pub(crate) fn new(include: bool, quiet: bool) -> Output {
        Output {
            include,
            quiet,
            ..Output::default()
        }
    }

    /// Forgets the last response, before the next one on the connection.
    pub(crate) fn next_response(&mut self) {
        self.head = None;
        self.body = 0;
    }

    fn print(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.quiet {
            return Ok(());
        }
        let mut out = io::stdout().lock();
        let done = out.write_all(bytes).and_then(|()| out.flush());
        if let Err(e) = &done {
            self.failed = Some(io::Error::new(e.kind(), e.to_string()));
        }
        done
    }

    /// Prints the last FCGI_STDERR line if it had no newline.
    pub(crate) fn finish(&mut self) {
        if !self.line.is_empty() {
            self.line.push(b'\n');
            let line = std::mem::take(&mut self.line);
            stderr_line(&line);
        }
    }
}

fn stderr_line(line: &[u8]) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(STDERR_MARK.as_bytes());
    let _ = err.write_all(line);
}

/// The status line and headers as `-i` prints them.
fn head_text(head: &ResponseHead) -> String {
    let mut s = format!("HTTP/1.1 {}", head.status);
    if !head.reason.is_empty() {
        s = format!("{s} {}", head.reason);
    }
    s.push_str("\r\n");
    for (name, value) in &head.headers {
        s = format!("{s}{name}: {value}\r\n");
    }
    s + "\r\n"
}

impl ResponseSink for Output {
    fn head(&mut self, head: &ResponseHead) -> io::Result<()> {
        self.head = Some(head.clone());
        if self.include {
            self.print(head_text(head).as_bytes())?;
        }
        Ok(())
    }

    fn body(&mut self, piece: &[u8]) -> io::Result<()> {
        self.body += piece.len() as u64;
        self.print(piece)
    }

    fn stderr(&mut self, piece: &[u8]) -> io::Result<()> {
        self.line.extend_from_slice(piece);
        if let Some(end) = self.line.iter().rposition(|&b| b == b'\n') {
            let rest = self.line.split_off(end + 1);
            for line in self.line.split_inclusive(|&b| b == b'\n') {
                stderr_line(line);
            }
            self.line = rest;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_text_is_a_status_line_and_headers() {
        let head = ResponseHead {
            status: 404,
            reason: "Not Found".into(),
            headers: vec![("Content-Type".into(), "text/plain".into())],
        };
        assert_eq!(
            head_text(&head),
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\n"
        );
        let head = ResponseHead {
            status: 200,
            ..ResponseHead::default()
        };
        assert_eq!(head_text(&head), "HTTP/1.1 200\r\n\r\n");
    }
}
