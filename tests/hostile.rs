//! Bad input from the socket closes that connection only: nothing
//! crashes, nothing else stalls.

mod support;

use fcgi_server::protocol::record_type;
use std::time::{Duration, Instant};
use support::*;

#[test]
fn version_2_record_closes_the_connection() {
    let srv = TestServer::echo();
    let mut raw = srv.connect();
    let mut bytes = begin(1, 1, true);
    bytes[0] = 2;
    raw.send(&bytes).unwrap();
    assert!(raw.is_closed());
    // Also mid-connection, after a good request.
    let mut raw = srv.connect();
    raw.send(&request(1, true, &[("REQUEST_METHOD", "GET")], b""))
        .unwrap();
    assert!(raw.read_reply(1).end.is_some());
    let mut bad = record(record_type::PARAMS, 1, b"");
    bad[0] = 2;
    raw.send(&bad).unwrap();
    assert!(raw.is_closed());
    srv.assert_serves();
}

#[test]
fn two_gib_name_value_length_claim_costs_nothing_and_closes() {
    let srv = TestServer::echo();
    let before = Instant::now();
    let mut raw = srv.connect();
    let mut bytes = begin(1, 1, false);
    // Name length 0x7fffffff, value length 1, then the end of params.
    bytes.extend(record(record_type::PARAMS, 1, b"\xff\xff\xff\xff\x01abc"));
    bytes.extend(record(record_type::PARAMS, 1, b""));
    raw.send(&bytes).unwrap();
    assert!(raw.is_closed());
    assert!(before.elapsed() < Duration::from_secs(5));
    srv.assert_serves();
}

/// (Params over the byte limit in many records: `tests/limits.rs`.)
#[test]
fn a_pair_claiming_more_than_the_limit_closes_the_connection() {
    let srv = TestServer::start(echo::handle, |s| s.max_params_bytes(1000));
    // A single pair whose claimed length exceeds the limit, in a small stream.
    let mut raw = srv.connect();
    let mut bytes = begin(1, 1, false);
    bytes.extend(record(record_type::PARAMS, 1, b"\x80\x00\x10\x00\x01"));
    bytes.extend(record(record_type::PARAMS, 1, b""));
    raw.send(&bytes).unwrap();
    assert!(raw.is_closed());
    srv.assert_serves();
}

#[test]
fn random_bytes_close_the_connection_and_others_are_unaffected() {
    let srv = TestServer::echo();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..8 {
        let bytes: Vec<u8> = (0..64 * 1024)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let mut raw = srv.connect();
        let _ = raw.send(&bytes);
        let _ = raw.stream.shutdown(std::net::Shutdown::Write);
        assert!(raw.is_closed(), "round {round}");
        srv.assert_serves();
    }
}

#[test]
fn application_record_types_from_the_peer_close_the_connection() {
    let srv = TestServer::echo();
    for t in [
        record_type::END_REQUEST,
        record_type::STDOUT,
        record_type::STDERR,
        record_type::GET_VALUES_RESULT,
        record_type::UNKNOWN_TYPE,
    ] {
        let mut raw = srv.connect();
        raw.send(&record(t, 1, b"12345678")).unwrap();
        assert!(raw.is_closed(), "type {t}");
    }
    srv.assert_serves();
}

#[test]
fn short_begin_request_body_closes_the_connection() {
    let srv = TestServer::echo();
    let mut raw = srv.connect();
    raw.send(&record(record_type::BEGIN_REQUEST, 1, b"\x00\x01\x01"))
        .unwrap();
    assert!(raw.is_closed());
    srv.assert_serves();
}

#[test]
fn peer_closing_mid_request_frees_the_worker() {
    let srv = TestServer::start(echo::handle, |s| s.workers(1));
    for _ in 0..5 {
        let mut raw = srv.connect();
        let mut bytes = begin(1, 1, false);
        bytes.extend(record(
            record_type::PARAMS,
            1,
            &pairs(&[("REQUEST_METHOD", "POST")]),
        ));
        bytes.extend(record(record_type::PARAMS, 1, b""));
        bytes.extend(record(record_type::STDIN, 1, b"partial"));
        raw.send(&bytes).unwrap();
        drop(raw);
    }
    srv.assert_serves();
}
