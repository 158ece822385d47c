//! examples/echo (and the same on the adapters) behind a real nginx: the
//! deploy/ configs, at a prefix and at the root, with fastcgi_keep_conn on
//! and off.

mod support;

use support::frontend::Frontend;
use support::{each_echo_app, have_tool, http};

fn keep_conn_off(site: String) -> String {
    site.replace("fastcgi_keep_conn on;", "fastcgi_keep_conn off;")
        .replace("keepalive 8;", "")
}

each_echo_app! {
    prefix_mount_with_keep_conn => prefix_with_keep_conn;
    prefix_mount_without_keep_conn => prefix_without_keep_conn;
    root_mount_with_keep_conn => root_with_keep_conn;
    root_mount_without_keep_conn => root_without_keep_conn;
}

fn prefix_with_keep_conn(app: &str) {
    if !have_tool("nginx") {
        return;
    }
    let fe = Frontend::nginx(app, "nginx-prefix.conf", |s| s);
    fe.check_all("/yourapplication", "/yourapplication");
}

fn prefix_without_keep_conn(app: &str) {
    if !have_tool("nginx") {
        return;
    }
    let fe = Frontend::nginx(app, "nginx-prefix.conf", keep_conn_off);
    fe.check_all("/yourapplication", "/yourapplication");
}

fn root_with_keep_conn(app: &str) {
    if !have_tool("nginx") {
        return;
    }
    let fe = Frontend::nginx(app, "nginx-root.conf", |s| s);
    fe.check_all("", "");
}

fn root_without_keep_conn(app: &str) {
    if !have_tool("nginx") {
        return;
    }
    let fe = Frontend::nginx(app, "nginx-root.conf", keep_conn_off);
    fe.check_all("", "");
}

const PAGES: [(&str, &str); 2] = [
    ("FCGI_STATUS_PATH", "/fcgi-status"),
    ("FCGI_PING_PATH", "/fcgi-ping"),
];

#[test]
fn status_and_ping_through_an_nginx_location() {
    if !have_tool("nginx") {
        return;
    }
    let fe = Frontend::nginx_with_env("echo", "nginx-status.conf", |s| s, &PAGES);
    let ping = http::get(fe.port, "/fcgi-ping");
    assert_eq!((ping.status, ping.text().as_str()), (200, "pong\n"));
    assert_eq!(http::get(fe.port, "/some/page?status=203").status, 203);
    let text = http::get(fe.port, "/fcgi-status");
    assert_eq!(text.status, 200);
    let line = |t: &str, name: &str| {
        t.lines().find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(' ')
                .map(str::trim)
                .map(str::to_owned)
        })
    };
    // The page request and the ping are not counted; the page is.
    assert_eq!(
        line(&text.text(), "fcgi_requests_total"),
        Some("1".into()),
        "{}",
        text.text()
    );
    let json = http::get(fe.port, "/fcgi-status?json&full");
    assert_eq!(json.header("Content-Type"), Some("application/json"));
    assert!(
        json.text().contains("\"workers\":[{\"worker\":0,"),
        "{}",
        json.text()
    );
    let om = http::get(fe.port, "/fcgi-status?openmetrics");
    assert!(om.text().ends_with("# EOF\n"), "{}", om.text());
    // The same path below it is the application's.
    let below = http::get(fe.port, "/fcgi-status/x");
    assert!(
        below.text().contains("PATH_INFO=/fcgi-status/x\n"),
        "{}",
        below.text()
    );
}

#[test]
fn the_status_location_is_closed_to_other_addresses() {
    if !have_tool("nginx") {
        return;
    }
    let elsewhere = |s: String| s.replace("allow 127.0.0.1;", "allow 192.0.2.1;");
    let fe = Frontend::nginx_with_env("echo", "nginx-status.conf", elsewhere, &PAGES);
    assert_eq!(http::get(fe.port, "/fcgi-status").status, 403);
    assert_eq!(http::get(fe.port, "/fcgi-ping").status, 403);
    assert_eq!(http::get(fe.port, "/?status=200").status, 200);
}

#[test]
fn the_request_timeout_gives_nginxs_client_an_answer_at_once() {
    if !have_tool("nginx") {
        return;
    }
    let env = [("FCGI_REQUEST_TIMEOUT_MS", "1000")];
    let fe = Frontend::nginx_with_env("echo", "nginx-root.conf", |s| s, &env);
    let start = std::time::Instant::now();
    let res = http::get(fe.port, "/?sleep_ms=8000");
    let took = start.elapsed();
    assert_eq!(res.status, 502, "{}", res.text());
    // Within a second of the timeout, not after nginx's own 60 s or the
    // handler's 8 s.
    assert!(
        took < std::time::Duration::from_secs(2),
        "answered after {took:?}"
    );
    // The pool goes on serving.
    for _ in 0..3 {
        assert_eq!(http::get(fe.port, "/?status=200").status, 200);
    }
    let log = fe.app_log_text();
    assert!(log.contains(" event=request_timeout "), "{log}");
}
