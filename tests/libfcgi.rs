//! Interoperability with the reference implementation: `examples/echo`
//! started by `spawn-fcgi` (socket on fd 0), asked by libfcgi's client
//! `cgi-fcgi -bind -connect`.

mod support;

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::frontend;
use support::*;

struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `deploy/spawn-fcgi.sh` with its paths pointed here and its user
/// swapped for `nobody` (the script's user does not exist here). `-n`
/// makes spawn-fcgi exec the application in place, with the socket on fd 0,
/// so the child is the application itself.
fn spawn_echo(sock: &Path) -> Spawned {
    let script = frontend::deploy("spawn-fcgi.sh");
    let script = frontend::replace(
        &script,
        "/run/yourapplication/fcgi.sock",
        sock.to_str().unwrap(),
    );
    let script = frontend::replace(
        &script,
        "/srv/yourapplication/app.fcgi",
        example("echo").to_str().unwrap(),
    );
    let script = frontend::replace(
        &script,
        "-u yourapplication -U yourapplication",
        "-u nobody -U nobody",
    );
    let script = frontend::replace(
        &script,
        "exec spawn-fcgi",
        &format!("exec {}", tool_path("spawn-fcgi").unwrap().display()),
    );
    let child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "spawn-fcgi made no socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    Spawned(child)
}

/// Runs `cgi-fcgi -bind -connect` with a CGI environment and `body` on
/// stdin; returns (headers, body) of what it printed.
fn cgi_fcgi(sock: &Path, method: &str, query: &str, body: &[u8]) -> (String, Vec<u8>) {
    let mut child = Command::new("cgi-fcgi")
        .args(["-bind", "-connect"])
        .arg(sock)
        .env_clear()
        .env("REQUEST_METHOD", method)
        .env("QUERY_STRING", query)
        .env("SCRIPT_NAME", "/echo")
        .env("CONTENT_LENGTH", body.len().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let body = body.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "cgi-fcgi exited with {}", out.status);
    let at = out
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a CGI header block");
    let head = String::from_utf8(out.stdout[..at].to_vec()).unwrap();
    (head, out.stdout[at + 4..].to_vec())
}

#[test]
fn echo_under_spawn_fcgi_answers_libfcgi_cgi_fcgi() {
    if !have_tool("spawn-fcgi") || !have_tool("cgi-fcgi") {
        return;
    }
    let dir = TempDir::new("libfcgi");
    let sock = dir.path("echo.sock");
    let _app = spawn_echo(&sock);
    // The socket as the deploy line asks: group www-data, mode 0660.
    let meta = std::fs::metadata(&sock).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.gid(), 33, "group www-data");

    let (head, body) = cgi_fcgi(&sock, "GET", "x=1&y=2", b"");
    assert!(head.starts_with("Status: 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Type: text/plain"), "{head}");
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("QUERY_STRING=x=1&y=2\n"), "{body}");
    assert!(body.contains("REQUEST_METHOD=GET\n"), "{body}");
    assert!(body.contains("SCRIPT_NAME=/echo\n"), "{body}");

    let posted: Vec<u8> = (0..10 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let (_, body) = cgi_fcgi(&sock, "POST", "", &posted);
    assert_eq!(body.len(), posted.len());
    assert!(body == posted, "the 10 MiB POST came back altered");

    let size = 52_428_800;
    let (_, body) = cgi_fcgi(&sock, "GET", &format!("size={size}"), b"");
    assert_eq!(body.len(), size);
    assert!(
        body.iter()
            .enumerate()
            .all(|(i, &b)| b == b'a' + (i % 26) as u8)
    );
}
