//! The event-loop client: the crate's own `fcgi bench`, run as a process
//! of its own (as a web server is), its JSON summary read back.

use std::path::Path;
use std::process::{Command, Stdio};

use super::{Load, Scenario};

/// A figure of the JSON summary.
fn figure(json: &str, key: &str) -> f64 {
    let at = json
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("no {key} in {json:?}"));
    let rest = &json[at + key.len() + 3..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].parse().unwrap()
}

/// Drives `s.conns` connections to `sock` for `secs` seconds with
/// `fcgi bench`; `body` holds S5's request body. Any error it counted,
/// or a body of another length, fails the run.
pub(super) fn load(fcgi: &Path, sock: &Path, s: &Scenario, secs: f64, body: &Path) -> Load {
    let mut c = Command::new(fcgi);
    c.args(["bench", "--json", "--script-name", "/app"]).args([
        "-c",
        &s.conns.to_string(),
        "--duration",
        &secs.to_string(),
    ]);
    if !s.keep_conn {
        c.arg("--new-conn");
    }
    if s.body_len > 0 {
        c.arg("-d").arg(format!("@{}", body.display()));
    }
    c.arg(format!("unix:{}", sock.display()));
    c.arg(if s.query.is_empty() {
        "/app/bench".to_owned()
    } else {
        format!("/app/bench?{}", s.query)
    });
    let out = c.stderr(Stdio::null()).output().expect("fcgi bench");
    let json = String::from_utf8_lossy(&out.stdout).into_owned();
    let f = |k: &str| figure(&json, k);
    assert_eq!(
        f("total"),
        0.0,
        "{}: fcgi bench counted errors: {json}",
        s.name
    );
    assert!(
        out.status.success(),
        "{}: fcgi bench failed: {json}",
        s.name
    );
    let expect = s.expect_len as f64;
    assert_eq!(
        (f("body_min"), f("body_max")),
        (expect, expect),
        "{}",
        s.name
    );
    Load {
        requests: f("requests") as u64,
        body_bytes: f("body_bytes") as u64,
        secs: f("seconds"),
        latencies: Vec::new(),
        percentiles: Some((f("p50"), f("p99"))),
        per_conn: Vec::new(),
    }
}
