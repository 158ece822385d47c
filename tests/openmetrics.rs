//! The OpenMetrics page passes a real parser: Python `prometheus_client`'s
//! OpenMetrics parser (`pip install prometheus_client`; `.ci/run`
//! installs it). Without it the test says SKIPPED, except under
//! `CI=true`, where it fails.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use support::status::{fetch, params};
use support::*;

/// Parses OpenMetrics text from stdin and prints, per family, its name,
/// type and samples (`name{labels} value`), or fails with the parser's
/// error.
const PARSE: &str = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    print("family", family.name, family.type)
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        print("sample", s.name, labels, s.value)
"#;

/// Whether `python3` can import the parser; SKIPPED (or, under CI, a
/// failure) when it cannot.
fn have_parser() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import prometheus_client.openmetrics.parser"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    have(found, "python3 with prometheus_client")
}

/// What the parser makes of `text`.
fn parse(text: &[u8]) -> String {
    let mut child = Command::new("python3")
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the parser refused the page: {err}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_openmetrics_page_passes_prometheus_clients_parser() {
    if !have_parser() {
        return;
    }
    let srv = TestServer::start(echo::handle, |s| s.status_path("/fcgi-status"));
    let a = srv.path.to_str().unwrap().to_owned();
    for query in ["status=200", "status=404", "panic=1", "status=302"] {
        srv.client().request(get(query), &b""[..]).unwrap();
    }
    // A request in flight whose URI needs escaping in a label.
    let mut slow = srv.client();
    let mut p = params("/app", "sleep_ms=1500");
    p.push(("REQUEST_URI", "/app?q=\"a\\b\"&sleep_ms=1500".into()));
    let running = thread::spawn(move || slow.request(p, &b""[..]).unwrap().status);
    thread::sleep(Duration::from_millis(300));
    let page = fetch(&a, "/fcgi-status", "openmetrics&full");
    let parsed = parse(&page.body);
    assert_eq!(running.join().unwrap(), 200);
    for line in [
        "family fcgi_requests counter",
        "family fcgi_responses counter",
        "family fcgi_timeouts counter",
        "family fcgi_request_duration_seconds histogram",
        "family fcgi_listen_queue gauge",
        "family fcgi_worker_state stateset",
        "sample fcgi_requests_total  5",
        "sample fcgi_responses_total class=4xx 1",
        "sample fcgi_responses_total class=5xx 1",
        "sample fcgi_handler_panics_total  1",
        "sample fcgi_request_duration_seconds_count  4",
        "sample fcgi_request_duration_seconds_bucket le=+Inf 4",
    ] {
        assert!(
            parsed.lines().any(|l| l == line),
            "{line:?} not in:\n{parsed}"
        );
    }
    let elapsed = parsed
        .lines()
        .find(|l| l.starts_with("sample fcgi_worker_request_elapsed_seconds "))
        .unwrap_or_else(|| panic!("no request in flight:\n{parsed}"));
    assert!(
        elapsed.contains("uri=/app?q=\"a\\b\"&sleep_ms=1500,"),
        "{elapsed}"
    );
    // Every family the page has is one the parser read.
    let text = String::from_utf8(page.body).unwrap();
    let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
    assert_eq!(
        parsed.lines().filter(|l| l.starts_with("family ")).count(),
        types
    );
}
