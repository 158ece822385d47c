//! The watchdog: the slow-request log names a request while it still
//! runs, and the request timeout cuts one off (its handler sees it
//! aborted, the pool goes on serving).

mod support;

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use fcgi_server::{Request, Response};
use support::logged::{Logged, field};
use support::status::{fetch, figures, params};
use support::*;

#[test]
fn the_slow_log_names_a_sleeping_request_while_it_sleeps() {
    let env = [
        ("FCGI_SLOW_MS", "200"),
        ("FCGI_STATUS_PATH", "/fcgi-status"),
    ];
    let mut app = Logged::start("echo", &env);
    let mut c = connect_retry(&app.addr);
    c.set_timeout(Some(Duration::from_secs(20))).unwrap();
    let sleeping = thread::spawn(move || {
        let res = c
            .request(params("/app", "sleep_ms=4000"), &b""[..])
            .unwrap();
        res.status
    });
    let slow = |l: &str| l.contains(" event=slow_request ");
    let line = app
        .wait_for(Duration::from_secs(10), slow)
        .expect("no slow_request event");
    assert!(
        !sleeping.is_finished(),
        "logged only after the request ended: {line}"
    );
    assert_eq!(field(&line, "level"), Some("warn"), "{line}");
    assert_eq!(field(&line, "method"), Some("GET"), "{line}");
    assert_eq!(field(&line, "uri"), Some("/app?sleep_ms=4000"), "{line}");
    assert_eq!(field(&line, "worker"), Some("0"), "{line}");
    let syscall = field(&line, "syscall").unwrap_or("");
    assert!(syscall.ends_with("nanosleep"), "{line}");
    let wchan = field(&line, "wchan").unwrap_or("");
    assert!(!wchan.is_empty() && wchan != "0", "{line}");
    assert!(
        field(&line, "elapsed").is_some_and(|e| e.ends_with('s')),
        "{line}"
    );
    assert_eq!(sleeping.join().unwrap(), 200);
    let f = figures(&app.addr, "/fcgi-status");
    assert_eq!(f.get("fcgi_slow_requests_total"), 1.0);
    let lines = app.stop();
    assert_eq!(
        lines.iter().filter(|l| slow(l)).count(),
        1,
        "logged more than once: {lines:#?}"
    );
}

/// A handler that runs until the request is aborted (at most 10 s), then
/// tries to write; it records that it saw the abort and that the write
/// failed.
fn runs_until_aborted(
    saw: Arc<AtomicBool>,
) -> impl Fn(&mut Request<'_>, &mut Response<'_>) -> io::Result<()> + Send + Sync + 'static {
    move |req, res| {
        if req.query_string() != "forever" {
            return res.write_all(b"quick\n");
        }
        let start = Instant::now();
        while !req.is_aborted() && start.elapsed() < Duration::from_secs(10) {
            thread::sleep(Duration::from_millis(20));
        }
        let aborted = req.is_aborted();
        let write = res.write_all(b"late").and_then(|()| res.flush());
        saw.store(aborted && write.is_err(), Ordering::SeqCst);
        write
    }
}

#[test]
fn the_request_timeout_cuts_a_request_off_and_the_pool_goes_on() {
    let saw = Arc::new(AtomicBool::new(false));
    let srv = TestServer::start(runs_until_aborted(Arc::clone(&saw)), |s| {
        s.workers(2)
            .request_timeout(Duration::from_millis(400))
            .status_path("/fcgi-status")
    });
    let a = srv.path.to_str().unwrap().to_owned();
    let mut c = srv.client();
    // The connection is shut down: no END_REQUEST comes.
    let cut = c.request(params("/app", "forever"), &b""[..]);
    assert!(cut.is_err(), "{cut:?}");
    let seen = eventually(Duration::from_secs(5), || saw.load(Ordering::SeqCst));
    assert!(seen, "the handler did not see its request aborted");
    let f = figures(&a, "/fcgi-status");
    assert_eq!(f.get("fcgi_timeouts_total{kind=\"request\"}"), 1.0);
    assert_eq!(f.get("fcgi_responses_total{class=\"2xx\"}"), 0.0);
    // The pool goes on serving, the worker that was cut off too.
    for _ in 0..4 {
        let res = srv.client().request(params("/app", ""), &b""[..]).unwrap();
        assert_eq!(res.body, b"quick\n");
    }
    assert_eq!(fetch(&a, "/fcgi-status", "").status, 200);
}

#[test]
fn the_request_timeout_is_logged() {
    let env = [("FCGI_REQUEST_TIMEOUT_MS", "300"), ("FCGI_WORKERS", "2")];
    let mut app = Logged::start("echo", &env);
    let mut c = connect_retry(&app.addr);
    c.set_timeout(Some(Duration::from_secs(20))).unwrap();
    assert!(
        c.request(params("/app", "sleep_ms=3000"), &b""[..])
            .is_err()
    );
    let cut = |l: &str| l.contains(" event=request_timeout ");
    let line = app
        .wait_for(Duration::from_secs(5), cut)
        .expect("no request_timeout event");
    assert_eq!(field(&line, "uri"), Some("/app?sleep_ms=3000"), "{line}");
    assert_eq!(field(&line, "method"), Some("GET"), "{line}");
    let res = connect_retry(&app.addr).request(params("/app", "status=201"), &b""[..]);
    assert_eq!(res.unwrap().status, 201);
}
