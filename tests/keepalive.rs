//! Kept-open connections: many requests on one, idle ones never pinning a
//! worker, and closing after END_REQUEST when the web server asks nothing.
//! (The idle timeout: `tests/limits.rs`.)

mod support;

use std::time::{Duration, Instant};
use support::*;

#[test]
fn a_hundred_requests_on_one_keep_conn_connection() {
    let srv = TestServer::echo();
    let mut raw = srv.connect();
    for i in 0..100u32 {
        let query = format!("n={i}");
        let id = (i % 3 + 1) as u16;
        let params = [("REQUEST_METHOD", "GET"), ("QUERY_STRING", query.as_str())];
        raw.send(&request(id, true, &params, b"")).unwrap();
        let reply = raw.read_reply(id);
        assert_eq!(reply.end.unwrap().protocol_status, 0, "request {i}");
        let body = String::from_utf8(reply.body().to_vec()).unwrap();
        assert!(
            body.contains(&format!("QUERY_STRING=n={i}\n")),
            "request {i}: {body}"
        );
    }
    // POSTs with bodies on the same connection, too.
    for i in 0..10usize {
        let body = vec![b'0' + i as u8; 1000 * i];
        raw.send(&request(1, true, &[("REQUEST_METHOD", "POST")], &body))
            .unwrap();
        assert_eq!(raw.read_reply(1).body(), &body[..]);
    }
}

#[test]
fn without_keep_conn_the_server_closes_after_end_request() {
    let srv = TestServer::echo();
    let mut raw = srv.connect();
    raw.send(&request(1, false, &[("REQUEST_METHOD", "GET")], b""))
        .unwrap();
    assert!(raw.read_reply(1).end.is_some());
    assert!(raw.is_closed());
}

#[test]
fn idle_keep_conn_connections_do_not_pin_workers() {
    let srv = TestServer::start(echo::handle, |s| s.workers(4));
    let params = [("REQUEST_METHOD", "GET"), ("QUERY_STRING", "")];
    let mut idle = Vec::new();
    for _ in 0..200 {
        let mut raw = srv.connect();
        raw.send(&request(1, true, &params, b"")).unwrap();
        assert!(raw.read_reply(1).end.is_some());
        idle.push(raw);
    }
    // Connections that connected but never sent a byte wait too.
    let silent: Vec<Raw> = (0..20).map(|_| srv.connect()).collect();
    let start = Instant::now();
    let mut c = srv.client();
    let res = c.request(params, &b""[..]).unwrap();
    assert_eq!(res.status, 200);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    // And the idle ones are still served when they speak again.
    for raw in idle.iter_mut().step_by(20) {
        raw.send(&request(1, true, &params, b"")).unwrap();
        assert!(raw.read_reply(1).end.is_some());
    }
    drop(silent);
}

/// A handler that sleeps holds its worker; requests on other kept-open
/// connections, parked in the poller, are still answered at once by
/// another worker (about 2 s of wall time, little CPU).
#[test]
fn a_slow_handler_never_holds_up_another_ready_connection() {
    for workers in [2, 8] {
        let srv = TestServer::start(echo::handle, |s| s.workers(workers));
        let get = [("REQUEST_METHOD", "GET"), ("QUERY_STRING", "")];
        let slow = [("REQUEST_METHOD", "GET"), ("QUERY_STRING", "sleep_ms=1000")];
        let mut a = srv.connect();
        let mut b = srv.connect();
        for raw in [&mut a, &mut b] {
            raw.send(&request(1, true, &get, b"")).unwrap();
            assert!(raw.read_reply(1).end.is_some());
        }
        // The workers settle: one waits in the poller, the others park.
        // The slow request goes to the one waiting; another must be
        // brought in for b.
        std::thread::sleep(Duration::from_millis(100));
        a.send(&request(1, true, &slow, b"")).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let start = Instant::now();
        for i in 0..20 {
            b.send(&request(1, true, &get, b"")).unwrap();
            assert!(b.read_reply(1).end.is_some(), "request {i}");
        }
        let took = start.elapsed();
        assert!(
            took < Duration::from_millis(400),
            "{workers} workers: 20 quick requests took {took:?} beside a slow one"
        );
        assert!(a.read_reply(1).end.is_some());
    }
}
