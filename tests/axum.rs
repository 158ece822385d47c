//! examples/axum (an axum `Router` on the tower adapter) behind a real
//! nginx, at a prefix and at the root, and run by hand as CGI from inside
//! its `#[tokio::main]`.
#![cfg(feature = "tower")]

mod support;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::echo::contract::Digest;
use support::frontend::{Frontend, peak_rss_kib};
use support::http::{self, HttpResponse, Pattern};
use support::{example, have_tool};

/// nginx with `site`, responses not buffered (for the event stream).
fn nginx(site: &str) -> Frontend {
    Frontend::nginx("axum", site, |s| {
        s.replace(
            "fastcgi_pass yourapplication;",
            "fastcgi_buffering off;\n        fastcgi_pass yourapplication;",
        )
    })
}

fn get(fe: &Frontend, path: &str) -> HttpResponse {
    http::get(fe.port, path)
}

fn send(
    fe: &Frontend,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let body = Some((body.len() as u64, &mut &body[..] as &mut dyn Read));
    http::request_with(fe.port, method, path, headers, body).unwrap()
}

#[test]
fn at_a_prefix() {
    if !have_tool("nginx") {
        return;
    }
    let fe = nginx("nginx-prefix.conf");
    let p = "/yourapplication";
    check_paths(&fe, p);
    check_json(&fe, p);
    check_form_and_cookie(&fe, p);
    check_two_cookies(&fe, p);
    check_upload(&fe, p);
    check_stream(&fe, p);
    check_panic(&fe, p);
    check_shared_connection(&fe, p);
}

#[test]
fn at_the_root() {
    if !have_tool("nginx") {
        return;
    }
    let fe = nginx("nginx-root.conf");
    check_paths(&fe, "");
    check_form_and_cookie(&fe, "");
    check_shared_connection(&fe, "");
}

/// Path parameters (percent-decoded by axum) and a query; the routes are
/// the same at any mount point.
fn check_paths(fe: &Frontend, p: &str) {
    let res = get(fe, &format!("{p}/hello/w%C3%B6rld?greeting=Hi"));
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.text(), "Hi, wörld!\n");
    assert_eq!(get(fe, &format!("{p}/hello/you")).text(), "Hello, you!\n");
    assert_eq!(get(fe, &format!("{p}/no/such/page")).status, 404);
}

fn check_json(fe: &Frontend, p: &str) {
    let json = [("Content-Type", "application/json")];
    let res = send(
        fe,
        "POST",
        &format!("{p}/api/notes"),
        &json,
        br#"{"text":"from json"}"#,
    );
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.header("Content-Type"), Some("application/json"));
    let id = res.text().split(['{', ',', ':']).nth(2).unwrap().to_owned();
    assert_eq!(res.text(), format!(r#"{{"id":{id},"text":"from json"}}"#));
    let res = get(fe, &format!("{p}/api/notes/{id}"));
    assert_eq!(res.text(), format!(r#"{{"id":{id},"text":"from json"}}"#));
    let res = get(fe, &format!("{p}/api/notes/999"));
    assert_eq!(res.status, 404);
    assert_eq!(res.text(), r#"{"error":"no such note"}"#);
    // Not JSON: axum refuses it.
    let res = send(fe, "POST", &format!("{p}/api/notes"), &json, b"{oops");
    assert_eq!(res.status, 400, "{}", res.text());
}

/// The HTML form: a POST stores the note, sets a cookie and redirects to
/// the page, whose links carry the mount point.
fn check_form_and_cookie(fe: &Frontend, p: &str) {
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let res = send(
        fe,
        "POST",
        &format!("{p}/notes"),
        &form,
        b"text=a+%3Cform%3E+note",
    );
    assert_eq!(res.status, 303, "{}", res.text());
    assert_eq!(res.header("Location"), Some(&*format!("{p}/")));
    assert_eq!(
        res.header("Set-Cookie"),
        Some("last_note=aformnote; Path=/; HttpOnly")
    );
    let page = get(fe, &format!("{p}/")).text();
    assert!(page.contains("<li>a &lt;form&gt; note</li>"), "{page}");
    assert!(page.contains(&format!("action=\"{p}/notes\"")), "{page}");
}

/// Two `Cookie` headers reach the application as one, joined with "; ".
fn check_two_cookies(fe: &Frontend, p: &str) {
    let cookies = [("Cookie", "a=1"), ("Cookie", "b=2; c=3")];
    let res = http::request_with(fe.port, "GET", &format!("{p}/cookies"), &cookies, None).unwrap();
    assert_eq!(res.text(), "a=1; b=2; c=3\n");
}

/// 20 MB read as it streams: the digest is right and the application's
/// peak memory hardly moves.
fn check_upload(fe: &Frontend, p: &str) {
    let size = 20 << 20;
    let pid = fe.app_proc.as_ref().unwrap().pid();
    let before = peak_rss_kib(pid);
    let mut body = Pattern::new(size);
    let headers = [("Content-Type", "application/octet-stream")];
    let path = format!("{p}/upload");
    let res =
        http::request_with(fe.port, "POST", &path, &headers, Some((size, &mut body))).unwrap();
    assert_eq!(res.status, 200, "{}", res.text());
    let mut want = Digest::new();
    let mut pattern = Pattern::new(size);
    let mut buf = vec![0u8; 1 << 16];
    while let Ok(n @ 1..) = pattern.read(&mut buf) {
        want.update(&buf[..n]);
    }
    let want = format!(r#"{{"bytes":{},"fnv1a":"{:016x}"}}"#, want.len, want.hash);
    assert_eq!(res.text(), want);
    let after = peak_rss_kib(pid);
    eprintln!("axum example: peak RSS {before} -> {after} KiB over a 20 MiB upload");
    assert!(
        after < before + 16 * 1024,
        "peak RSS {before} -> {after} KiB"
    );
}

/// Server-sent events 100 ms apart reach the client one by one, not all
/// at the end (nginx with `fastcgi_buffering off`).
fn check_stream(fe: &Frontend, p: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", fe.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let req =
        format!("GET {p}/stream?n=5 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 4096];
    let mut text = String::new();
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        let now = Instant::now();
        while seen.len() < 5 && text.contains(&format!("data: tick {}\n", seen.len() + 1)) {
            seen.push(now);
        }
    }
    assert_eq!(seen.len(), 5, "{text}");
    let spread = seen[4] - seen[0];
    assert!(
        spread >= Duration::from_millis(250),
        "the five events arrived within {spread:?}: buffered, not streamed"
    );
    assert!(text.contains("text/event-stream"), "{text}");
}

/// A handler that panics costs its request a 500, and the message reaches
/// the error log; the next request is served.
fn check_panic(fe: &Frontend, p: &str) {
    assert_eq!(get(fe, &format!("{p}/panic")).status, 500);
    assert_eq!(get(fe, &format!("{p}/hello/again")).status, 200);
    let logged = support::eventually(Duration::from_secs(5), || {
        fe.error_log_text().contains("the /panic route panics")
    });
    assert!(logged, "{}", fe.error_log_text());
}

/// The connection made at start-up serves requests on several workers:
/// every count is new, and more than one worker thread answered.
fn check_shared_connection(fe: &Frontend, p: &str) {
    let mut counts = HashSet::new();
    let mut workers = HashSet::new();
    for _ in 0..5 {
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (port, path) = (fe.port, format!("{p}/visits"));
                std::thread::spawn(move || http::get(port, &path))
            })
            .collect();
        for t in threads {
            let res = t.join().unwrap();
            assert_eq!(res.status, 200, "{}", res.text());
            let text = res.text();
            let count = text.split(['"', ':', ',']).nth(3).unwrap().to_owned();
            assert!(counts.insert(count), "a count came twice: {text}");
            let worker = text.split('"').nth(5).unwrap().to_owned();
            assert!(worker.starts_with("fcgi-worker-"), "{text}");
            workers.insert(worker);
        }
        if workers.len() > 1 {
            return;
        }
    }
    panic!("every request was served by one worker: {workers:?}");
}

/// Run by hand (fd 0 not a socket), the binary answers one request as CGI,
/// from inside its `#[tokio::main]`, with the connection it made at start.
#[test]
fn cgi_mode_inside_tokio_main() {
    let out = Command::new(example("axum"))
        .env("REQUEST_METHOD", "GET")
        .env("PATH_INFO", "/visits")
        .env("QUERY_STRING", "")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("Status: 200 OK\r\n"), "{text}");
    assert!(text.ends_with(r#"{"count":1,"worker":"main"}"#), "{text}");
}
