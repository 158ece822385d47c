//! Steady state costs no heap allocation per request: the worker's
//! buffers, the parker and the channel are all reused.
//!
//! A counting global allocator sees every allocation in this process; the
//! client side of the loop below allocates nothing itself, so what is
//! counted is the server's doing.

mod support;

use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use support::*;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Sends `req` and reads exactly `len` bytes of reply into `buf`.
fn round_trip(raw: &mut Raw, req: &[u8], buf: &mut [u8]) {
    raw.stream.write_all(req).unwrap();
    raw.stream.read_exact(buf).unwrap();
}

#[test]
fn keep_conn_requests_allocate_nothing_in_steady_state() {
    let srv = TestServer::start(
        |req: &mut fcgi_server::Request<'_>, res: &mut fcgi_server::Response<'_>| {
            res.header("Content-Type", "text/plain");
            let _ = req.param("SCRIPT_NAME");
            res.write_all(b"Hello, World!\n")
        },
        // The pool at its full size from the start: starting a worker
        // allocates, and is growth, not steady state.
        |s| s.workers(1),
    );
    let params: Vec<(&str, String)> = (0..25)
        .map(|i| ("HTTP_X_HEADER_NAME", format!("value number {i}")))
        .chain([("SCRIPT_NAME", "/app".to_owned())])
        .collect();
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let req = request(1, true, &params, b"");
    let mut raw = srv.connect();
    raw.send(&req).unwrap();
    let first = raw.read_reply(1);
    let len: usize = first.records.iter().map(|r| r.header.record_len()).sum();
    let mut buf = vec![0u8; len];
    for i in 0..200 {
        round_trip(&mut raw, &req, &mut buf);
        // Pauses past the 1 ms linger send the connection through the
        // parker too, so that its first-use set-up (the channel's waiting
        // lists) is done before counting: a loaded machine may park it
        // during the count.
        if i % 20 == 0 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        round_trip(&mut raw, &req, &mut buf);
    }
    let during = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert!(buf.ends_with(&[1, 3, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    assert_eq!(during, 0, "{during} allocations in 1000 keep-conn requests");
}
