//! Where the listening socket comes from, start-up errors, and shutdown.

mod support;

use fcgi_server::Server;
use fcgi_server::client::Client;
use std::io;
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use support::*;

const GET: [(&str, &str); 2] = [("REQUEST_METHOD", "GET"), ("QUERY_STRING", "")];

/// Starts the echo handler on `addr` in a thread; returns the shutdown
/// handle and the thread.
fn serve(
    addr: &str,
    mode: Option<u32>,
) -> (
    fcgi_server::ShutdownHandle,
    thread::JoinHandle<io::Result<()>>,
) {
    let mut server = Server::new(echo::handle)
        .workers(2)
        .handle_signals(false)
        .bind(addr);
    if let Some(m) = mode {
        server = server.socket_mode(m);
    }
    let handle = server.shutdown_handle();
    (handle, thread::spawn(move || server.run()))
}

#[test]
fn unix_bind_sets_the_mode_and_removes_the_socket_on_shutdown() {
    let dir = TempDir::new("bind");
    let path = dir.path("app.sock");
    let addr = path.to_str().unwrap();
    let (handle, t) = serve(addr, None);
    let res = connect_retry(addr).request(GET, &b""[..]).unwrap();
    assert_eq!(res.status, 200);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    handle.shutdown();
    t.join().unwrap().unwrap();
    assert!(!path.exists(), "socket file removed on shutdown");

    let (handle, t) = serve(&format!("unix:{addr}"), Some(0o600));
    connect_retry(addr);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    handle.shutdown();
    t.join().unwrap().unwrap();
}

#[test]
fn unix_bind_replaces_a_stale_socket_but_not_a_live_one_nor_a_file() {
    let dir = TempDir::new("stale");
    let path = dir.path("app.sock");
    let addr = path.to_str().unwrap().to_owned();
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists(), "a stale socket file is left behind");
    let (handle, t) = serve(&addr, None);
    connect_retry(&addr).request(GET, &b""[..]).unwrap();

    let err = Server::new(echo::handle)
        .bind(addr.clone())
        .run()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    assert!(err.to_string().contains(&addr), "{err}");
    // The live server is unharmed.
    connect_retry(&addr).request(GET, &b""[..]).unwrap();
    handle.shutdown();
    t.join().unwrap().unwrap();

    let file = dir.path("not-a-socket");
    std::fs::write(&file, b"keep me").unwrap();
    let err = Server::new(echo::handle)
        .bind(file.to_str().unwrap())
        .run()
        .unwrap_err();
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

#[test]
fn startup_errors_name_the_path_or_address() {
    let err = Server::new(echo::handle)
        .bind("/nonexistent-dir-for-fcgi-test/app.sock")
        .run()
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("/nonexistent-dir-for-fcgi-test/app.sock"),
        "{msg}"
    );
    assert_eq!(err.kind(), io::ErrorKind::NotFound);

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = Server::new(echo::handle)
        .bind(addr.clone())
        .run()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    assert!(err.to_string().contains(&addr), "{err}");
}

fn free_tcp_addr(host: &str) -> Option<String> {
    let l = TcpListener::bind(format!("{host}:0")).ok()?;
    Some(l.local_addr().unwrap().to_string())
}

#[test]
fn tcp_ipv4_and_ipv6() {
    let mut hosts = vec!["127.0.0.1"];
    if free_tcp_addr("[::1]").is_some() {
        hosts.push("[::1]");
    } else {
        eprintln!("SKIPPED: IPv6 loopback is not available here");
    }
    for host in hosts {
        let addr = free_tcp_addr(host).unwrap();
        let (handle, t) = serve(&addr, None);
        let mut c = connect_retry(&addr);
        c.keep_conn(true);
        for _ in 0..3 {
            let res = c
                .request([("REQUEST_METHOD", "POST")], &b"over tcp"[..])
                .unwrap();
            assert_eq!(res.body, b"over tcp", "{host}");
        }
        handle.shutdown();
        t.join().unwrap().unwrap();
    }
}

/// Starts an example with `listener` as its fd 0, as lighttpd's
/// `bin-path` and spawn-fcgi do.
fn spawn_on_fd0(name: &str, listener: OwnedFd) -> Child {
    Command::new(example(name))
        .stdin(Stdio::from(listener))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .env("FCGI_WORKERS", "2")
        .spawn()
        .unwrap()
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn inherited_unix_listener_on_fd0() {
    let dir = TempDir::new("fd0");
    let path = dir.path("inherited.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let _child = Kill(spawn_on_fd0("echo", listener.into()));
    let addr = path.to_str().unwrap();
    let mut c = connect_retry(addr);
    let res = c.request(support::get("a=1"), &b""[..]).unwrap();
    assert!(
        String::from_utf8(res.body)
            .unwrap()
            .contains("QUERY_STRING=a=1\n")
    );
    let mut c = connect_retry(addr);
    let res = c.request(GET, &b""[..]).unwrap();
    assert_eq!(res.status, 200);
}

#[test]
fn inherited_tcp_listener_on_fd0() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let _child = Kill(spawn_on_fd0("hello", listener.into()));
    let res = connect_retry(&addr).request(GET, &b""[..]).unwrap();
    assert_eq!(res.body, b"Hello, World!\n");
    assert_eq!(res.header("Content-Type"), Some("text/plain"));
}

#[test]
fn example_binds_the_address_given_as_its_argument() {
    let dir = TempDir::new("arg");
    let path = dir.path("arg.sock");
    let child = Command::new(example("hello"))
        .arg(&path)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let _child = Kill(child);
    let res = connect_retry(path.to_str().unwrap())
        .request(GET, &b""[..])
        .unwrap();
    assert_eq!(res.body, b"Hello, World!\n");
}

#[test]
fn example_exits_nonzero_naming_the_path_it_cannot_bind() {
    let out = Command::new(example("echo"))
        .arg("/nonexistent-dir-for-fcgi-test/x.sock")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent-dir-for-fcgi-test/x.sock"),
        "{stderr}"
    );
}

#[test]
fn shutdown_finishes_requests_in_flight_and_stops_accepting() {
    let srv = TestServer::echo();
    let path = srv.path.clone();
    let mut slow = srv.client();
    slow.send(support::get("sleep_ms=600"), &b""[..]).unwrap();
    let mut idle = srv.connect();
    idle.send(&request(1, true, &GET, b"")).unwrap();
    assert!(idle.read_reply(1).end.is_some());
    thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    srv.stop().unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "waited for the slow request"
    );
    let res = slow.receive().unwrap();
    assert_eq!(res.status, 200);
    assert!(idle.is_closed(), "idle keep-conn connection closed");
    assert!(
        Client::connect(path.to_str().unwrap()).is_err(),
        "no longer accepting"
    );
}

#[test]
fn shutdown_gives_up_on_requests_past_the_grace_period() {
    let srv = TestServer::start(echo::handle, |s| s.grace_period(Duration::from_millis(200)));
    let mut slow = srv.client();
    slow.send(support::get("sleep_ms=3000"), &b""[..]).unwrap();
    thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    srv.stop().unwrap();
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(1500),
        "run returned after {took:?}"
    );
}

#[test]
fn shutdown_before_run_returns_at_once() {
    let dir = TempDir::new("early");
    let server = Server::new(echo::handle).bind(dir.path("s.sock").to_str().unwrap());
    server.shutdown_handle().shutdown();
    let start = Instant::now();
    server.run().unwrap();
    assert!(start.elapsed() < Duration::from_secs(2));
}
