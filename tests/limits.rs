//! The limits and timeouts that bound what one peer can cost, over real
//! sockets: each ends that peer's connection, and none holds up others.

mod support;

use fcgi_server::protocol::record_type::{GET_VALUES, GET_VALUES_RESULT, PARAMS};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::frontend;
use support::*;

/// Whether the server has closed `raw` (reads what is there, without
/// waiting more than a moment).
fn closed_now(raw: &mut Raw) -> bool {
    raw.stream.set_nonblocking(true).unwrap();
    let closed = raw.is_closed();
    raw.stream.set_nonblocking(false).unwrap();
    closed
}

/// Sends `bytes` on `raw`: the request is answered with `status`,
/// `reason` on its error stream, and the connection closed.
fn refused(raw: &mut Raw, bytes: &[u8], status: &str, reason: &str) {
    raw.send(bytes).unwrap();
    let reply = raw.read_reply(1);
    let head = reply.status_line();
    assert!(head.contains(status), "{}", reply.stdout_str());
    let err = String::from_utf8_lossy(&reply.stderr).into_owned();
    assert!(err.contains(reason), "{err}");
    assert!(reply.end.is_some());
    assert!(raw.is_closed());
}

/// The begin record and half of a params record: a request that stalls.
fn half_a_request(id: u16) -> Vec<u8> {
    let mut bytes = begin(id, 1, true);
    let params = record(PARAMS, id, &pairs(&[("REQUEST_METHOD", "GET"), ("X", "y")]));
    bytes.extend_from_slice(&params[..params.len() / 2]);
    bytes
}

#[test]
fn params_over_the_byte_limit_are_answered_431_and_the_connection_closed() {
    let srv = TestServer::start(echo::handle, |s| s.max_params_bytes(1000));
    let mut raw = srv.connect();
    let mut bytes = begin(1, 1, true);
    let value = "v".repeat(96);
    for _ in 0..20 {
        bytes.extend(record(PARAMS, 1, &pairs(&[("XY", &value)])));
    }
    bytes.extend(record(PARAMS, 1, b""));
    refused(&mut raw, &bytes, "431", "exceed the limit of 1000 bytes");
    // Just under the limit is served.
    let mut raw = srv.connect();
    let fits = [("REQUEST_METHOD", "GET"), ("XY", &"v".repeat(900)[..])];
    raw.send(&request(1, true, &fits, b"")).unwrap();
    assert!(raw.read_reply(1).status_line().contains("200"));
}

#[test]
fn more_params_than_the_limit_are_answered_431() {
    let srv = TestServer::start(echo::handle, |s| s.max_params(10));
    let names: Vec<String> = (0..11).map(|i| format!("P{i}")).collect();
    let params: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1")).collect();
    let mut raw = srv.connect();
    raw.send(&request(1, true, &params[..10], b"")).unwrap();
    assert!(raw.read_reply(1).status_line().contains("200"));
    let too_many = request(1, true, &params, b"");
    refused(
        &mut raw,
        &too_many,
        "431",
        "11 params, over the limit of 10",
    );
    srv.assert_serves_within(Duration::from_secs(5));
}

#[test]
fn records_beyond_the_limit_before_a_request_is_complete() {
    let srv = TestServer::start(echo::handle, |s| s.max_records(50));
    // Params in one-byte records: 60 records before the end of params.
    let mut raw = srv.connect();
    let mut bytes = begin(1, 1, true);
    let stream = pairs(&[("REQUEST_METHOD", "GET"), ("X", &"y".repeat(40))]);
    for b in &stream {
        bytes.extend(record(PARAMS, 1, std::slice::from_ref(b)));
    }
    bytes.extend(record(PARAMS, 1, b""));
    refused(&mut raw, &bytes, "400", "more than 50 records");
    // Management records without a request count too.
    let mut raw = srv.connect();
    let ask = record(GET_VALUES, 0, &pairs(&[("FCGI_MPXS_CONNS", "")]));
    raw.send(&ask.repeat(80)).unwrap();
    let mut answers = 0;
    while let Some(rec) = raw.read_record().unwrap() {
        assert_eq!(rec.header.record_type, GET_VALUES_RESULT);
        answers += 1;
    }
    assert_eq!(answers, 50, "answered until the limit, then closed");
    // The count starts again with every request.
    let mut c = srv.client();
    c.keep_conn(true);
    for _ in 0..100 {
        assert_eq!(c.request(get(""), &b""[..]).unwrap().status, 200);
    }
}

#[test]
fn a_peer_stalling_mid_request_holds_no_worker_and_is_closed_after_the_read_timeout() {
    let timeout = Duration::from_secs(2);
    let srv = TestServer::start(echo::handle, |s| s.workers(1).read_timeout(Some(timeout)));
    let start = Instant::now();
    let mut staller = srv.connect();
    staller.send(&half_a_request(1)).unwrap();
    // The one worker is free for others meanwhile.
    for _ in 0..5 {
        srv.assert_serves_within(timeout);
    }
    assert!(start.elapsed() < timeout, "too slow to tell");
    assert!(!closed_now(&mut staller), "closed before its timeout");
    assert!(staller.is_closed());
    let took = start.elapsed();
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(3),
        "closed after {took:?}"
    );
    // A peer that trickles a byte at a time is held to the same deadline.
    let start = Instant::now();
    let mut trickler = srv.connect();
    let bytes = half_a_request(1);
    let mut closed = false;
    for b in bytes.iter().cycle().take(200) {
        if trickler.send(std::slice::from_ref(b)).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        if start.elapsed() > timeout + Duration::from_secs(3) {
            break;
        }
    }
    assert!(
        closed || closed_now(&mut trickler),
        "a trickling peer kept its connection for {:?}",
        start.elapsed()
    );
    srv.assert_serves_within(Duration::from_secs(5));
}

#[test]
fn a_thousand_slowloris_connections_do_not_stall_other_clients() {
    raise_fd_limit(4096);
    let timeout = Duration::from_secs(6);
    let srv = TestServer::start(echo::handle, |s| s.read_timeout(Some(timeout)));
    let start = Instant::now();
    let stallers: Vec<Raw> = (0..1000)
        .map(|i| {
            let mut raw = srv.connect();
            raw.send(&half_a_request(i as u16 + 1)).unwrap();
            raw
        })
        .collect();
    let opened = start.elapsed();
    for _ in 0..20 {
        srv.assert_serves_within(Duration::from_secs(1));
    }
    assert!(
        start.elapsed() < timeout,
        "too slow to tell (opening took {opened:?})"
    );
    let mut stallers = stallers;
    let open = stallers
        .iter_mut()
        .filter_map(|r| (!closed_now(r)).then_some(()))
        .count();
    assert_eq!(
        open, 1000,
        "stalled connections closed before their timeout"
    );
    let all_closed = eventually(timeout + Duration::from_secs(5), || {
        stallers.iter_mut().all(closed_now)
    });
    assert!(all_closed, "stalled connections outlived the read timeout");
    srv.assert_serves_within(Duration::from_secs(1));
}

#[test]
fn a_peer_that_stops_reading_is_dropped_after_the_write_timeout() {
    let srv = TestServer::start(echo::handle, |s| {
        s.workers(1).write_timeout(Some(Duration::from_millis(500)))
    });
    let mut sluggard = srv.connect();
    let params = get("size=52428800");
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    sluggard.send(&request(1, false, &params, b"")).unwrap();
    // The only worker is stuck writing to it until the write timeout;
    // then it serves this one.
    srv.assert_serves_within(Duration::from_secs(5));
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match sluggard.stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    assert!(
        got < 52_428_800,
        "the whole response arrived ({got} bytes) although it was not read"
    );
}

#[test]
fn an_idle_kept_open_connection_is_closed_after_the_idle_timeout() {
    let srv = TestServer::start(echo::handle, |s| s.idle_timeout(Duration::from_millis(400)));
    let mut raw = srv.connect();
    let start = Instant::now();
    raw.send(&request(1, true, &[("REQUEST_METHOD", "GET")], b""))
        .unwrap();
    assert!(raw.read_reply(1).end.is_some());
    let mut silent = srv.connect();
    assert!(raw.is_closed() && silent.is_closed());
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(4),
        "closed after {took:?}"
    );
    srv.assert_serves_within(Duration::from_secs(5));
}

/// The echo example in a child process whose descriptor limit is `limit`.
fn echo_with_fd_limit(sock: &std::path::Path, limit: u32) -> std::process::Child {
    let cmd = format!("ulimit -n {limit} && exec \"$0\" \"$1\"");
    Command::new("sh")
        .args(["-c", &cmd])
        .arg(example("echo"))
        .arg(sock)
        .env("FCGI_WORKERS", "4")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn out_of_descriptors_the_server_backs_off_keeps_serving_and_recovers() {
    let dir = TempDir::new("emfile");
    let sock = dir.path("app.sock");
    let mut child = echo_with_fd_limit(&sock, 24);
    drop(connect_retry(sock.to_str().unwrap()));
    // Far more connections than descriptors; each sends a keep-conn request.
    let mut conns: Vec<Raw> = (0..40)
        .map(|_| {
            let mut raw = Raw::connect(&sock);
            raw.send(&request(1, true, &[("REQUEST_METHOD", "GET")], b""))
                .unwrap();
            raw
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // Those accepted are answered; the others wait in the backlog.
    let (mut served, mut waiting) = (Vec::new(), Vec::new());
    for mut c in conns.drain(..) {
        c.stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        match c.read_record() {
            Ok(Some(_)) => served.push(c),
            _ => waiting.push(c),
        }
    }
    assert!(!served.is_empty(), "nothing was served");
    assert!(
        !waiting.is_empty(),
        "all were served: the limit did not bite"
    );
    // Connections already open go on being served.
    let c = &mut served[0];
    c.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    c.read_reply(1);
    c.send(&request(2, true, &[("REQUEST_METHOD", "GET")], b""))
        .unwrap();
    assert!(c.read_reply(2).status_line().contains("200"));
    // Descriptors freed: every waiting connection is served in turn.
    drop(served);
    for mut c in waiting {
        c.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        assert!(c.read_reply(1).status_line().contains("200"));
    }
    let mut c = connect_retry(sock.to_str().unwrap());
    c.set_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(c.request(get(""), &b""[..]).unwrap().status, 200);
    drop(c);
    frontend::signal(child.id(), "TERM");
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(child.wait().unwrap().success(), "{log}");
    let failures = log.matches("Too many open files").count();
    assert_eq!(failures, 1, "logged more than once:\n{log}");
}
