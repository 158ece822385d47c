//! An example application as a process of its own on a fresh unix socket,
//! its standard error read line by line as it comes: for tests of what
//! the server logs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::frontend::Proc;
use super::{TempDir, connect_retry, example};

pub struct Logged {
    pub proc: Proc,
    pub addr: String,
    pub dir: TempDir,
    lines: Receiver<String>,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl Logged {
    /// Starts examples/`name` with `env`, and waits until it serves.
    pub fn start(name: &str, env: &[(&str, &str)]) -> Logged {
        let dir = TempDir::new("logged");
        let addr = dir.path("app.sock").to_str().unwrap().to_owned();
        let mut cmd = Command::new(example(name));
        cmd.arg(&addr).stdin(Stdio::null()).stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        drop(connect_retry(&addr));
        Logged {
            proc: Proc(child),
            addr,
            dir,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first line (from the start) that `matches`, waiting up to
    /// `limit` for it.
    pub fn wait_for(&mut self, limit: Duration, matches: impl Fn(&str) -> bool) -> Option<String> {
        if let Some(l) = self.seen.iter().find(|l| matches(l)) {
            return Some(l.clone());
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if matches(&line) {
                        return Some(line);
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Stops the process (SIGTERM) and returns every line it wrote.
    pub fn stop(mut self) -> Vec<String> {
        self.proc.stop();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        self.seen
    }
}

/// The value of field `key` in an event line (quoted values unquoted,
/// their escapes kept).
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line[at..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut end = 0;
        let bytes = quoted.as_bytes();
        while end < bytes.len() && bytes[end] != b'"' {
            end += if bytes[end] == b'\\' { 2 } else { 1 };
        }
        Some(&quoted[..end.min(quoted.len())])
    } else {
        Some(rest.split(' ').next().unwrap_or(""))
    }
}
