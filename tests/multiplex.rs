//! Multiplexing (`Server::multiplex`), over raw records on real sockets:
//! requests interleaved on one connection, each answered on its own,
//! within the limits of any request.

mod support;

use std::collections::HashMap;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use fcgi_server::protocol::record_type::{
    ABORT_REQUEST, END_REQUEST, GET_VALUES, GET_VALUES_RESULT, PARAMS, STDERR, STDIN, STDOUT,
};
use fcgi_server::protocol::{EndRequest, ProtocolStatus};
use support::*;

/// Every reply on the connection, by request id, until each of `ids` has
/// its END_REQUEST (or the connection ends); the order the ids ended in.
fn read_replies(raw: &mut Raw, ids: &[u16]) -> (HashMap<u16, Reply>, Vec<u16>) {
    let mut replies: HashMap<u16, Reply> = HashMap::new();
    let mut ended = Vec::new();
    while ended.len() < ids.len() {
        let Some(rec) = raw.read_record().unwrap() else {
            break;
        };
        let id = rec.header.request_id;
        let reply = replies.entry(id).or_default();
        reply.records.push(rec.clone());
        match rec.header.record_type {
            STDOUT => reply.stdout.extend_from_slice(&rec.content),
            STDERR => reply.stderr.extend_from_slice(&rec.content),
            END_REQUEST => {
                reply.end = Some(EndRequest::decode(&rec.content).unwrap());
                ended.push(id);
            }
            _ => {}
        }
    }
    (replies, ended)
}

fn params_for(query: &str) -> Vec<(&'static str, String)> {
    vec![
        ("REQUEST_METHOD", "GET".into()),
        ("QUERY_STRING", query.into()),
        ("SCRIPT_NAME", "/app".into()),
    ]
}

/// The records of one GET request with `query`, as separate pieces.
fn pieces(id: u16, query: &str) -> Vec<Vec<u8>> {
    let params = params_for(query);
    let refs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vec![
        begin(id, 1, true),
        record(PARAMS, id, &pairs(&refs)),
        record(PARAMS, id, b""),
        record(STDIN, id, b""),
    ]
}

/// The records of several requests, interleaved one record of each at a
/// time.
fn interleaved(requests: &[Vec<Vec<u8>>]) -> Vec<u8> {
    let mut out = Vec::new();
    let most = requests.iter().map(Vec::len).max().unwrap_or(0);
    for i in 0..most {
        for r in requests {
            if let Some(piece) = r.get(i) {
                out.extend_from_slice(piece);
            }
        }
    }
    out
}

fn multiplexing(n: usize, workers: usize) -> TestServer {
    TestServer::start(echo::handle, |s| s.multiplex(n).workers(workers))
}

#[test]
fn get_values_says_the_connection_multiplexes() {
    let srv = multiplexing(4, 4);
    let mut c = srv.client();
    let values = c.get_values(&["FCGI_MPXS_CONNS", "FCGI_MAX_REQS"]).unwrap();
    assert!(
        values.contains(&("FCGI_MPXS_CONNS".into(), "1".into())),
        "{values:?}"
    );
    assert!(
        values.contains(&("FCGI_MAX_REQS".into(), "4".into())),
        "{values:?}"
    );
}

#[test]
fn a_quick_request_is_answered_before_a_slow_one_begun_before_it() {
    let srv = multiplexing(4, 4);
    let mut raw = srv.connect();
    let slow = pieces(1, "sleep_ms=400&status=201");
    let quick = pieces(2, "status=202");
    raw.send(&interleaved(&[slow, quick])).unwrap();
    let (replies, ended) = read_replies(&mut raw, &[1, 2]);
    assert_eq!(ended, [2, 1], "the quick one ends first");
    assert!(replies[&1].status_line().contains("201"));
    assert!(replies[&2].status_line().contains("202"));
    // And the connection stays open for more.
    raw.send(&interleaved(&[pieces(7, "status=203")])).unwrap();
    let (replies, _) = read_replies(&mut raw, &[7]);
    assert!(replies[&7].status_line().contains("203"));
}

#[test]
fn a_hundred_requests_in_flight_on_one_connection_with_eight_workers() {
    let srv = multiplexing(100, 8);
    let mut raw = srv.connect();
    let ids: Vec<u16> = (1..=100).collect();
    let requests: Vec<Vec<Vec<u8>>> = ids
        .iter()
        .map(|&id| pieces(id, &format!("size={}&sleep_ms={}", 1000 + id, id % 7)))
        .collect();
    raw.send(&interleaved(&requests)).unwrap();
    let (replies, ended) = read_replies(&mut raw, &ids);
    assert_eq!(ended.len(), 100, "every request ended");
    for id in ids {
        let body = replies[&id].body();
        assert_eq!(body.len(), 1000 + id as usize, "request {id}");
        assert!(
            body.iter()
                .enumerate()
                .all(|(i, &b)| b == b'a' + (i % 26) as u8),
            "request {id}: its own body, unmixed"
        );
        let end = replies[&id].end.unwrap();
        assert_eq!(
            end.protocol_status,
            u8::from(ProtocolStatus::RequestComplete)
        );
    }
}

#[test]
fn every_record_is_whole_and_every_write_of_a_request_stays_in_order() {
    // Two large responses at once: their records interleave, each intact.
    let srv = multiplexing(4, 4);
    let mut raw = srv.connect();
    let big = |id| pieces(id, &format!("size={}", 3 << 20));
    raw.send(&interleaved(&[big(1), big(2)])).unwrap();
    let (replies, ended) = read_replies(&mut raw, &[1, 2]);
    assert_eq!(ended.len(), 2);
    for id in [1, 2] {
        let body = replies[&id].body();
        assert_eq!(body.len(), 3 << 20);
        assert!(
            body.iter()
                .enumerate()
                .all(|(i, &b)| b == b'a' + (i % 26) as u8)
        );
    }
}

#[test]
fn bodies_larger_than_a_pipe_stream_through_and_come_out_whole() {
    // Their records count towards no limit on records (250 each here).
    let srv = TestServer::start(echo::handle, |s| s.multiplex(4).workers(4).max_records(100));
    let mut raw = srv.connect();
    let body: Vec<u8> = (0..2_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let post = |id: u16| {
        let mut out = begin(id, 1, true);
        let p = pairs(&[("REQUEST_METHOD", "POST"), ("QUERY_STRING", "digest=1")]);
        out.extend(record(PARAMS, id, &p));
        out.extend(record(PARAMS, id, b""));
        out
    };
    // Both requests' bodies, their records alternating.
    let mut bytes = [post(1), post(2)].concat();
    for chunk in body.chunks(8_000) {
        bytes.extend(record(STDIN, 1, chunk));
        bytes.extend(record(STDIN, 2, chunk));
    }
    bytes.extend(record(STDIN, 1, b""));
    bytes.extend(record(STDIN, 2, b""));
    let mut writer = raw.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&bytes));
    let (replies, ended) = read_replies(&mut raw, &[1, 2]);
    sender.join().unwrap().unwrap();
    assert_eq!(ended.len(), 2);
    let want = echo::digest(&mut &body[..]).unwrap().line();
    for id in [1, 2] {
        assert_eq!(replies[&id].body(), want.as_bytes());
    }
}

#[test]
fn an_abort_ends_that_request_only() {
    let srv = multiplexing(4, 4);
    let mut raw = srv.connect();
    // Request 1 waits for a body that does not come; request 2 is whole.
    let mut bytes = begin(1, 1, true);
    let p = pairs(&[("REQUEST_METHOD", "POST"), ("QUERY_STRING", "")]);
    bytes.extend(record(PARAMS, 1, &p));
    bytes.extend(record(PARAMS, 1, b""));
    bytes.extend(record(STDIN, 1, b"part of a body"));
    bytes.extend(interleaved(&[pieces(2, "status=202")]));
    raw.send(&bytes).unwrap();
    let (replies, _) = read_replies(&mut raw, &[2]);
    assert!(replies[&2].status_line().contains("202"));
    raw.send(&record(ABORT_REQUEST, 1, b"")).unwrap();
    let (replies, ended) = read_replies(&mut raw, &[1]);
    assert_eq!(ended, [1], "the aborted request is ended");
    assert!(!replies[&1].stdout_str().contains("part of a body"));
    // The connection still serves.
    raw.send(&interleaved(&[pieces(3, "status=203")])).unwrap();
    let (replies, _) = read_replies(&mut raw, &[3]);
    assert!(replies[&3].status_line().contains("203"));
}

#[test]
fn a_panic_ends_that_request_only() {
    let srv = multiplexing(4, 4);
    let mut raw = srv.connect();
    raw.send(&interleaved(&[
        pieces(1, "panic=1"),
        pieces(2, "status=202"),
    ]))
    .unwrap();
    let (replies, ended) = read_replies(&mut raw, &[1, 2]);
    assert_eq!(ended.len(), 2);
    assert!(
        replies[&1].status_line().contains("500"),
        "{}",
        replies[&1].stdout_str()
    );
    assert!(replies[&2].status_line().contains("202"));
}

#[test]
fn a_slow_writer_does_not_hold_up_the_others() {
    let srv = TestServer::start(
        |req: &mut fcgi_server::Request<'_>, res: &mut fcgi_server::Response<'_>| {
            if req.query_string() == "slow" {
                for _ in 0..5 {
                    res.write_all(&[b's'; 1000])?;
                    res.flush()?;
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            res.write_all(b"done")
        },
        |s| s.multiplex(4).workers(4),
    );
    let mut raw = srv.connect();
    raw.send(&interleaved(&[pieces(1, "slow")])).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    raw.send(&interleaved(&[pieces(2, "quick")])).unwrap();
    // The slow one takes 500 ms; the quick one, begun 150 ms in, ends
    // first, its records passing between the slow one's.
    let (replies, ended) = read_replies(&mut raw, &[1, 2]);
    assert_eq!(ended, [2, 1]);
    assert!(replies[&2].stdout_str().ends_with("done"));
    assert_eq!(replies[&1].body().len(), 5004);
}

#[test]
fn more_requests_than_the_limit_are_refused_as_overloaded() {
    let srv = multiplexing(2, 4);
    let mut raw = srv.connect();
    let mut bytes = Vec::new();
    for id in 1..=3 {
        bytes.extend(begin(id, 1, true));
    }
    raw.send(&bytes).unwrap();
    let rec = raw.read_record().unwrap().unwrap();
    assert_eq!(
        (rec.header.record_type, rec.header.request_id),
        (END_REQUEST, 3)
    );
    let end = EndRequest::decode(&rec.content).unwrap();
    assert_eq!(end.protocol_status, u8::from(ProtocolStatus::Overloaded));
}

#[test]
fn after_a_request_without_keep_conn_new_ones_are_refused_and_the_connection_closes() {
    let srv = multiplexing(4, 4);
    let mut raw = srv.connect();
    let mut last = pieces(1, "sleep_ms=200&status=201");
    last[0] = begin(1, 1, false);
    raw.send(&interleaved(&[last, pieces(2, "status=202")]))
        .unwrap();
    let (replies, ended) = read_replies(&mut raw, &[1, 2]);
    assert_eq!(ended, [2, 1], "the refusal comes at once");
    let refused = replies[&2].end.as_ref().unwrap();
    assert_eq!(
        refused.protocol_status,
        u8::from(ProtocolStatus::Overloaded)
    );
    assert!(replies[&2].stdout.is_empty());
    assert!(replies[&1].status_line().contains("201"));
    assert!(
        raw.read_record().unwrap().is_none(),
        "then the connection closes"
    );
}

#[test]
fn a_peer_opening_thousands_of_ids_costs_bounded_memory_and_no_worker() {
    let srv = TestServer::start(echo::handle, |s| {
        s.multiplex(64).workers(1).max_records(2000)
    });
    let mut hog = srv.connect();
    // Thousands of begin-requests, each with half its params, none done.
    let mut bytes = Vec::new();
    for id in 1..=5000u16 {
        bytes.extend(begin(id, 1, true));
        bytes.extend(record(PARAMS, id, &pairs(&[("X", "y")])));
    }
    let mut writer = hog.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&bytes);
    });
    // Beyond 64 requests, each begin is refused; past 2000 records, the
    // connection is closed.
    let mut overloaded = 0;
    while let Ok(Some(rec)) = hog.read_record() {
        if rec.header.record_type == END_REQUEST {
            overloaded += 1;
        }
    }
    sender.join().unwrap();
    assert!(overloaded > 100, "{overloaded} refused before the close");
    // The one worker was never held: another client is served.
    srv.assert_serves_within(Duration::from_secs(2));
}

#[test]
fn a_request_that_never_completes_its_params_is_closed_at_the_read_timeout() {
    let srv = TestServer::start(echo::handle, |s| {
        s.multiplex(8)
            .workers(1)
            .read_timeout(Some(Duration::from_millis(300)))
    });
    let mut stalled = srv.connect();
    let mut bytes = begin(1, 1, true);
    bytes.extend(record(PARAMS, 1, &pairs(&[("X", "y")])));
    stalled.send(&bytes).unwrap();
    // Meanwhile the single worker serves others.
    srv.assert_serves_within(Duration::from_millis(250));
    let start = Instant::now();
    assert!(stalled.is_closed());
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn management_records_are_answered_between_interleaved_requests() {
    let srv = multiplexing(4, 4);
    let mut raw = srv.connect();
    let mut bytes = interleaved(&[pieces(1, "status=201")]);
    bytes.extend(record(GET_VALUES, 0, &pairs(&[("FCGI_MPXS_CONNS", "")])));
    bytes.extend(interleaved(&[pieces(2, "status=202")]));
    raw.send(&bytes).unwrap();
    let mut saw_values = false;
    let mut ended = 0;
    while ended < 2 {
        let rec = raw.read_record().unwrap().expect("open");
        saw_values |= rec.header.record_type == GET_VALUES_RESULT;
        ended += usize::from(rec.header.record_type == END_REQUEST);
    }
    assert!(saw_values);
}

/// Without `multiplex`, a second request on a busy connection is refused
/// as it always was.
#[test]
fn off_by_default() -> io::Result<()> {
    let srv = TestServer::echo();
    let mut raw = srv.connect();
    raw.send(&interleaved(&[pieces(1, "sleep_ms=200"), pieces(2, "")]))?;
    let rec = raw.read_record()?.unwrap();
    assert_eq!(
        (rec.header.record_type, rec.header.request_id),
        (END_REQUEST, 2)
    );
    let end = EndRequest::decode(&rec.content).unwrap();
    assert_eq!(end.protocol_status, u8::from(ProtocolStatus::CantMpxConn));
    Ok(())
}
