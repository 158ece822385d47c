//! Steady state costs no heap allocation per request: the worker's
//! buffers, the parker and the channel are all reused; with the status
//! page, the watchdog and the access log on, so are the counters' slots,
//! the copy of the request in flight and the access log's line buffer.
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

/// The count is process-wide: one test at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Sends `req` and reads exactly `len` bytes of reply into `buf`.
fn round_trip(raw: &mut Raw, req: &[u8], buf: &mut [u8]) {
    raw.stream.write_all(req).unwrap();
    raw.stream.read_exact(buf).unwrap();
}

type Hello =
    fn(&mut fcgi_server::Request<'_>, &mut fcgi_server::Response<'_>) -> std::io::Result<()>;

fn hello(
    req: &mut fcgi_server::Request<'_>,
    res: &mut fcgi_server::Response<'_>,
) -> std::io::Result<()> {
    res.header("Content-Type", "text/plain");
    let _ = req.param("SCRIPT_NAME");
    res.write_all(b"Hello, World!\n")
}

#[test]
fn keep_conn_requests_allocate_nothing_in_steady_state() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // The pool at its full size from the start: starting a worker
    // allocates, and is growth, not steady state.
    let srv = TestServer::start(hello as Hello, |s| s.workers(1));
    assert_eq!(allocations_per_1000(&srv), 0);
}

#[test]
fn nor_with_the_status_page_the_watchdog_and_the_access_log_on() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("alloc");
    let (side, log) = (dir.path("status.sock"), dir.path("access.log"));
    let srv = TestServer::start(hello as Hello, |s| {
        let s = s
            .workers(1)
            .status_path("/fcgi-status")
            .ping_path("/fcgi-ping")
            .status_listen(side.to_str().unwrap())
            .slow_request_log(std::time::Duration::from_secs(60))
            .request_timeout(std::time::Duration::from_secs(60))
            .access_log(&log);
        let _handle = s.metrics_handle();
        s
    });
    assert_eq!(allocations_per_1000(&srv), 0);
    // Not vacuous: every request was counted and logged.
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 1201);
}

/// Allocations during 1000 keep-conn requests on one connection, after
/// 200 to warm up.
fn allocations_per_1000(srv: &TestServer) -> usize {
    let params: Vec<(&str, String)> = (0..25)
        .map(|i| ("HTTP_X_HEADER_NAME", format!("value number {i}")))
        .chain([("SCRIPT_NAME", "/app".to_owned())])
        .chain([("REQUEST_URI", "/app/hello?x=1".to_owned())])
        .chain([("REQUEST_METHOD", "GET".to_owned())])
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
    during
}
