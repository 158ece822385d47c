//! A failing or panicking handler costs one request; a peer that goes away
//! costs nothing; descriptors do not leak.

mod support;

use fcgi_server::{Request, Response};
use std::io::{self, Read, Write};
use std::time::Duration;
use support::*;

fn get(query: &str) -> Vec<(&'static str, String)> {
    support::get(query)
}

#[test]
fn panicking_handler_gives_500_then_the_next_request_succeeds() {
    let srv = TestServer::start(echo::handle, |s| s.workers(1));
    let mut c = srv.client();
    let res = c.request(get("stderr=before&panic=1"), &b""[..]).unwrap();
    assert_eq!(res.status, 500);
    assert_eq!(res.body, b"Internal Server Error\n");
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(stderr.contains("before\n"), "{stderr}");
    assert!(stderr.contains("panicked: echo: panic=1"), "{stderr}");
    assert_eq!(res.app_status, 1);
    // One worker: if it had died, this would hang.
    let mut c = srv.client();
    let res = c.request(get("status=203"), &b""[..]).unwrap();
    assert_eq!(res.status, 203);
}

#[test]
fn handler_error_gives_500_with_detail_only_in_debug_mode() {
    let fail = |_: &mut Request<'_>, res: &mut Response<'_>| -> io::Result<()> {
        res.header("X-Dropped", "1");
        res.write_all(b"partial output that stays buffered")?;
        Err(io::Error::other("database unreachable"))
    };
    let srv = TestServer::start(fail, |s| s);
    let res = srv.client().request(get(""), &b""[..]).unwrap();
    assert_eq!(res.status, 500);
    assert_eq!(res.header("X-Dropped"), None);
    assert!(!String::from_utf8_lossy(&res.body).contains("database"));
    assert!(String::from_utf8_lossy(&res.stderr).contains("handler failed: database unreachable"));

    let srv = TestServer::start(fail, |s| s.debug(true));
    let res = srv.client().request(get(""), &b""[..]).unwrap();
    assert_eq!(res.status, 500);
    assert!(String::from_utf8_lossy(&res.body).contains("database unreachable"));
}

#[test]
fn failure_after_output_was_sent_closes_without_end_request() {
    let srv = TestServer::start(
        |_: &mut Request<'_>, res: &mut Response<'_>| -> io::Result<()> {
            res.write_all(b"first part")?;
            res.flush()?;
            panic!("midway")
        },
        |s| s,
    );
    let mut raw = srv.connect();
    raw.send(&request(1, true, &[("REQUEST_METHOD", "GET")], b""))
        .unwrap();
    let reply = raw.read_reply(1);
    assert!(
        reply.end.is_none(),
        "no END_REQUEST after a failure mid-body"
    );
    assert!(reply.stdout_str().ends_with("first part"));
    assert!(String::from_utf8_lossy(&reply.stderr).contains("midway"));
}

#[test]
fn peer_gone_mid_response_does_not_kill_the_process() {
    let srv = TestServer::start(echo::handle, |s| s.workers(2));
    for _ in 0..5 {
        let mut raw = srv.connect();
        let params = [("REQUEST_METHOD", "GET"), ("QUERY_STRING", "size=20000000")];
        raw.send(&request(1, false, &params, b"")).unwrap();
        let _ = raw.read_record();
        drop(raw);
    }
    let res = srv.client().request(get(""), &b""[..]).unwrap();
    assert_eq!(res.status, 200);
}

#[test]
fn large_post_streams_through_in_pieces() {
    let srv = TestServer::echo();
    let body: Vec<u8> = (0..10 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut c = srv.client();
    c.keep_conn(true);
    let params = [("REQUEST_METHOD", "POST"), ("QUERY_STRING", "digest=1")];
    let res = c.request(params, &body[..]).unwrap();
    let want = echo::digest(&mut &body[..]).unwrap().line();
    assert_eq!(String::from_utf8(res.body).unwrap(), want);
    let params = [("REQUEST_METHOD", "POST"), ("QUERY_STRING", "")];
    let res = c.request(params, &body[..]).unwrap();
    assert!(res.body == body);
}

#[test]
fn body_reads_return_exactly_the_stdin_stream() {
    let srv = TestServer::start(
        |req: &mut Request<'_>, res: &mut Response<'_>| -> io::Result<()> {
            let mut small = [0u8; 3];
            let mut seen = Vec::new();
            loop {
                let n = req.read(&mut small)?;
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&small[..n]);
            }
            assert_eq!(req.read(&mut small)?, 0, "reads after the end stay at 0");
            write!(res, "{}", seen.len())
        },
        |s| s,
    );
    let body = vec![7u8; 200_001];
    let res = srv
        .client()
        .request([("REQUEST_METHOD", "POST")], &body[..])
        .unwrap();
    assert_eq!(res.body, b"200001");
}

#[test]
fn thousands_of_connect_request_close_cycles_leak_no_descriptors() {
    let srv = TestServer::echo();
    let params = [("REQUEST_METHOD", "GET"), ("QUERY_STRING", "")];
    for _ in 0..50 {
        srv.client().request(params, &b""[..]).unwrap();
    }
    assert!(eventually(Duration::from_secs(5), || open_fds() == open_fds()));
    let before = open_fds();
    for i in 0..2000 {
        let mut raw = srv.connect();
        raw.send(&request(1, i % 2 == 0, &params, b"")).unwrap();
        assert!(raw.read_reply(1).end.is_some());
    }
    let settled = eventually(Duration::from_secs(5), || open_fds() <= before);
    assert!(
        settled,
        "open descriptors grew from {before} to {}",
        open_fds()
    );
}
