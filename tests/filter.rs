//! The filter role over raw sockets (no Debian web server plays it): the
//! data stream (`FCGI_DATA`) after the body, in one record and in 1-byte
//! records, 64 MiB in constant memory, data sent before the body ended,
//! an empty data stream, and a filter that does not read its data.

mod support;

use fcgi_server::protocol::record_type::{ABORT_REQUEST, BEGIN_REQUEST, DATA, PARAMS, STDIN};
use fcgi_server::{Request, Response, Role};
use std::io::{self, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::frontend::{Proc, status};
use support::http::Pattern;
use support::*;

const FILTER: u16 = 3;

/// examples/echo in-process, playing every role.
fn echo_filter() -> TestServer {
    TestServer::start(echo::handle, |s| s.roles(echo::ROLES))
}

/// A filter request's first records: begin-request and its params.
fn begin_filter(id: u16, keep_conn: bool, query: &str, data_len: usize) -> Vec<u8> {
    let len = data_len.to_string();
    let p = pairs(&[
        ("REQUEST_METHOD", "POST"),
        ("QUERY_STRING", query),
        ("FCGI_DATA_LENGTH", &len),
        ("FCGI_DATA_LAST_MOD", "1700000000"),
    ]);
    let mut out = begin(id, FILTER, keep_conn);
    out.extend(record(PARAMS, id, &p));
    out.extend(record(PARAMS, id, b""));
    out
}

/// `bytes` as records of `rtype` of at most `size` bytes each (padded
/// when `pad`), then the empty record that ends the stream.
fn stream(rtype: u8, id: u16, bytes: &[u8], size: usize, pad: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, chunk) in bytes.chunks(size).enumerate() {
        out.extend(padded(
            rtype,
            id,
            chunk,
            if pad { (i % 8) as u8 } else { 0 },
        ));
    }
    out.extend(record(rtype, id, b""));
    out
}

/// The value of header `name` in a reply's CGI header block.
fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let head = &text[..text.find("\r\n\r\n")?];
    head.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

/// Sends `bytes` on a new connection and reads the reply to request 1.
fn exchange(srv: &TestServer, bytes: &[u8]) -> Reply {
    let mut raw = srv.connect();
    raw.send(bytes).unwrap();
    raw.read_reply(1)
}

#[test]
fn data_in_one_record_follows_the_body() {
    let srv = echo_filter();
    let data = b"the file the web server filters\n";
    let mut bytes = begin_filter(1, false, "", data.len());
    bytes.extend(stream(STDIN, 1, b"form=1", 65535, false));
    bytes.extend(stream(DATA, 1, data, 65535, false));
    let reply = exchange(&srv, &bytes);
    assert_eq!(reply.end.unwrap().protocol_status, 0);
    let text = reply.stdout_str();
    assert_eq!(header(&text, "X-Stdin-Length"), Some("6"), "{text}");
    assert_eq!(header(&text, "X-Data-Length"), Some("32"), "{text}");
    assert_eq!(reply.body(), data);
}

#[test]
fn data_in_one_byte_records_counts_towards_no_params_limit() {
    // Far more records than max_records, and bytes than max_params_bytes:
    // those limits are for what comes before the handler runs.
    let srv = TestServer::start(echo::handle, |s| {
        s.roles(echo::ROLES).max_records(16).max_params_bytes(512)
    });
    let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut bytes = begin_filter(1, false, "", data.len());
    bytes.extend(stream(STDIN, 1, &data[..3000], 1, true));
    bytes.extend(stream(DATA, 1, &data, 1, true));
    let reply = exchange(&srv, &bytes);
    assert_eq!(reply.end.unwrap().protocol_status, 0);
    assert_eq!(header(&reply.stdout_str(), "X-Stdin-Length"), Some("3000"));
    assert!(reply.body() == data, "the data came back altered");
}

/// A request of `role` whose data records come early: before the params
/// end, between body records, and the data's end before the body's.
fn interleaved(role: u16) -> Vec<u8> {
    let mut bytes = begin(1, role, false);
    let p = pairs(&[("REQUEST_METHOD", "POST"), ("FCGI_DATA_LENGTH", "6")]);
    bytes.extend(record(PARAMS, 1, &p));
    bytes.extend(record(DATA, 1, b"ab"));
    bytes.extend(record(PARAMS, 1, b""));
    bytes.extend(record(STDIN, 1, b"body"));
    bytes.extend(record(DATA, 1, b"cd"));
    bytes.extend(record(STDIN, 1, b"more"));
    bytes.extend(padded(DATA, 1, b"ef", 6));
    bytes.extend(record(DATA, 1, b""));
    bytes.extend(record(DATA, 1, b"after its end: ignored"));
    bytes.extend(record(STDIN, 1, b""));
    bytes
}

#[test]
fn data_sent_before_the_body_ended_is_kept_in_order() {
    let srv = echo_filter();
    let reply = exchange(&srv, &interleaved(FILTER));
    assert_eq!(reply.end.unwrap().protocol_status, 0);
    assert_eq!(header(&reply.stdout_str(), "X-Stdin-Length"), Some("8"));
    assert_eq!(reply.body(), b"abcdef");
}

#[test]
fn a_responder_ignores_data_records() {
    let srv = echo_filter();
    let reply = exchange(&srv, &interleaved(1));
    assert_eq!(reply.body(), b"bodymore");
}

/// Two data records, more than the bound on early data together.
fn over_the_early_bound() -> Vec<u8> {
    let mut out = record(DATA, 1, &[b'x'; 40_000]);
    out.extend(record(DATA, 1, &[b'y'; 40_000]));
    out
}

/// Sends `bytes` on a new connection; the reply to request 1, once the
/// server has closed the connection.
fn reply_then_closed(srv: &TestServer, bytes: &[u8]) -> Reply {
    let mut raw = srv.connect();
    raw.send(bytes).unwrap();
    let reply = raw.read_reply(1);
    assert!(raw.is_closed(), "{}", reply.stdout_str());
    reply
}

#[test]
fn early_data_beyond_its_bound_closes_the_connection() {
    let srv = echo_filter();
    let mut bytes = begin_filter(1, true, "", 100_000);
    bytes.extend(record(STDIN, 1, b"body not ended"));
    bytes.extend(over_the_early_bound());
    // The handler's read of the body fails, so it answers 500; the
    // connection is then closed, kept-open or not.
    let reply = reply_then_closed(&srv, &bytes);
    assert!(
        reply.status_line().contains("500"),
        "{}",
        reply.stdout_str()
    );
    // Before the params end, the request is refused with 400.
    let mut bytes = begin(1, FILTER, true);
    bytes.extend(over_the_early_bound());
    let reply = reply_then_closed(&srv, &bytes);
    assert!(
        reply.status_line().contains("400"),
        "{}",
        reply.stdout_str()
    );
    assert!(String::from_utf8_lossy(&reply.stderr).contains("65536 bytes of FCGI_DATA"));
    srv.assert_serves();
}

#[test]
fn an_empty_data_stream() {
    let srv = echo_filter();
    let mut bytes = begin_filter(1, false, "", 0);
    bytes.extend(record(STDIN, 1, b""));
    bytes.extend(record(DATA, 1, b""));
    let reply = exchange(&srv, &bytes);
    assert_eq!(reply.end.unwrap().protocol_status, 0);
    let text = reply.stdout_str();
    assert_eq!(header(&text, "X-Data-Length"), Some("0"), "{text}");
    assert!(reply.body().is_empty(), "{text}");
    // With digest=1: the line for no bytes.
    let mut bytes = begin_filter(1, false, "digest=1", 0);
    bytes.extend(record(STDIN, 1, b""));
    bytes.extend(record(DATA, 1, b""));
    let reply = exchange(&srv, &bytes);
    assert_eq!(reply.body(), b"0 cbf29ce484222325\n");
}

/// A filter that answers without reading its data (the spec allows it:
/// from a cache, say), and one that reads half of it.
fn lazy_filter(req: &mut Request<'_>, res: &mut Response<'_>) -> io::Result<()> {
    let mut half = vec![0u8; req.data_length().unwrap_or(0) as usize / 2];
    let read = if req.query_string() == "half" {
        req.data().read_exact(&mut half)?;
        half.len()
    } else {
        0
    };
    write!(res, "{read} {:?}", req.data_last_mod())
}

#[test]
fn unread_data_of_a_kept_open_filter_is_dropped_and_the_connection_serves_on() {
    let srv = TestServer::start(lazy_filter, |s| {
        s.roles(&[Role::Responder, Role::Filter]).max_records(16)
    });
    let data = vec![b'd'; 5000];
    let mut raw = srv.connect();
    for (i, query) in ["", "half", "", "half"].iter().enumerate() {
        let len = data.len().to_string();
        let p = pairs(&[("QUERY_STRING", query), ("FCGI_DATA_LENGTH", &len)]);
        let mut bytes = begin(1, FILTER, true);
        bytes.extend(record(PARAMS, 1, &p));
        bytes.extend(record(PARAMS, 1, b""));
        // Unread body too, and data in records far more than max_records.
        bytes.extend(stream(STDIN, 1, b"unread body", 1, false));
        bytes.extend(stream(DATA, 1, &data, 1, false));
        raw.send(&bytes).unwrap();
        let reply = raw.read_reply(1);
        assert_eq!(reply.end.unwrap().protocol_status, 0, "request {i}");
        let want = if *query == "half" {
            "2500 None"
        } else {
            "0 None"
        };
        assert_eq!(reply.body(), want.as_bytes(), "request {i}");
    }
    // Still the same connection, in step: a responder request on it.
    let mut bytes = request(1, true, &[("QUERY_STRING", "")], b"");
    bytes.extend(record(DATA, 1, b"a responder has no data stream"));
    raw.send(&bytes).unwrap();
    let reply = raw.read_reply(1);
    assert_eq!(reply.body(), b"0 None");
    let wait = Some(Duration::from_millis(300));
    raw.stream.set_read_timeout(wait).unwrap();
    assert!(!raw.is_closed());
}

#[test]
fn reading_the_data_drops_the_rest_of_the_body_and_an_abort_ends_it() {
    fn handler(req: &mut Request<'_>, res: &mut Response<'_>) -> io::Result<()> {
        let mut first = [0u8; 3];
        req.read_exact(&mut first)?;
        let mut data = Vec::new();
        let read = req.data().read_to_end(&mut data);
        let mut after = Vec::new();
        req.read_to_end(&mut after)?;
        res.write_all(&first)?;
        write!(
            res,
            " {:?} {} {}",
            read.map_err(|e| e.kind()),
            data.len(),
            after.len()
        )
    }
    let srv = TestServer::start(handler, |s| s.roles(&[Role::Filter]));
    let mut bytes = begin_filter(1, false, "", 4);
    bytes.extend(stream(STDIN, 1, b"abcdefgh", 2, false));
    bytes.extend(stream(DATA, 1, b"data", 3, false));
    let reply = exchange(&srv, &bytes);
    assert_eq!(reply.body(), b"abc Ok(4) 4 0");
    // An abort while the data stream is read: the read fails.
    let mut bytes = begin_filter(1, false, "", 4);
    bytes.extend(stream(STDIN, 1, b"abc", 3, false));
    bytes.extend(record(DATA, 1, b"da"));
    bytes.extend(record(ABORT_REQUEST, 1, b""));
    let reply = exchange(&srv, &bytes);
    assert_eq!(reply.end.unwrap().protocol_status, 0);
    assert!(reply.stdout.is_empty(), "{}", reply.stdout_str());
}

#[test]
fn the_client_sends_a_data_stream() {
    let srv = echo_filter();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let len = data.len().to_string();
    let params = [
        ("REQUEST_METHOD", "POST"),
        ("FCGI_DATA_LENGTH", len.as_str()),
    ];
    let mut client = srv.client();
    client.role(Role::Filter).keep_conn(true);
    for _ in 0..2 {
        let res = client
            .request_with_data(params, &b"x=1"[..], &data[..])
            .unwrap();
        assert_eq!(res.status, 200);
        assert_eq!(res.header("X-Stdin-Length"), Some("3"));
        assert_eq!(res.header("X-Data-Length"), Some(len.as_str()));
        assert!(res.body == data, "the data came back altered");
    }
    // A begin-request record of the filter role reaches only a server
    // that plays it.
    let srv = TestServer::echo();
    let mut raw = srv.connect();
    raw.send(&record(BEGIN_REQUEST, 1, &[0, 3, 0, 0, 0, 0, 0, 0]))
        .unwrap();
    assert_eq!(raw.read_reply(1).end.unwrap().protocol_status, 3);
}

fn kib(pid: u32, key: &str) -> u64 {
    status(pid, key)
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{key}"))
}

/// 64 MiB of data through examples/echo in a child process, checked end
/// to end by its digest, while the server's peak memory stays flat.
#[test]
fn sixty_four_mib_of_data_stream_through_in_constant_memory() {
    let dir = TempDir::new("filter");
    let sock = dir.path("app.sock");
    let app = Proc(
        Command::new(example("echo"))
            .arg(&sock)
            .env("FCGI_WORKERS", "2")
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut client = connect_retry(sock.to_str().unwrap());
    client.set_timeout(Some(Duration::from_secs(120))).unwrap();
    client.role(Role::Filter).keep_conn(true);
    let mut digest = |size: u64| {
        let len = size.to_string();
        let params = [
            ("REQUEST_METHOD", "POST"),
            ("QUERY_STRING", "digest=1"),
            ("FCGI_DATA_LENGTH", len.as_str()),
        ];
        let body = Pattern::new(size / 3);
        let res = client
            .request_with_data(params, body, Pattern::new(size))
            .unwrap();
        let want = echo::digest(&mut Pattern::new(size)).unwrap().line();
        assert_eq!(String::from_utf8_lossy(&res.body), want);
        assert_eq!(res.header("X-Stdin-Length"), Some(&*(size / 3).to_string()));
    };
    // A warm-up: the worker's buffers grow to their largest once.
    digest(1 << 20);
    let before = kib(app.pid(), "VmHWM:");
    digest(64 << 20);
    let (peak, rss) = (kib(app.pid(), "VmHWM:"), kib(app.pid(), "VmRSS:"));
    eprintln!("server memory over 64 MiB of data: peak {before} -> {peak} KiB, now {rss} KiB");
    assert!(
        peak < before + 4 * 1024,
        "peak RSS grew from {before} KiB to {peak} KiB over 64 MiB of data"
    );
}
