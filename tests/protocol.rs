//! The protocol as the spec and real web servers want it, over a real
//! unix socket: management records, roles, multiplexing, stream framing.

mod support;

use fcgi_server::protocol::{self, ProtocolStatus, record_type};
use fcgi_server::{Role, Server};
use std::io::{Read, Write};
use support::*;

fn params_of(query: &str) -> Vec<(&'static str, String)> {
    get(query)
}

fn as_refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn get_values_answers_only_what_was_asked_and_truthfully() {
    let srv = TestServer::start(echo::handle, |s: Server<_>| s.workers(3));
    let mut c = srv.client();
    let got = c
        .get_values(&["FCGI_MPXS_CONNS", "FCGI_MAX_REQS", "NO_SUCH_NAME"])
        .unwrap();
    assert_eq!(
        got,
        vec![
            ("FCGI_MPXS_CONNS".into(), "0".into()),
            ("FCGI_MAX_REQS".into(), "3".into())
        ]
    );
    let got = c.get_values(&["FCGI_MAX_CONNS"]).unwrap();
    assert_eq!(got, vec![("FCGI_MAX_CONNS".into(), "3".into())]);
    // The connection still serves a request afterwards.
    let res = c.request(as_refs(&params_of("")), &b""[..]).unwrap();
    assert_eq!(res.status, 200);
}

#[test]
fn unknown_management_type_gets_unknown_type() {
    let srv = TestServer::echo();
    let mut raw = srv.connect();
    raw.send(&record(42, 0, b"whatever")).unwrap();
    let rec = raw.read_record().unwrap().unwrap();
    assert_eq!(rec.header.record_type, record_type::UNKNOWN_TYPE);
    assert_eq!(rec.header.request_id, 0);
    assert_eq!(rec.content[0], 42);
}

#[test]
fn role_not_enabled_gets_unknown_role_and_enabled_role_is_served() {
    let srv = TestServer::echo();
    let mut raw = srv.connect();
    let mut req = begin(1, u16::from(Role::Filter), true);
    req.extend(record(record_type::PARAMS, 1, b""));
    raw.send(&req).unwrap();
    let reply = raw.read_reply(1);
    assert_eq!(
        reply.end.unwrap().protocol_status,
        u8::from(ProtocolStatus::UnknownRole)
    );
    assert!(reply.stdout.is_empty());
    // An undefined role value too.
    raw.send(&begin(2, 77, true)).unwrap();
    let reply = raw.read_reply(2);
    assert_eq!(
        reply.end.unwrap().protocol_status,
        u8::from(ProtocolStatus::UnknownRole)
    );

    let srv = TestServer::start(
        |req: &mut fcgi_server::Request<'_>, res: &mut fcgi_server::Response<'_>| {
            write!(res, "role={:?}", req.role())
        },
        |s| s.roles(&[Role::Authorizer]),
    );
    let mut raw = srv.connect();
    let mut req = begin(1, u16::from(Role::Authorizer), false);
    req.extend(record(record_type::PARAMS, 1, b""));
    raw.send(&req).unwrap();
    let reply = raw.read_reply(1);
    assert_eq!(reply.end.unwrap().protocol_status, 0);
    assert!(
        reply.stdout_str().ends_with("role=Authorizer"),
        "{}",
        reply.stdout_str()
    );
}

#[test]
fn second_concurrent_request_gets_cant_mpx_conn() {
    let srv = TestServer::echo();
    let mut raw = srv.connect();
    let p = pairs(&[("REQUEST_METHOD", "POST"), ("QUERY_STRING", "")]);
    let mut bytes = begin(1, 1, true);
    bytes.extend(record(record_type::PARAMS, 1, &p));
    bytes.extend(record(record_type::PARAMS, 1, b""));
    bytes.extend(record(record_type::STDIN, 1, b"first part,"));
    // A second request arrives while the first is still reading its body.
    bytes.extend(begin(2, 1, true));
    bytes.extend(record(record_type::STDIN, 1, b"second part"));
    bytes.extend(record(record_type::STDIN, 1, b""));
    raw.send(&bytes).unwrap();
    let refused = raw.read_record().unwrap().unwrap();
    assert_eq!(refused.header.record_type, record_type::END_REQUEST);
    assert_eq!(refused.header.request_id, 2);
    assert_eq!(refused.content[4], u8::from(ProtocolStatus::CantMpxConn));
    let reply = raw.read_reply(1);
    assert_eq!(reply.body(), b"first part,second part");
    assert_eq!(reply.end.unwrap().protocol_status, 0);
}

#[test]
fn records_for_inactive_ids_are_ignored() {
    let srv = TestServer::echo();
    let mut raw = srv.connect();
    let mut bytes = Vec::new();
    bytes.extend(record(record_type::STDIN, 9, b"stray"));
    bytes.extend(record(record_type::PARAMS, 9, b"\x01\x01ab"));
    bytes.extend(record(record_type::ABORT_REQUEST, 9, b""));
    bytes.extend(record(record_type::DATA, 1, b"no request yet"));
    let p = pairs(&[("REQUEST_METHOD", "POST"), ("QUERY_STRING", "")]);
    bytes.extend(begin(1, 1, false));
    bytes.extend(record(record_type::PARAMS, 1, &p));
    bytes.extend(record(record_type::STDIN, 7, b"not ours"));
    bytes.extend(record(record_type::PARAMS, 1, b""));
    bytes.extend(record(record_type::STDIN, 1, b"ours"));
    bytes.extend(record(record_type::ABORT_REQUEST, 3, b""));
    bytes.extend(record(record_type::STDIN, 1, b""));
    raw.send(&bytes).unwrap();
    let reply = raw.read_reply(1);
    assert_eq!(reply.body(), b"ours");
    assert!(reply.records.iter().all(|r| r.header.request_id == 1));
}

#[test]
fn params_and_stdin_split_into_one_byte_records_and_padded_records() {
    let srv = TestServer::echo();
    let p = pairs(&[
        ("REQUEST_METHOD", "POST"),
        ("QUERY_STRING", ""),
        ("LONG_VALUE", &"v".repeat(300)),
    ]);
    let body: Vec<u8> = (0..2000u32).map(|i| (i * 7) as u8).collect();
    let whole = {
        let mut raw = srv.connect();
        let mut bytes = begin(1, 1, false);
        bytes.extend(record(record_type::PARAMS, 1, &p));
        bytes.extend(record(record_type::PARAMS, 1, b""));
        bytes.extend(record(record_type::STDIN, 1, &body));
        bytes.extend(record(record_type::STDIN, 1, b""));
        raw.send(&bytes).unwrap();
        raw.read_reply(1)
    };
    assert_eq!(whole.body(), &body[..]);
    for pad in [0u8, 1, 7, 255] {
        let mut raw = srv.connect();
        let mut bytes = begin(1, 1, false);
        for b in &p {
            bytes.extend(padded(record_type::PARAMS, 1, &[*b], pad));
        }
        bytes.extend(padded(record_type::PARAMS, 1, b"", pad));
        for b in &body {
            bytes.extend(padded(record_type::STDIN, 1, &[*b], pad));
        }
        bytes.extend(padded(record_type::STDIN, 1, b"", pad));
        raw.send(&bytes).unwrap();
        let reply = raw.read_reply(1);
        assert_eq!(reply.stdout, whole.stdout, "padding {pad}");
        assert_eq!(reply.end.unwrap().protocol_status, 0);
    }
}

#[test]
fn output_records_are_aligned_to_eight_bytes() {
    let srv = TestServer::echo();
    let mut raw = srv.connect();
    raw.send(&request(
        1,
        false,
        &as_refs(&params_of("size=70001&stderr=abc")),
        b"",
    ))
    .unwrap();
    let reply = raw.read_reply(1);
    assert_eq!(reply.body().len(), 70001);
    for rec in &reply.records {
        assert_eq!(rec.header.record_len() % 8, 0, "{:?}", rec.header);
    }
    assert_eq!(reply.stderr, b"abc\n");
}

#[test]
fn abort_mid_body_is_seen_by_the_handler_and_answered_once() {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let srv = TestServer::start(
        move |req: &mut fcgi_server::Request<'_>, res: &mut fcgi_server::Response<'_>| {
            let mut buf = Vec::new();
            let err = req.read_to_end(&mut buf).unwrap_err();
            tx.lock()
                .unwrap()
                .send((buf.len(), err.kind(), req.is_aborted()))
                .unwrap();
            res.write_all(b"too late")
        },
        |s| s,
    );
    let mut raw = srv.connect();
    let p = pairs(&[("REQUEST_METHOD", "POST")]);
    let mut bytes = begin(1, 1, true);
    bytes.extend(record(record_type::PARAMS, 1, &p));
    bytes.extend(record(record_type::PARAMS, 1, b""));
    bytes.extend(record(record_type::STDIN, 1, &[1u8; 1000]));
    raw.send(&bytes).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    raw.send(&record(record_type::ABORT_REQUEST, 1, b""))
        .unwrap();
    let (read, kind, aborted) = rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(read, 1000);
    assert_eq!(kind, std::io::ErrorKind::ConnectionAborted);
    assert!(aborted);
    let reply = raw.read_reply(1);
    assert!(reply.stdout.is_empty(), "{}", reply.stdout_str());
    assert_eq!(reply.end.unwrap().protocol_status, 0);
    // Exactly one END_REQUEST, and the kept connection serves the next request.
    raw.send(&request(1, true, &[("REQUEST_METHOD", "POST")], b""))
        .unwrap();
    let next = raw.read_reply(1);
    let ends = next
        .records
        .iter()
        .filter(|r| r.header.record_type == record_type::END_REQUEST)
        .count();
    assert_eq!(ends, 1);
}

#[test]
fn abort_before_params_end_skips_the_handler() {
    let srv = TestServer::echo();
    let mut raw = srv.connect();
    let mut bytes = begin(5, 1, true);
    bytes.extend(record(record_type::PARAMS, 5, &pairs(&[("A", "b")])));
    bytes.extend(record(record_type::ABORT_REQUEST, 5, b""));
    raw.send(&bytes).unwrap();
    let reply = raw.read_reply(5);
    assert!(reply.stdout.is_empty());
    assert_eq!(reply.end.unwrap().protocol_status, 0);
}

#[test]
fn duplicate_param_names_keep_the_last_value() {
    let srv = TestServer::echo();
    let mut raw = srv.connect();
    let params = [
        ("SCRIPT_NAME", "/first"),
        ("QUERY_STRING", ""),
        ("SCRIPT_NAME", ""),
    ];
    raw.send(&request(1, false, &params, b"")).unwrap();
    let body = String::from_utf8(raw.read_reply(1).body().to_vec()).unwrap();
    assert_eq!(body, "QUERY_STRING=\nSCRIPT_NAME=\n");
}

#[test]
fn every_value_of_a_name_sent_twice_is_kept_in_order() {
    let srv = TestServer::start(
        |req: &mut fcgi_server::Request<'_>, res: &mut fcgi_server::Response<'_>| {
            for v in req.param_values("HTTP_COOKIE") {
                res.write_all(v)?;
                res.write_all(b"|")?;
            }
            Ok(())
        },
        |s| s,
    );
    let mut raw = srv.connect();
    let params = [
        ("HTTP_COOKIE", "a=1"),
        ("QUERY_STRING", ""),
        ("HTTP_COOKIE", "b=2"),
    ];
    raw.send(&request(1, false, &params, b"")).unwrap();
    assert_eq!(raw.read_reply(1).body(), b"a=1|b=2|");
}

#[test]
fn header_values_need_not_be_utf8() {
    let srv = TestServer::start(
        |_req: &mut fcgi_server::Request<'_>, res: &mut fcgi_server::Response<'_>| {
            res.header_bytes("X-Latin1", b"caf\xe9");
            res.header_bytes("X-Forged", b"a\r\nSet-Cookie: x=1");
            Ok(())
        },
        |s| s,
    );
    let mut raw = srv.connect();
    raw.send(&request(1, false, &[("QUERY_STRING", "")], b""))
        .unwrap();
    let reply = raw.read_reply(1);
    assert!(reply.stdout.windows(14).any(|w| w == b"X-Latin1: caf\xe9"));
    assert!(
        !reply.stdout_str().contains("Set-Cookie"),
        "{}",
        reply.stdout_str()
    );
    assert!(String::from_utf8_lossy(&reply.stderr).contains("refused"));
}

#[test]
fn get_values_with_stray_bytes_in_body_is_a_protocol_error_for_that_connection_only() {
    let srv = TestServer::echo();
    let mut bad = srv.connect();
    bad.send(&record(record_type::GET_VALUES, 0, b"\x05"))
        .unwrap();
    assert!(bad.is_closed());
    srv.assert_serves();
}

#[test]
fn request_helpers_read_cgi_variables() {
    let srv = TestServer::start(
        |req: &mut fcgi_server::Request<'_>, res: &mut fcgi_server::Response<'_>| {
            write!(
                res,
                "{}|{}|{}|{}|{:?}|{:?}|{:?}|{}",
                req.method(),
                req.script_name(),
                req.path_info(),
                req.query_string(),
                req.content_length(),
                req.content_type(),
                req.header("user-agent"),
                req.keep_conn(),
            )
        },
        |s| s,
    );
    let mut c = srv.client();
    let res = c
        .request(
            [
                ("REQUEST_METHOD", "PUT"),
                ("SCRIPT_NAME", "/app"),
                ("PATH_INFO", "/x/y"),
                ("QUERY_STRING", "a=1"),
                ("CONTENT_LENGTH", "0"),
                ("CONTENT_TYPE", ""),
                ("HTTP_USER_AGENT", "t/1"),
            ],
            &b""[..],
        )
        .unwrap();
    assert_eq!(
        String::from_utf8(res.body).unwrap(),
        "PUT|/app|/x/y|a=1|Some(0)|None|Some(\"t/1\")|false"
    );
}

#[test]
fn header_injection_is_refused() {
    let srv = TestServer::start(
        |_req: &mut fcgi_server::Request<'_>, res: &mut fcgi_server::Response<'_>| {
            res.header("X-Ok", "1");
            res.header("X-Bad", "a\r\nSet-Cookie: evil=1");
            res.write_all(b"body")
        },
        |s| s,
    );
    let mut c = srv.client();
    let res = c.request(as_refs(&params_of("")), &b""[..]).unwrap();
    assert_eq!(res.header("X-Ok"), Some("1"));
    assert_eq!(res.header("Set-Cookie"), None);
    assert_eq!(res.header("X-Bad"), None);
    assert!(String::from_utf8_lossy(&res.stderr).contains("refused"));
    let _ = protocol::VERSION_1;
}

#[test]
fn small_and_large_writes_interleave_in_order_and_aligned() {
    let piece =
        |n: usize, seed: u8| -> Vec<u8> { (0..n).map(|i| seed.wrapping_add(i as u8)).collect() };
    let sizes = [
        10usize,
        100_000,
        5,
        40_000,
        32 * 1024,
        1,
        2 * 1024 * 1024 + 3,
    ];
    let expected: Vec<u8> = sizes
        .iter()
        .enumerate()
        .flat_map(|(i, &n)| piece(n, i as u8))
        .collect();
    let srv = TestServer::start(
        move |_req: &mut fcgi_server::Request<'_>, res: &mut fcgi_server::Response<'_>| {
            res.header("X-Pieces", &sizes.len().to_string());
            for (i, &n) in sizes.iter().enumerate() {
                res.write_all(&piece(n, i as u8))?;
                writeln!(res.stderr(), "piece {i}")?;
            }
            Ok(())
        },
        |s| s,
    );
    let mut raw = srv.connect();
    raw.send(&request(1, false, &[("REQUEST_METHOD", "GET")], b""))
        .unwrap();
    let reply = raw.read_reply(1);
    assert!(reply.stdout_str().contains("X-Pieces: 7\r\n"));
    assert!(reply.body() == &expected[..], "body differs");
    for rec in &reply.records {
        assert_eq!(rec.header.record_len() % 8, 0, "{:?}", rec.header);
        assert!(rec.header.content_len as usize <= 65528);
    }
    let stderr = String::from_utf8(reply.stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 7, "{stderr}");
    assert_eq!(reply.end.unwrap().protocol_status, 0);
}
