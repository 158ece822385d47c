//! What the server logs: every event one line in one format (start-up
//! with its socket and pool size, a limit hit, a protocol error, a
//! refused peer, shutdown and its cause), and a handler's panic reported
//! once, without the resident memory a symbolised backtrace costs.

mod support;

use std::net::TcpListener;
use std::time::Duration;

use fcgi_server::protocol::record_type;
use support::frontend::{signal, status};
use support::logged::{Logged, field};
use support::status::params;
use support::*;

/// Whether `line` is one event in the server's format: `fcgi-server:
/// time=RFC3339 level=L event=NAME pid=N ... msg=...`.
fn is_event(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("fcgi-server: time=") else {
        return false;
    };
    let (time, rest) = rest.split_at(rest.len().min(24));
    let level = field(line, "level").unwrap_or("");
    let event = field(line, "event").unwrap_or("");
    let pid = field(line, "pid").unwrap_or("");
    time.ends_with('Z')
        && time.as_bytes().get(10) == Some(&b'T')
        && rest.starts_with(" level=")
        && ["info", "warn", "error"].contains(&level)
        && !event.is_empty()
        && event.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        && !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && field(line, "msg").is_some()
}

fn events<'a>(lines: &'a [String], name: &str) -> Vec<&'a String> {
    let tag = format!(" event={name} ");
    lines.iter().filter(|l| l.contains(&tag)).collect()
}

#[test]
fn every_line_is_one_event_in_one_format() {
    let mut app = Logged::start("echo", &[("FCGI_WORKERS", "3")]);
    let addr = app.addr.clone();
    connect_retry(&addr)
        .request(params("/app", ""), &b""[..])
        .unwrap();
    // Over the limit of 1000 params.
    let many: Vec<(String, String)> = (0..1001).map(|i| (format!("P{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut raw = Raw::connect(std::path::Path::new(&addr));
    raw.send(&request(1, false, &many, b"")).unwrap();
    assert!(raw.read_reply(1).status_line().contains("431"));
    // A record type only applications send.
    let mut raw = Raw::connect(std::path::Path::new(&addr));
    raw.send(&record(record_type::STDOUT, 1, b"x")).unwrap();
    assert!(raw.is_closed());
    assert!(
        app.wait_for(Duration::from_secs(5), |l| l
            .contains(" event=protocol_error "))
            .is_some()
    );
    let lines = app.stop();
    assert!(lines.iter().all(|l| is_event(l)), "{lines:#?}");
    let start = events(&lines, "start");
    assert_eq!(start.len(), 1, "{lines:#?}");
    assert_eq!(
        field(start[0], "listen"),
        Some(format!("unix:{addr}").as_str())
    );
    assert_eq!(field(start[0], "workers"), Some("3"));
    let limit = events(&lines, "limit");
    assert!(
        field(limit[0], "msg").unwrap().contains("1001 params"),
        "{limit:?}"
    );
    assert_eq!(field(limit[0], "level"), Some("warn"));
    assert_eq!(events(&lines, "protocol_error").len(), 1);
    let stop = events(&lines, "shutdown");
    assert_eq!(field(stop[0], "cause"), Some("SIGTERM"), "{lines:#?}");
    assert!(
        lines.last().unwrap().contains(" event=stopped "),
        "{lines:#?}"
    );
}

#[test]
fn a_refused_peer_is_one_event() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let child = std::process::Command::new(example("echo"))
        .env("FCGI_WEB_SERVER_ADDRS", "10.9.9.9")
        .stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(
            listener,
        )))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut c = connect_retry(&addr);
    c.set_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(c.request(params("/app", ""), &b""[..]).is_err());
    signal(child.id(), "TERM");
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    assert!(lines.iter().all(|l| is_event(l)), "{lines:#?}");
    let refused = events(&lines, "refused_peer");
    assert_eq!(refused.len(), 1, "{lines:#?}");
    assert_eq!(field(refused[0], "peer"), Some("127.0.0.1"));
    assert!(events(&lines, "start")[0].contains(&format!(" listen={addr} ")));
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    status(pid, "VmRSS:")
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

#[test]
fn a_panic_is_reported_once_and_a_backtrace_costs_no_memory() {
    let mut app = Logged::start("echo", &[("RUST_BACKTRACE", "1"), ("FCGI_WORKERS", "2")]);
    let pid = app.proc.pid();
    connect_retry(&app.addr)
        .request(params("/app", ""), &b""[..])
        .unwrap();
    let before = rss_kib(pid);
    for _ in 0..3 {
        let res = connect_retry(&app.addr)
            .request(params("/app", "panic=1"), &b""[..])
            .unwrap();
        assert_eq!(res.status, 500);
    }
    let panics = |l: &str| l.contains(" event=handler_panic ");
    assert!(app.wait_for(Duration::from_secs(5), panics).is_some());
    let after = rss_kib(pid);
    let exe = example("echo");
    let lines = app.stop();
    assert!(
        lines.iter().all(|l| is_event(l)),
        "not one line per event: {lines:#?}"
    );
    let reports: Vec<&String> = lines.iter().filter(|l| panics(l)).collect();
    assert_eq!(reports.len(), 3, "{lines:#?}");
    let report = reports[0];
    assert_eq!(field(report, "method"), Some("GET"));
    assert_eq!(field(report, "uri"), Some("/app?panic=1"));
    assert!(
        field(report, "location")
            .unwrap()
            .starts_with("examples/echo/app.rs:"),
        "{report}"
    );
    assert_eq!(field(report, "msg"), Some("echo: panic=1 was asked for"));
    // A symbolised backtrace kept ~44 MB resident after the first panic.
    assert!(
        after < before + 8 * 1024,
        "resident memory grew from {before} KiB to {after} KiB"
    );
    symbolize(
        &exe,
        field(report, "backtrace").expect("no backtrace field"),
    );
}

/// The backtrace's offsets in the executable, named by `addr2line`,
/// reach the line that panicked.
fn symbolize(exe: &std::path::Path, backtrace: &str) {
    let offsets: Vec<&str> = backtrace
        .split(' ')
        .filter_map(|frame| frame.strip_prefix("echo+"))
        .collect();
    assert!(offsets.len() > 5, "{backtrace}");
    if !have_tool("addr2line") {
        return;
    }
    let out = std::process::Command::new("addr2line")
        .args(["-Cfpi", "-e"])
        .arg(exe)
        .args(&offsets)
        .output()
        .unwrap();
    let named = String::from_utf8_lossy(&out.stdout);
    assert!(named.contains("examples/echo/app.rs:"), "{named}");
}
