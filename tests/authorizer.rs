//! The authorizer role: over raw records, and behind the real front ends
//! that use it (deploy/lighttpd-authorizer.conf with lighttpd,
//! deploy/apache-fcgid-authorizer.conf with Apache mod_fcgid), granting
//! and denying through examples/echo, the `Variable-` value reaching the
//! guarded responder, and access denied (never granted) when the
//! application does not play the role.

mod support;

use fcgi_server::protocol::ProtocolStatus;
use fcgi_server::protocol::record_type::{PARAMS, STDIN};
use fcgi_server::{Role, Server};
use support::frontend::{Frontend, SECRET};
use support::http::{self, HttpResponse};
use support::*;

const AUTHORIZER: u16 = 2;

/// An authorizer request whose params are `params`.
fn authorizer_request(id: u16, keep_conn: bool, params: &[(&str, &str)]) -> Vec<u8> {
    let mut out = begin(id, AUTHORIZER, keep_conn);
    out.extend(record(PARAMS, id, &pairs(params)));
    out.extend(record(PARAMS, id, b""));
    out.extend(record(STDIN, id, b""));
    out
}

#[test]
fn echo_grants_the_token_with_a_variable_and_denies_the_rest() {
    let srv = TestServer::start(echo::handle, |s: Server<_>| s.roles(echo::ROLES));
    let mut client = srv.client();
    client.role(Role::Authorizer).keep_conn(true);
    let granted = client
        .request([("HTTP_AUTHORIZATION", "Bearer let-me-in")], &b""[..])
        .unwrap();
    assert_eq!(granted.status, 200);
    assert_eq!(granted.header("Variable-AUTH_USER"), Some("alice"));
    assert!(granted.body.is_empty());
    for token in [None, Some("Bearer let-me-in "), Some("bearer let-me-in")] {
        let params: Vec<(&str, &str)> = token
            .map(|t| ("HTTP_AUTHORIZATION", t))
            .into_iter()
            .collect();
        let denied = client.request(params, &b""[..]).unwrap();
        assert_eq!(denied.status, 403, "{token:?}");
        assert_eq!(denied.body, b"denied\n");
        assert_eq!(denied.header("Variable-AUTH_USER"), None);
    }
}

#[test]
fn an_application_that_does_not_play_the_role_denies_and_says_why() {
    // Responder only, as by default.
    let srv = TestServer::echo();
    let mut raw = srv.connect();
    let token = [("HTTP_AUTHORIZATION", "Bearer let-me-in")];
    raw.send(&authorizer_request(1, true, &token)).unwrap();
    let reply = raw.read_reply(1);
    // The end-request refuses the role, as the spec says; the 403 before
    // it denies access behind web servers that do not read that status.
    let end = reply.end.unwrap();
    assert_eq!(end.protocol_status, u8::from(ProtocolStatus::UnknownRole));
    assert!(
        reply.status_line().starts_with("Status: 403"),
        "{}",
        reply.stdout_str()
    );
    let why = String::from_utf8_lossy(&reply.stderr);
    assert!(
        why.contains("does not play the FastCGI authorizer role"),
        "{why}"
    );
    // The connection is still in step: the params and body of the refused
    // request are ignored, and the next request is served.
    raw.send(&request(2, true, &[("QUERY_STRING", "")], b""))
        .unwrap();
    let reply = raw.read_reply(2);
    assert!(
        reply.stdout_str().contains("QUERY_STRING="),
        "{}",
        reply.stdout_str()
    );
}

#[test]
fn a_second_authorizer_request_on_a_busy_connection_is_denied_too() {
    let srv = TestServer::start(echo::handle, |s: Server<_>| s.roles(echo::ROLES));
    let mut raw = srv.connect();
    let p = pairs(&[("REQUEST_METHOD", "POST"), ("QUERY_STRING", "")]);
    let mut bytes = begin(1, 1, true);
    bytes.extend(record(PARAMS, 1, &p));
    bytes.extend(record(PARAMS, 1, b""));
    bytes.extend(record(STDIN, 1, b"body"));
    bytes.extend(begin(2, AUTHORIZER, true));
    bytes.extend(record(STDIN, 1, b""));
    raw.send(&bytes).unwrap();
    let refused = raw.read_reply(2);
    let end = refused.end.unwrap();
    assert_eq!(end.protocol_status, u8::from(ProtocolStatus::CantMpxConn));
    assert!(
        refused.status_line().starts_with("Status: 403"),
        "{}",
        refused.stdout_str()
    );
    assert_eq!(raw.read_reply(1).body(), b"body");
}

const TOKEN: &[(&str, &str)] = &[("Authorization", "Bearer let-me-in")];
const WRONG: &[(&str, &str)] = &[("Authorization", "Bearer guess")];

/// A line `NAME=VALUE` of the echo responder's params listing.
fn param<'a>(listing: &'a str, name: &str) -> Option<&'a str> {
    listing
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
}

/// Every guarded path, without the token and with a wrong one, is denied
/// with `status`; each denial passes `check`.
fn check_denied(fe: &Frontend, status: u16, check: impl Fn(&HttpResponse)) {
    for path in ["/yourapplication/hello.txt", "/yourapplication/app"] {
        for headers in [&[][..], WRONG] {
            let res = http::get_with(fe.port, path, headers);
            let text = res.text();
            assert_eq!(res.status, status, "{path} {headers:?}: {text}");
            assert!(
                !text.contains(SECRET) && !text.contains("AUTH_USER"),
                "{text}"
            );
            check(&res);
        }
    }
}

/// With the token: the static file, and the responder, which sees the
/// authorizer's variable. Returns the responder's answer.
fn check_granted(fe: &Frontend) -> HttpResponse {
    let res = http::get_with(fe.port, "/yourapplication/hello.txt", TOKEN);
    assert_eq!(res.status, 200, "{}", fe.error_log_text());
    assert_eq!(res.text(), SECRET);
    let res = http::get_with(fe.port, "/yourapplication/app?x=1", TOKEN);
    let text = res.text();
    assert_eq!(res.status, 200, "{text}");
    assert_eq!(param(&text, "AUTH_USER"), Some("alice"), "{text}");
    assert_eq!(param(&text, "QUERY_STRING"), Some("x=1"), "{text}");
    assert_eq!(param(&text, "HTTP_AUTHORIZATION"), Some("Bearer let-me-in"));
    res
}

/// The error log eventually says why an authorizer request was refused.
fn check_logged_refusal(fe: &Frontend) {
    let said = eventually(std::time::Duration::from_secs(5), || {
        fe.error_log_text()
            .contains("does not play the FastCGI authorizer role")
    });
    assert!(said, "{}", fe.error_log_text());
}

#[test]
fn lighttpd_authorizer_grants_denies_and_passes_the_variable() {
    if !have_tool("lighttpd") {
        return;
    }
    let fe = Frontend::lighttpd_authorizer("echo");
    // lighttpd sends the authorizer's denial to the client as it is.
    check_denied(&fe, 403, |res| {
        assert_eq!(res.text(), "denied\n");
        assert_eq!(res.header("Content-Type"), Some("text/plain"));
    });
    let res = check_granted(&fe);
    // lighttpd keeps the Variable- header from the client.
    assert_eq!(res.header("Variable-AUTH_USER"), None);
}

#[test]
fn lighttpd_denies_when_the_application_does_not_play_the_authorizer_role() {
    if !have_tool("lighttpd") {
        return;
    }
    // examples/hello plays the responder role only.
    let fe = Frontend::lighttpd_authorizer("hello");
    for headers in [TOKEN, &[][..]] {
        let res = http::get_with(fe.port, "/yourapplication/hello.txt", headers);
        assert_eq!(res.status, 403, "{}", res.text());
        assert_eq!(res.text(), "Forbidden\n");
    }
    check_logged_refusal(&fe);
}

#[test]
fn apache_fcgid_access_checker_grants_denies_and_passes_the_variable() {
    if !have_tool("apache2") {
        return;
    }
    let fe = Frontend::apache_fcgid_authorizer("echo");
    // mod_fcgid answers a denial with its own 401 page.
    check_denied(&fe, 401, |res| assert!(!res.text().contains("denied")));
    let res = check_granted(&fe);
    // mod_fcgid sends the Variable- header to the client as well.
    assert_eq!(res.header("Variable-AUTH_USER"), Some("alice"));
}

#[test]
fn apache_fcgid_denies_when_the_application_does_not_play_the_authorizer_role() {
    if !have_tool("apache2") {
        return;
    }
    let fe = Frontend::apache_fcgid_authorizer("hello");
    for headers in [TOKEN, &[][..]] {
        let res = http::get_with(fe.port, "/yourapplication/hello.txt", headers);
        assert_eq!(res.status, 401, "{}", res.text());
        assert!(!res.text().contains(SECRET));
    }
    check_logged_refusal(&fe);
    assert!(fe.error_log_text().contains("script returned status 403"));
}
