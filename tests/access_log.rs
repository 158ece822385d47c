//! The access log: one whole line per request, with what the request was
//! and how it ended, also when many workers write at once.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use support::status::params;
use support::*;

/// An access-log line's fields (quoted values unquoted, escapes kept).
fn fields(line: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for key in [
        "time", "remote", "method", "uri", "status", "in", "out", "duration", "outcome",
    ] {
        let spaced = format!(" {line}");
        let value = support::logged::field(&spaced, key);
        out.insert(
            key.to_owned(),
            value
                .unwrap_or_else(|| panic!("no {key}: {line}"))
                .to_owned(),
        );
    }
    out
}

fn lines(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(str::to_owned).collect()
}

#[test]
fn one_line_per_request_with_what_it_was() {
    let dir = TempDir::new("access");
    let log = dir.path("access.log");
    let log2 = log.clone();
    let srv = TestServer::start(echo::handle, move |s| {
        s.access_log(log2).status_path("/fcgi-status")
    });
    let mut p = params("/app", "size=100");
    p.push(("REMOTE_ADDR", "192.0.2.7".into()));
    assert_eq!(srv.client().request(p, &b""[..]).unwrap().status, 200);
    let mut post = params("/app", "");
    post[0].1 = "POST".into();
    post.push(("CONTENT_LENGTH", "11".into()));
    srv.client().request(post, &b"hello world"[..]).unwrap();
    srv.client()
        .request(params("/app", "status=404"), &b""[..])
        .unwrap();
    srv.client()
        .request(params("/app", "panic=1"), &b""[..])
        .unwrap();
    // Status requests are the server's, not the application's: no line.
    srv.client()
        .request(params("/fcgi-status", ""), &b""[..])
        .unwrap();
    let got = lines(&log);
    assert_eq!(got.len(), 4, "{got:#?}");
    let f: Vec<HashMap<String, String>> = got.iter().map(|l| fields(l)).collect();
    let pick = |i: usize, keys: &[&str]| -> Vec<String> {
        keys.iter().map(|k| f[i][*k].clone()).collect()
    };
    let keys = ["remote", "method", "uri", "status", "in", "out", "outcome"];
    assert_eq!(
        pick(0, &keys),
        ["192.0.2.7", "GET", "/app?size=100", "200", "0", "100", "ok"]
    );
    assert_eq!(
        pick(1, &keys),
        ["", "POST", "/app", "200", "11", "11", "ok"]
    );
    assert_eq!(pick(2, &["status", "outcome"]), ["404", "ok"]);
    assert_eq!(pick(3, &["status", "outcome"]), ["500", "panic"]);
    assert!(
        f[0]["time"].ends_with('Z') && f[0]["time"].len() == 24,
        "{}",
        got[0]
    );
    assert!(f[0]["duration"].parse::<f64>().is_ok(), "{}", got[0]);
}

#[test]
fn lines_stay_whole_when_many_workers_write_at_once() {
    let dir = TempDir::new("access-many");
    let log = dir.path("access.log");
    let log2 = log.clone();
    let srv = TestServer::start(echo::handle, move |s| s.workers(8).access_log(log2));
    let path = srv.path.clone();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                for i in 0..40 {
                    let mut c = connect_retry(path.to_str().unwrap());
                    c.set_timeout(Some(Duration::from_secs(10))).unwrap();
                    let query = format!("t={t}&i={i}&size={}", 50 + i);
                    assert_eq!(
                        c.request(params("/app", &query), &b""[..]).unwrap().status,
                        200
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let got = lines(&log);
    assert_eq!(got.len(), 320);
    let mut seen = std::collections::HashSet::new();
    for line in &got {
        let f = fields(line);
        let out: usize = f["out"].parse().unwrap();
        let i: usize = f["uri"]
            .split("&i=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(out, 50 + i, "{line}");
        assert!(seen.insert(f["uri"].clone()), "twice: {line}");
    }
}
