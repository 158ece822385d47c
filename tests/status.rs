//! The status page, the ping path and the status socket, over real
//! sockets: what they answer, in each format, and that the figures move
//! by exactly what was sent.

mod support;

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use fcgi_server::client::Client;
use fcgi_server::protocol::record_type;
use fcgi_server::{Request, Response, Server};
use support::status::{Figures, fetch, figures, params};
use support::*;

const STATUS: &str = "/fcgi-status";
const PING: &str = "/fcgi-ping";

/// The application under test; the query says what it does: `sleep_ms=N`,
/// `status=N`, `panic`, `fail`; a POST reads its body first.
fn app(req: &mut Request<'_>, res: &mut Response<'_>) -> io::Result<()> {
    if req.method() == "POST" {
        let mut body = Vec::new();
        req.read_to_end(&mut body)?;
    }
    let q = req.query_string();
    if let Some(ms) = q.strip_prefix("sleep_ms=") {
        thread::sleep(Duration::from_millis(ms.parse().unwrap()));
    }
    match q {
        "panic" => panic!("asked to panic"),
        "fail" => return Err(io::Error::other("asked to fail")),
        _ => {}
    }
    if let Some(code) = q.strip_prefix("status=") {
        res.status(code.parse().unwrap());
    }
    res.write_all(b"ok\n")
}

fn addr(srv: &TestServer) -> String {
    srv.path.to_str().unwrap().to_owned()
}

/// Reads the status page with a query, always on the same kept-open
/// connection (whose worker does not count itself busy).
fn reader(addr: &str) -> impl FnMut(&str) -> String + use<> {
    let mut c = Client::connect(addr).unwrap();
    c.keep_conn(true);
    c.set_timeout(Some(Duration::from_secs(10))).unwrap();
    move |query| {
        let res = c.request(params(STATUS, query), &b""[..]).unwrap();
        String::from_utf8(res.body).unwrap()
    }
}

/// One request for the application on a new connection.
fn send(srv: &TestServer, query: &str) -> u16 {
    let mut c = srv.client();
    c.request(params("/app", query), &b""[..]).unwrap().status
}

#[test]
fn status_and_ping_are_answered_without_the_handler() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let handler = move |req: &mut Request<'_>, res: &mut Response<'_>| {
        counted.fetch_add(1, Ordering::SeqCst);
        app(req, res)
    };
    let srv = TestServer::start(handler, |s| s.status_path(STATUS).ping_path(PING));
    let a = addr(&srv);
    let ping = fetch(&a, PING, "");
    assert_eq!((ping.status, &ping.body[..]), (200, &b"pong\n"[..]));
    assert_eq!(ping.header("Content-Type"), Some("text/plain"));
    let text = fetch(&a, STATUS, "");
    assert_eq!(
        text.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        Figures::parse(&String::from_utf8_lossy(&text.body)).get("fcgi_requests_total"),
        0.0
    );
    let json = fetch(&a, STATUS, "json");
    assert_eq!(json.header("Content-Type"), Some("application/json"));
    let body = String::from_utf8(json.body).unwrap();
    assert!(
        body.starts_with("{\"fcgi_start_time_seconds\":")
            && body.contains("\"fcgi_requests_total\":0,"),
        "{body}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler was called");
    // The same path below another mount point is the application's.
    assert_eq!(send(&srv, ""), 200);
    let mut c = srv.client();
    let other = c.request(params("/app/fcgi-status", ""), &b""[..]).unwrap();
    assert_eq!(other.body, b"ok\n");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn openmetrics_by_query_or_accept_header() {
    let srv = TestServer::start(app, |s| s.status_path(STATUS));
    let om = fetch(&addr(&srv), STATUS, "openmetrics");
    let om_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    assert_eq!(om.header("Content-Type"), Some(om_type));
    let text = String::from_utf8(om.body).unwrap();
    assert!(
        text.contains("# TYPE fcgi_requests counter\n") && text.ends_with("\n# EOF\n"),
        "{text}"
    );
    let mut params = params(STATUS, "");
    params.push((
        "HTTP_ACCEPT",
        "application/openmetrics-text; version=1.0.0".into(),
    ));
    let res = srv.client().request(params, &b""[..]).unwrap();
    assert_eq!(res.header("Content-Type"), Some(om_type));
    assert!(String::from_utf8_lossy(&res.body).ends_with("# EOF\n"));
}

const FIGURES: [&str; 11] = [
    "fcgi_requests_total",
    "fcgi_responses_total{class=\"2xx\"}",
    "fcgi_responses_total{class=\"3xx\"}",
    "fcgi_responses_total{class=\"4xx\"}",
    "fcgi_responses_total{class=\"5xx\"}",
    "fcgi_handler_panics_total",
    "fcgi_handler_errors_total",
    "fcgi_connections_accepted_total",
    "fcgi_request_duration_seconds_count",
    "fcgi_request_duration_seconds_bucket{le=\"+Inf\"}",
    "fcgi_requests_aborted_total",
];

#[test]
fn counters_move_by_exactly_what_was_sent() {
    let srv = TestServer::start(app, |s| s.workers(2).status_path(STATUS).ping_path(PING));
    let a = addr(&srv);
    // Figures read on one kept-open connection, opened before counting.
    let mut page = reader(&a);
    let mut read = || Figures::parse(&page(""));
    let before = read();
    let sent = [
        "",
        "",
        "",
        "status=404",
        "status=410",
        "status=302",
        "panic",
        "fail",
    ];
    let statuses: Vec<u16> = sent.iter().map(|q| send(&srv, q)).collect();
    assert_eq!(statuses, [200, 200, 200, 404, 410, 302, 500, 500]);
    let mut kept = srv.client();
    kept.keep_conn(true);
    for _ in 0..2 {
        assert_eq!(
            kept.request(params("/app", ""), &b""[..]).unwrap().status,
            200
        );
    }
    // Neither pings nor status requests count.
    fetch(&a, PING, "");
    read();
    let after = read();
    let want = [10.0, 5.0, 1.0, 2.0, 2.0, 1.0, 1.0, 10.0, 10.0, 10.0, 0.0];
    let grown = after.growth(&before, &FIGURES);
    let want: Vec<(String, f64)> = FIGURES.iter().map(|n| n.to_string()).zip(want).collect();
    assert_eq!(grown, want);
    assert!(
        after.get("fcgi_request_duration_seconds_sum")
            > before.get("fcgi_request_duration_seconds_sum")
    );
    // Workers that closed a connection a moment ago may still be busy
    // draining it; soon none is.
    let idle = eventually(Duration::from_secs(5), || {
        read().get("fcgi_workers_busy") == 0.0
    });
    assert!(idle, "{:?}", read());
}

#[test]
fn faults_are_counted_by_kind() {
    let srv = TestServer::start(app, |s| {
        s.status_path(STATUS)
            .max_params(8)
            .read_timeout(Some(Duration::from_millis(300)))
            .idle_timeout(Duration::from_millis(300))
    });
    let a = addr(&srv);
    let before = figures(&a, STATUS);
    // A protocol error: version 2.
    let mut raw = srv.connect();
    raw.send(&[2, 1, 0, 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
        .unwrap();
    assert!(raw.is_closed());
    // Over a limit: 9 params.
    let many: Vec<(String, String)> = (0..9).map(|i| (format!("P{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut raw = srv.connect();
    raw.send(&request(1, false, &many, b"")).unwrap();
    assert!(raw.read_reply(1).status_line().contains("431"));
    // Aborted while the handler reads the body.
    let mut raw = srv.connect();
    let mut req = begin(1, 1, false);
    req.extend(record(
        record_type::PARAMS,
        1,
        &pairs(&[("REQUEST_METHOD", "POST")]),
    ));
    req.extend(record(record_type::PARAMS, 1, b""));
    req.extend(record(record_type::STDIN, 1, b"part"));
    req.extend(record(record_type::ABORT_REQUEST, 1, b""));
    raw.send(&req).unwrap();
    assert!(raw.read_reply(1).end.is_some());
    // A request that stalls, and a kept-open connection left idle.
    let mut stalled = srv.connect();
    stalled.send(&begin(1, 1, true)).unwrap();
    let mut idle = srv.connect();
    idle.send(&request(1, true, &[("REQUEST_METHOD", "GET")], b""))
        .unwrap();
    idle.read_reply(1);
    assert!(stalled.is_closed() && idle.is_closed());
    let names = [
        "fcgi_protocol_errors_total",
        "fcgi_limit_rejections_total",
        "fcgi_requests_aborted_total",
        "fcgi_timeouts_total{kind=\"read\"}",
        "fcgi_timeouts_total{kind=\"idle\"}",
        "fcgi_timeouts_total{kind=\"write\"}",
        "fcgi_timeouts_total{kind=\"request\"}",
    ];
    let grown = figures(&a, STATUS).growth(&before, &names);
    let want = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0];
    let want: Vec<(String, f64)> = names.iter().map(|n| n.to_string()).zip(want).collect();
    assert_eq!(grown, want);
}

#[test]
fn a_write_past_the_write_timeout_is_counted() {
    let big = |_: &mut Request<'_>, res: &mut Response<'_>| res.write_all(&vec![b'x'; 32 << 20]);
    let srv = TestServer::start(big, |s| {
        s.status_path(STATUS)
            .write_timeout(Some(Duration::from_millis(200)))
    });
    let mut raw = srv.connect();
    raw.send(&request(1, false, &[("REQUEST_METHOD", "GET")], b""))
        .unwrap();
    // Read nothing: the server's writes stall, then it gives up.
    let counted = eventually(Duration::from_secs(10), || {
        figures(&addr(&srv), STATUS).get("fcgi_timeouts_total{kind=\"write\"}") == 1.0
    });
    assert!(counted, "{:?}", figures(&addr(&srv), STATUS));
    assert_eq!(
        figures(&addr(&srv), STATUS).get("fcgi_handler_errors_total"),
        1.0
    );
    drop(raw);
}

/// Starts `n` requests that sleep `ms` in the handler, each on its own
/// connection; returns the threads that wait for their answers.
fn sleepers(srv: &TestServer, n: usize, ms: u64) -> Vec<thread::JoinHandle<u16>> {
    (0..n)
        .map(|_| {
            let mut c = srv.client();
            let query = format!("sleep_ms={ms}");
            thread::spawn(move || c.request(params("/app", &query), &b""[..]).unwrap().status)
        })
        .collect()
}

#[test]
fn workers_busy_is_the_number_of_requests_in_handlers() {
    let srv = TestServer::start(app, |s| s.workers(5).status_path(STATUS));
    let mut page = reader(&addr(&srv));
    let running = sleepers(&srv, 3, 2500);
    let busy = |text: String| Figures::parse(&text).get("fcgi_workers_busy");
    // Once the three requests are in their handlers (until then, a worker
    // may be reading one that its client is still sending: busy too):
    let in_handlers = |json: &str| json.matches("\"state\":\"handler\"").count();
    assert!(eventually(Duration::from_secs(5), || in_handlers(&page(
        "json&full"
    )) == 3));
    assert_eq!(busy(page("")), 3.0);
    let json = page("json&full");
    assert_eq!(in_handlers(&json), 3, "{json}");
    let uris = json.matches("\"uri\":\"/app?sleep_ms=2500\"").count();
    assert_eq!(uris, 3, "{json}");
    assert_eq!(json.matches("\"method\":\"GET\"").count(), 3, "{json}");
    let text = page("full");
    let table: Vec<&str> = text.lines().filter(|l| l.contains(" handler ")).collect();
    assert_eq!(table.len(), 3, "{text}");
    let row_ends = " GET     /app?sleep_ms=2500";
    assert!(table.iter().all(|l| l.ends_with(row_ends)), "{text}");
    for t in running {
        assert_eq!(t.join().unwrap(), 200);
    }
    assert!(eventually(Duration::from_secs(5), || busy(page("")) == 0.0));
}

/// A free loopback TCP address.
fn free_tcp() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

#[test]
fn the_status_socket_answers_while_every_worker_is_busy() {
    let dir = TempDir::new("side");
    let side = dir.path("status.sock").to_str().unwrap().to_owned();
    let tcp = free_tcp();
    let (side2, tcp2) = (side.clone(), tcp.clone());
    let srv = TestServer::start(app, move |s| {
        s.workers(2).status_listen(side2).ping_path(PING)
    });
    let srv_tcp = TestServer::start(app, move |s| s.workers(1).status_listen(tcp2));
    assert!(eventually(Duration::from_secs(5), || std::path::Path::new(
        &side
    )
    .exists()));
    let running = sleepers(&srv, 2, 3000);
    let running_tcp = sleepers(&srv_tcp, 1, 3000);
    assert!(eventually(Duration::from_secs(5), || figures(&side, "/")
        .get("fcgi_workers_busy")
        == 2.0));
    // Every worker is in a handler: the pages answer on the side socket.
    let f = figures(&side, "/anything");
    assert_eq!(
        (f.get("fcgi_workers_busy"), f.get("fcgi_workers_max")),
        (2.0, 2.0)
    );
    assert_eq!(fetch(&side, PING, "").body, b"pong\n");
    assert_eq!(figures(&tcp, "/").get("fcgi_workers_busy"), 1.0);
    assert_eq!(fetch(&tcp, "/ping", "").body, b"pong\n");
    assert!(
        running.iter().chain(&running_tcp).all(|t| !t.is_finished()),
        "the sleepers ended first"
    );
    for t in running.into_iter().chain(running_tcp) {
        assert_eq!(t.join().unwrap(), 200);
    }
    srv.stop().unwrap();
    assert!(
        !std::path::Path::new(&side).exists(),
        "the status socket file was not removed"
    );
}

/// The listen queue, seen on the status socket, while the one worker
/// sleeps and `n` connections wait in the backlog.
fn queue_while_held(srv: &TestServer, side: &str, connect: impl Fn() -> Box<dyn Read>) -> f64 {
    let running = sleepers(srv, 1, 2000);
    assert!(eventually(Duration::from_secs(5), || figures(side, "/")
        .get("fcgi_workers_busy")
        == 1.0));
    let held: Vec<Box<dyn Read>> = (0..3).map(|_| connect()).collect();
    let queued = figures(side, "/").get("fcgi_listen_queue");
    drop(held);
    for t in running {
        t.join().unwrap();
    }
    queued
}

#[test]
fn listen_queue_counts_connections_waiting_in_the_backlog() {
    let dir = TempDir::new("queue");
    let side = dir.path("status.sock").to_str().unwrap().to_owned();
    let side2 = side.clone();
    let srv = TestServer::start(app, move |s| s.workers(1).status_listen(side2));
    assert!(eventually(Duration::from_secs(5), || std::path::Path::new(
        &side
    )
    .exists()));
    let path = srv.path.clone();
    let unix = queue_while_held(&srv, &side, || {
        Box::new(std::os::unix::net::UnixStream::connect(&path).unwrap())
    });
    assert_eq!(unix, 3.0, "unix socket");
    drop(srv);

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let at = listener.local_addr().unwrap();
    let side_tcp = dir.path("status-tcp.sock").to_str().unwrap().to_owned();
    let side3 = side_tcp.clone();
    let server = Server::new(app)
        .workers(1)
        .handle_signals(false)
        .listener(listener)
        .status_listen(side3);
    let handle = server.shutdown_handle();
    let running = thread::spawn(move || server.run());
    assert!(eventually(Duration::from_secs(5), || std::path::Path::new(
        &side_tcp
    )
    .exists()));
    let mut sleeper = Client::connect(&at.to_string()).unwrap();
    let slow = thread::spawn(move || {
        sleeper
            .request(params("/app", "sleep_ms=2000"), &b""[..])
            .unwrap()
            .status
    });
    assert!(eventually(Duration::from_secs(5), || figures(
        &side_tcp, "/"
    )
    .get("fcgi_workers_busy")
        == 1.0));
    let held: Vec<std::net::TcpStream> = (0..3)
        .map(|_| std::net::TcpStream::connect(at).unwrap())
        .collect();
    assert!(eventually(Duration::from_secs(2), || figures(
        &side_tcp, "/"
    )
    .get("fcgi_listen_queue")
        == 3.0));
    drop(held);
    assert_eq!(slow.join().unwrap(), 200);
    handle.shutdown();
    running.join().unwrap().unwrap();
}

#[test]
fn a_metrics_handle_reads_the_same_figures() {
    let dir = TempDir::new("handle");
    let path = dir.path("app.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let srv = Server::new(app)
        .status_path(STATUS)
        .handle_signals(false)
        .listener(listener);
    let metrics = srv.metrics_handle();
    assert_eq!(metrics.snapshot().requests, 0);
    let stop = srv.shutdown_handle();
    let running = thread::spawn(move || srv.run());
    let a = path.to_str().unwrap();
    let mut c = connect_retry(a);
    assert_eq!(
        c.request(params("/app", "status=201"), &b""[..])
            .unwrap()
            .status,
        201
    );
    let m = metrics.snapshot();
    let page = figures(a, STATUS);
    assert_eq!((m.requests, m.responses[1]), (1, 1));
    assert_eq!(m.requests as f64, page.get("fcgi_requests_total"));
    assert_eq!(m.workers_max as f64, page.get("fcgi_workers_max"));
    assert_eq!(m.request_duration.count, 1);
    assert!(!m.workers.is_empty() && m.workers.iter().all(|w| w.current.is_none()));
    stop.shutdown();
    running.join().unwrap().unwrap();
}
