//! A soak run: many requests through examples/echo in a child process,
//! mixed with panicking handlers, aborted requests, clients that leave
//! mid-request and mid-response, and malformed records. No well-formed
//! request may be lost; the server's descriptors and resident memory must
//! end where they started.
//!
//! `cargo test` runs a short one. The full run (the figures in
//! docs/robustness.md) is:
//!
//! ```text
//! FCGI_SOAK_REQUESTS=1000000 cargo test --release --test soak -- --nocapture
//! ```

mod support;

use fcgi_server::client::Client;
use fcgi_server::protocol::record_type::{ABORT_REQUEST, PARAMS, STDIN};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::frontend::{Proc, status};
use support::*;

/// What the clients counted.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    lost: AtomicU64,
    hostile: AtomicU64,
}

fn rss_kib(pid: u32) -> u64 {
    status(pid, "VmRSS:")
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

fn connect(sock: &Path) -> UnixStream {
    let s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// A well-formed request of kind `i % 4` on `client`; whether its
/// response was right.
fn well_formed(client: &mut Client, i: u64) -> bool {
    let body: Vec<u8> = (0..(i % 3000) as usize).map(|j| (j * 7) as u8).collect();
    let (query, method) = match i % 4 {
        0 => ("", "GET"),
        1 => ("", "POST"),
        2 => ("size=70000", "GET"),
        _ => ("panic=1", "GET"),
    };
    let params = [
        ("REQUEST_METHOD", method),
        ("QUERY_STRING", query),
        ("SCRIPT_NAME", "/soak"),
        ("REQUEST_URI", "/soak/x"),
    ];
    let sent = if method == "POST" {
        &body[..]
    } else {
        &b""[..]
    };
    let res = match client.request(params, sent) {
        Ok(res) => res,
        Err(e) => {
            eprintln!("request {i} failed: {e}");
            return false;
        }
    };

    match i % 4 {
        0 => res.status == 200 && res.body.ends_with(b"\nSCRIPT_NAME=/soak\n"),
        1 => res.status == 200 && res.body == body,
        2 => {
            res.status == 200
                && res.body.len() == 70000
                && res
                    .body
                    .iter()
                    .enumerate()
                    .all(|(j, &b)| b == b'a' + (j % 26) as u8)
        }
        _ => res.status == 500,
    }
}

/// A hostile or careless client of kind `i % 5`, on a connection of its own.
fn hostile(sock: &Path, i: u64) {
    let mut s = connect(sock);
    let get = request(1, false, &[("REQUEST_METHOD", "GET")], b"");
    match i % 5 {
        // Leaves mid-request.
        0 => {
            let _ = s.write_all(&get[..get.len() / 2]);
        }
        // Leaves mid-response.
        1 => {
            let big = [("REQUEST_METHOD", "GET"), ("QUERY_STRING", "size=2000000")];
            let _ = s.write_all(&request(1, false, &big, b""));
            let _ = s.read(&mut [0u8; 1000]);
        }
        // Aborts mid-body and waits for the end of the request.
        2 => {
            let mut bytes = begin(1, 1, false);
            bytes.extend(record(PARAMS, 1, &pairs(&[("REQUEST_METHOD", "POST")])));
            bytes.extend(record(PARAMS, 1, b""));
            bytes.extend(record(STDIN, 1, b"part of a body"));
            bytes.extend(record(ABORT_REQUEST, 1, b""));
            let _ = s.write_all(&bytes);
            let _ = s.read_to_end(&mut Vec::new());
        }
        // A malformed record: version 2.
        3 => {
            let mut bytes = get.clone();
            bytes[0] = 2;
            let _ = s.write_all(&bytes);
            let _ = s.read_to_end(&mut Vec::new());
        }
        // Garbage.
        _ => {
            let junk: Vec<u8> = (0..300u64).map(|j| (j * i % 251) as u8).collect();
            let _ = s.write_all(&junk);
            let _ = s.read_to_end(&mut Vec::new());
        }
    }
}

#[test]
fn soak() {
    let total: u64 = std::env::var("FCGI_SOAK_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let dir = TempDir::new("soak");
    let sock = dir.path("app.sock");
    let log = dir.path("app.log");
    let app = Proc(
        Command::new(example("echo"))
            .arg(&sock)
            .env("FCGI_WORKERS", "8")
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let pid = app.pid();
    drop(connect_retry(sock.to_str().unwrap()));
    let tally = Tally::default();
    let threads = 4u64;
    let run = |from: u64, to: u64| {
        std::thread::scope(|scope| {
            for t in 0..threads {
                let (sock, tally) = (&sock, &tally);
                scope.spawn(move || {
                    let mut client = Client::connect(sock.to_str().unwrap()).unwrap();
                    client.set_timeout(Some(Duration::from_secs(10))).unwrap();
                    client.keep_conn(true);
                    for i in (from + t..to).step_by(threads as usize) {
                        if i % 10 == 9 {
                            hostile(sock, i / 10);
                            tally.hostile.fetch_add(1, Ordering::Relaxed);
                        } else if well_formed(&mut client, i) {
                            tally.ok.fetch_add(1, Ordering::Relaxed);
                        } else {
                            tally.lost.fetch_add(1, Ordering::Relaxed);
                            client = Client::connect(sock.to_str().unwrap()).unwrap();
                            client.keep_conn(true);
                        }
                    }
                });
            }
        });
    };
    // Warm up (every worker started, buffers at their working size), then
    // measure from there.
    let warm = (total / 20).max(1000);
    run(0, warm);
    std::thread::sleep(Duration::from_millis(300));
    let (rss0, fds0) = (rss_kib(pid), fds(pid));
    let start = Instant::now();
    run(warm, warm + total);
    let took = start.elapsed();
    // Let the server notice the last disconnections.
    eventually(Duration::from_secs(3), || fds(pid) == fds0);
    let (rss1, fds1) = (rss_kib(pid), fds(pid));
    let (ok, lost, bad) = (
        tally.ok.load(Ordering::Relaxed),
        tally.lost.load(Ordering::Relaxed),
        tally.hostile.load(Ordering::Relaxed),
    );
    eprintln!(
        "soak: {} requests in {took:.1?}: {ok} well-formed answered right, {lost} lost, \
         {bad} hostile; server RSS {rss0} -> {rss1} KiB, descriptors {fds0} -> {fds1}",
        ok + lost + bad
    );
    assert_eq!(lost, 0, "well-formed requests lost");
    assert!(ok + bad >= total, "not every request ran");
    assert_eq!(fds1, fds0, "the server's descriptors changed");
    assert!(
        rss1 <= rss0 + rss0 / 4 + 1024,
        "the server's memory grew from {rss0} KiB to {rss1} KiB"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("internal error"), "{text}");
    drop(app);
}
