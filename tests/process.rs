//! The example binaries as real processes: CGI mode, stop signals,
//! recycling after `max_requests`, the allow-list, systemd activation.

mod support;

use fcgi_server::client::Client;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use support::*;

fn wait_with_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn cgi(name: &str, env: &[(&str, &str)], stdin: Stdio) -> Output {
    let mut cmd = Command::new(example(name));
    cmd.env_clear()
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn cgi_mode_when_stdin_is_a_pipe() {
    let mut child = Command::new(example("echo"))
        .env_clear()
        .env("REQUEST_METHOD", "POST")
        .env("CONTENT_LENGTH", "11")
        .env("QUERY_STRING", "header=X-Mode:cgi")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hello world and more")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text,
        "Status: 200 OK\r\nContent-Type: text/plain\r\nX-Mode: cgi\r\n\r\nhello world"
    );
}

#[test]
fn cgi_mode_when_stdin_is_a_file_or_null() {
    let out = cgi("hello", &[], Stdio::null());
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("\r\n\r\nHello, World!\n"));

    let dir = TempDir::new("cgifile");
    let file = dir.path("body");
    std::fs::write(&file, b"from a file").unwrap();
    let env = [
        ("REQUEST_METHOD", "PUT"),
        ("CONTENT_LENGTH", "11"),
        ("QUERY_STRING", "digest=1"),
    ];
    let out = cgi(
        "echo",
        &env,
        Stdio::from(std::fs::File::open(&file).unwrap()),
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let line = echo::digest(&mut &b"from a file"[..]).unwrap().line();
    assert!(text.ends_with(&format!("\r\n\r\n{line}")), "{text}");
    let stderr_panics = cgi(
        "echo",
        &[("QUERY_STRING", "stderr=oops&panic=1")],
        Stdio::null(),
    );
    assert!(stderr_panics.status.success());
    assert!(String::from_utf8_lossy(&stderr_panics.stdout).starts_with("Status: 500"));
    let err = String::from_utf8_lossy(&stderr_panics.stderr);
    assert!(err.contains("oops") && err.contains("panicked"), "{err}");
}

#[test]
fn cgi_mode_in_a_terminal_explains_itself_and_answers() {
    if !have_tool("script") {
        return;
    }
    // `script` gives the program a pseudo-terminal as stdin and stdout.
    let out = Command::new("script")
        .args(["-q", "-e", "-c"])
        .arg(example("hello"))
        .arg("/dev/null")
        .env("QUERY_STRING", "")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("standard input is a terminal"), "{text}");
    assert!(text.contains("Hello, World!"), "{text}");
}

#[test]
fn fcgi_force_cgi_wins_over_a_listening_socket() {
    let dir = TempDir::new("force");
    let listener = UnixListener::bind(dir.path("s.sock")).unwrap();
    let out = Command::new(example("hello"))
        .env("FCGI_FORCE_CGI", "Yes")
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(listener)))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("Hello, World!\n"));
}

#[test]
fn stop_signals_finish_the_request_in_flight_and_exit_cleanly() {
    for name in ["SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1"] {
        let dir = TempDir::new("sig");
        let path = dir.path("app.sock");
        let mut child = Command::new(example("echo"))
            .arg(&path)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let addr = path.to_str().unwrap();
        let mut slow = connect_retry(addr);
        slow.send(get("sleep_ms=500"), &b""[..]).unwrap();
        thread::sleep(Duration::from_millis(150));
        let start = Instant::now();
        let sent = Command::new("kill")
            .arg(format!("-{}", &name[3..]))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success());
        let res = slow.receive().unwrap();
        assert_eq!(res.status, 200, "{name}: the request in flight finished");
        let status = wait_with_timeout(&mut child, Duration::from_secs(5)).expect("exited");
        assert!(status.success(), "{name}: {status}");
        assert!(start.elapsed() < Duration::from_secs(4), "{name}");
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(err.contains(&format!("{name} received")), "{name}: {err}");
        assert!(!path.exists(), "{name}: socket removed");
    }
}

#[test]
fn max_requests_ends_run_after_that_many_requests() {
    let srv = TestServer::start(echo::handle, |s| s.max_requests(3));
    let mut raw = srv.connect();
    let params = [("REQUEST_METHOD", "GET"), ("QUERY_STRING", "")];
    for _ in 0..3 {
        raw.send(&request(1, true, &params, b"")).unwrap();
        assert_eq!(raw.read_reply(1).end.unwrap().protocol_status, 0);
    }
    assert!(
        raw.is_closed(),
        "kept-open connection closed after the last request"
    );
    let path = srv.path.clone();
    srv.stop().unwrap();
    assert!(Client::connect(path.to_str().unwrap()).is_err());
}

/// Starts the echo app on an already-listening loopback TCP socket (fd 0),
/// with `FCGI_WEB_SERVER_ADDRS` set to `allow`.
fn echo_allowing(allow: &str) -> (String, Child) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let child = Command::new(example("echo"))
        .env("FCGI_WEB_SERVER_ADDRS", allow)
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(listener)))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (addr, child)
}

#[test]
fn allow_list_refuses_other_tcp_peers() {
    let (addr, mut child) = echo_allowing("10.9.9.9, ::1");
    let mut c = connect_retry(&addr);
    c.set_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(
        c.request(get(""), &b""[..]).is_err(),
        "refused before any record"
    );
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refused a connection from 127.0.0.1: not in FCGI_WEB_SERVER_ADDRS"),
        "{err}"
    );

    let (addr, mut child) = echo_allowing("10.9.9.9,127.0.0.1");
    let res = connect_retry(&addr).request(get(""), &b""[..]).unwrap();
    assert_eq!(res.status, 200);
    let _ = child.kill();
    let _ = child.wait();

    let (_, child) = echo_allowing("127.0.0.1,web.example");
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("web.example"));
}

#[test]
fn systemd_socket_activation() {
    let dir = TempDir::new("systemd");
    let path = dir.path("activated.sock");
    let listener = UnixListener::bind(&path).unwrap();
    // The shell moves the socket to fd 3 and execs the app with its own pid
    // in LISTEN_PID, as systemd does; fd 0 becomes /dev/null.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("exec 3<&0 0</dev/null; LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\"")
        .arg(example("echo"))
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(listener)))
        .spawn()
        .unwrap();
    let res = connect_retry(path.to_str().unwrap())
        .request(get(""), &b""[..])
        .unwrap();
    assert_eq!(res.status, 200);
    let body = String::from_utf8(res.body).unwrap();
    assert!(body.contains("REQUEST_METHOD=GET"), "{body}");
    let _ = child.kill();
    let _ = child.wait();
}
