//! The `fcgi` command-line tool, run as a program against real sockets:
//! `examples/echo` in this process, the example binaries it spawns, and
//! small scripted servers that answer as wrongly as a test needs.

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use fcgi_server::protocol::{Header, record_type};
use support::scripted::{self, Scripted};
use support::*;

/// What a run of `fcgi` left.
struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The lines of stdout, for the echo application's param dump.
    fn lines(&self) -> Vec<String> {
        self.out().lines().map(str::to_owned).collect()
    }

    fn has_line(&self, line: &str) -> bool {
        self.lines().iter().any(|l| l == line)
    }

    /// Asserts that stderr holds each of `parts`.
    fn assert_stderr(&self, parts: &[&str]) {
        for part in parts {
            assert!(self.stderr.contains(part), "{part} in\n{}", self.stderr);
        }
    }

    /// Asserts that stdout has each of `lines` (the echo dump's).
    fn assert_lines(&self, lines: &[&str]) {
        for line in lines {
            assert!(self.has_line(line), "{line} in\n{}", self.out());
        }
    }
}

/// Runs `fcgi` with `args`, `input` on its stdin, `LEAK_ME=1` in its
/// environment; fails the test if it runs for a minute.
fn fcgi_with(args: &[&str], input: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fcgi"))
        .args(args)
        .env("LEAK_ME", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    thread::spawn(move || stdin.write_all(&input));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = thread::spawn(move || read_all(&mut out));
    let err = thread::spawn(move || read_all(&mut err));
    let done = eventually(Duration::from_secs(60), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !done {
        let _ = child.kill();
        panic!("fcgi {args:?} ran for a minute");
    }
    let status = child.wait().unwrap();
    let run = Run {
        code: status.code().expect("an exit code"),
        stdout: out.join().unwrap(),
        stderr: String::from_utf8(err.join().unwrap()).unwrap(),
    };
    eprintln!("fcgi {args:?}: exit {}\n{}", run.code, run.stderr);
    run
}

fn read_all(r: &mut impl Read) -> Vec<u8> {
    let mut all = Vec::new();
    r.read_to_end(&mut all).unwrap();
    all
}

fn fcgi(args: &[&str]) -> Run {
    fcgi_with(args, b"")
}

fn addr(server: &TestServer) -> &str {
    server.path.to_str().unwrap()
}

/// The alphabet pattern of echo's `size=`.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

#[test]
fn the_body_goes_to_stdout_byte_for_byte_and_the_apps_stderr_is_marked() {
    let echo = TestServer::echo();
    let run = fcgi(&["request", addr(&echo), "/?size=200000&stderr=first%20words"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout == pattern(200_000), "{} bytes", run.stdout.len());
    run.assert_stderr(&["app (FCGI_STDERR): first%20words\n"]);
}

/// The params are exactly those nginx's fastcgi_params sends (plus
/// PATH_INFO and the headers a client sends), with none of fcgi's own
/// environment.
#[test]
fn the_default_params_are_nginxs_and_not_the_environment() {
    let echo = TestServer::echo();
    let run = fcgi(&["request", addr(&echo), "/a%20b/c?x=1"]);
    let names: Vec<String> = run
        .lines()
        .iter()
        .map(|l| l.split_once('=').unwrap().0.to_owned())
        .collect();
    let want = [
        "CONTENT_LENGTH",
        "CONTENT_TYPE",
        "DOCUMENT_ROOT",
        "DOCUMENT_URI",
        "GATEWAY_INTERFACE",
        "HTTP_ACCEPT",
        "HTTP_HOST",
        "HTTP_USER_AGENT",
        "PATH_INFO",
        "QUERY_STRING",
        "REDIRECT_STATUS",
        "REMOTE_ADDR",
        "REMOTE_PORT",
        "REMOTE_USER",
        "REQUEST_METHOD",
        "REQUEST_SCHEME",
        "REQUEST_URI",
        "SCRIPT_NAME",
        "SERVER_ADDR",
        "SERVER_NAME",
        "SERVER_PORT",
        "SERVER_PROTOCOL",
        "SERVER_SOFTWARE",
    ];
    assert_eq!(names, want);
    run.assert_lines(&[
        "REQUEST_METHOD=GET",
        "REQUEST_URI=/a%20b/c?x=1",
        "DOCUMENT_URI=/a b/c",
        "SCRIPT_NAME=",
        "PATH_INFO=/a b/c",
        "QUERY_STRING=x=1",
        "CONTENT_LENGTH=",
        "GATEWAY_INTERFACE=CGI/1.1",
        "SERVER_PROTOCOL=HTTP/1.1",
    ]);
}

#[test]
fn a_tcp_address_and_a_url_reach_the_application() {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = tcp.local_addr().unwrap().port();
    let _echo = TestServer::start(echo::handle, move |s| s.listener(tcp));
    let addr = format!("127.0.0.1:{port}");
    let run = fcgi(&["request", &addr, "https://example.com:8443/x?y"]);
    assert_eq!(run.code, 0);
    run.assert_lines(&[
        "HTTP_HOST=example.com:8443",
        "SERVER_NAME=example.com",
        "SERVER_PORT=8443",
        "REQUEST_SCHEME=https",
        "HTTPS=on",
        "REQUEST_URI=/x?y",
    ]);
}

#[test]
fn headers_params_and_the_script_name_shape_the_request() {
    let echo = TestServer::echo();
    let run = fcgi(&[
        "request",
        addr(&echo),
        "-H",
        "X-Thing: yes",
        "-H",
        "Host: example.org",
        "-H",
        "User-Agent:",
        "-p",
        "DOCUMENT_ROOT=/srv",
        "-p",
        "REDIRECT_STATUS",
        "--script-name",
        "/app",
        "/app/a/b?q=1",
    ]);
    assert_eq!(run.code, 0);
    run.assert_lines(&[
        "HTTP_X_THING=yes",
        "HTTP_HOST=example.org",
        "DOCUMENT_ROOT=/srv",
        "SCRIPT_NAME=/app",
        "PATH_INFO=/a/b",
        "DOCUMENT_URI=/app/a/b",
        "REQUEST_URI=/app/a/b?q=1",
        "QUERY_STRING=q=1",
    ]);
    let out = run.out();
    assert!(!out.contains("REDIRECT_STATUS") && !out.contains("HTTP_USER_AGENT"));
}

#[test]
fn a_body_comes_from_the_text_a_file_or_stdin() {
    let echo = TestServer::echo();
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let run = fcgi_with(&["request", addr(&echo), "-d", "@-", "/"], &bytes);
    assert_eq!((run.code, run.stdout == bytes), (0, true));

    let dir = TempDir::new("cli-body");
    let file = dir.path("body");
    std::fs::write(&file, &bytes[..1000]).unwrap();
    let at_file = format!("@{}", file.display());
    let run = fcgi(&["request", "-X", "PUT", "-d", &at_file, addr(&echo), "/"]);
    assert_eq!(run.stdout, &bytes[..1000]);

    // PATCH is not echoed: the dump shows what describes the body.
    let run = fcgi(&["request", "-X", "PATCH", "-d", "hello", addr(&echo), "/"]);
    run.assert_lines(&[
        "REQUEST_METHOD=PATCH",
        "CONTENT_LENGTH=5",
        "CONTENT_TYPE=application/x-www-form-urlencoded",
        "HTTP_CONTENT_LENGTH=5",
    ]);
}

#[test]
fn include_puts_the_status_line_and_headers_first() {
    let echo = TestServer::echo();
    let run = fcgi(&[
        "request",
        "-i",
        addr(&echo),
        "/?status=404&header=X-A:1&size=3",
    ]);
    assert_eq!(run.code, 0, "a 404 without --fail is a complete response");
    assert_eq!(
        run.out(),
        "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nX-A: 1\r\n\r\nabc"
    );
}

#[test]
fn count_sends_the_requests_on_one_kept_open_connection() {
    let server = Scripted::start(|mut conn, n| {
        let mut i = 0;
        while let Some(req) = scripted::read_request(&mut conn) {
            i += 1;
            let line = format!(
                "\r\n\r\nrequest {i} on connection {n}, keep {}\n",
                req.keep_conn
            );
            let mut reply = scripted::stdout(line.as_bytes());
            reply.extend(scripted::end());
            conn.send(&reply).unwrap();
        }
    });
    let run = fcgi(&["request", "-n", "3", server.addr()]);
    assert_eq!(run.code, 0);
    assert_eq!(
        run.out(),
        "request 1 on connection 1, keep true\n\
         request 2 on connection 1, keep true\n\
         request 3 on connection 1, keep true\n"
    );
    assert_eq!(server.accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// `timing of request 1: connected 0.051 ms, request sent 0.1 ms, ...`
fn marks(line: &str) -> Vec<(String, f64)> {
    let (_, list) = line.split_once(": ").unwrap();
    list.split(", ")
        .map(|m| {
            let (name, rest) = m.rsplit_once(' ').unwrap().0.rsplit_once(' ').unwrap();
            (name.to_owned(), rest.parse().unwrap())
        })
        .collect()
}

#[test]
fn timing_gives_each_mark_in_order() {
    let echo = TestServer::echo();
    let run = fcgi(&[
        "request",
        "--timing",
        "-n",
        "2",
        addr(&echo),
        "/?sleep_ms=20",
    ]);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("timing"))
        .collect();
    assert_eq!(lines.len(), 2, "{}", run.stderr);
    let first = marks(lines[0]);
    let names: Vec<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["connected", "request sent", "first record", "END_REQUEST"]
    );
    let times: Vec<f64> = first.iter().map(|(_, t)| *t).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(
        times[2] >= 20.0,
        "the first record came after the handler's sleep"
    );
    assert!(lines[1].starts_with("timing of request 2: request sent"));
}

#[test]
fn trace_shows_every_record_and_decodes_the_params() {
    let echo = TestServer::echo();
    let run = fcgi(&["request", "--trace", "-d", "hi", addr(&echo), "/t?a=1"]);
    assert_eq!(run.code, 0);
    let order = [
        ">>  BEGIN_REQUEST     id=1 len=8 pad=0  role=RESPONDER flags=0",
        ">>  PARAMS ",
        ">>  PARAMS            id=1 len=0 pad=0  (end of stream)",
        "QUERY_STRING=a=1",
        "REQUEST_METHOD=POST",
        ">>  STDIN             id=1 len=2 pad=6  \"hi\"",
        ">>  STDIN             id=1 len=0 pad=0  (end of stream)",
        "<<  STDOUT ",
        "<<  END_REQUEST       id=1 len=8 pad=0  app_status=0 protocol_status=REQUEST_COMPLETE",
    ];
    let mut at = 0;
    for part in order {
        let found = run.stderr[at..].find(part);
        assert!(found.is_some(), "{part} after byte {at} of\n{}", run.stderr);
        at += found.unwrap();
    }
    assert!(!run.stderr.contains("!!"), "nothing is wrong with echo");
}

#[test]
fn trace_flags_unpadded_records_and_a_wrong_request_id() {
    let server = Scripted::replying(|_| {
        let mut reply = record(record_type::STDOUT, 1, b"Status: 200\r\n\r\nok");
        reply.extend(record(record_type::STDOUT, 7, b"stray"));
        reply.extend(scripted::end());
        reply
    });
    let run = fcgi(&["request", "--trace", server.addr()]);
    assert_eq!(
        (run.code, run.out().as_str()),
        (0, "ok"),
        "the stray record is skipped"
    );
    run.assert_stderr(&[
        "!!  not padded to a multiple of 8 bytes",
        "!!  request id 7, but the request is 1",
    ]);
}

#[test]
fn exit_2_when_nothing_listens() {
    let dir = TempDir::new("cli-nothing");
    let missing = dir.path("missing.sock");
    let run = fcgi(&["request", missing.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    run.assert_stderr(&["there is no such socket file"]);

    let stale = dir.path("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    let run = fcgi(&["request", stale.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    run.assert_stderr(&["nothing is listening there"]);
}

#[test]
fn exit_3_when_the_application_never_answers() {
    let dir = TempDir::new("cli-silent");
    let sock = dir.path("silent.sock");
    let _listener = UnixListener::bind(&sock).unwrap();
    let run = fcgi(&["request", "--timeout", "1", sock.to_str().unwrap()]);
    assert_eq!(run.code, 3);
    run.assert_stderr(&[
        "no complete answer within 1 s (--timeout): the application had sent nothing",
    ]);
}

#[test]
fn exit_4_when_the_connection_closes_before_any_header() {
    let server = scripted::answer_and_close(Vec::new());
    let run = fcgi(&["request", server.addr()]);
    assert_eq!(run.code, 4);
    run.assert_stderr(&[
        "the application closed the connection before sending any header \
             (what web servers report as \"premature end of script headers\")",
    ]);
}

#[test]
fn exit_4_when_the_connection_closes_mid_response() {
    let server = scripted::answer_and_close(scripted::stdout(b"Status: 200\r\n\r\npart"));
    let run = fcgi(&["request", "--trace", server.addr()]);
    assert_eq!((run.code, run.out().as_str()), (4, "part"));
    run.assert_stderr(&["closed the connection after 4 body bytes, before END_REQUEST"]);
    run.assert_stderr(&["!!  the connection closed before END_REQUEST"]);
}

#[test]
fn exit_4_on_a_bad_version() {
    let mut bad = Header::aligned(record_type::STDOUT, 1, 8).encode();
    bad[0] = 2;
    let server = scripted::answer_and_close(bad.to_vec());
    let run = fcgi(&["request", "--trace", server.addr()]);
    assert_eq!(run.code, 4);
    run.assert_stderr(&["a record header with version 2, and FastCGI has only version 1"]);
    run.assert_stderr(&["!!  version 2 in a record header"]);
}

#[test]
fn exit_1_with_fail_on_an_error_status() {
    let echo = TestServer::echo();
    let run = fcgi(&["request", "--fail", addr(&echo), "/?status=503&size=2"]);
    assert_eq!((run.code, run.out().as_str()), (1, "ab"));
    run.assert_stderr(&["the application answered 503 Service Unavailable (--fail)"]);
    let run = fcgi(&["request", addr(&echo), "/?status=503"]);
    assert_eq!(run.code, 0);
}

#[test]
fn usage_errors_and_unreadable_inputs_have_their_codes() {
    let run = fcgi(&["request", "--no-such-flag", "x.sock"]);
    assert_eq!(run.code, 64);
    run.assert_stderr(&["'request' has no flag --no-such-flag"]);
    let run = fcgi(&["request", "-d", "@/nonexistent/body", "x.sock"]);
    assert_eq!(run.code, 66);
    run.assert_stderr(&["cannot read the body file /nonexistent/body"]);
    let run = fcgi(&["request", "--spawn", "/nonexistent/app.fcgi"]);
    assert_eq!(run.code, 66);
    run.assert_stderr(&["cannot start /nonexistent/app.fcgi: No such file"]);
}

#[test]
fn help_lists_the_commands_flags_and_exit_codes() {
    let run = fcgi(&["--help"]);
    assert_eq!(run.code, 0);
    for part in [
        "fcgi request",
        "fcgi values",
        "fcgi status",
        "fcgi health",
        "fcgi bench",
        "4   a protocol",
    ] {
        assert!(run.out().contains(part), "{part} in\n{}", run.out());
    }
    let run = fcgi(&["help", "request"]);
    assert!(run.out().contains("--spawn APP") && run.out().contains("--script-name PREFIX"));
    assert_eq!(fcgi(&["help", "nothing"]).code, 64);
    let run = fcgi(&["help", "bench"]);
    for part in [
        "--connections N",
        "--new-conn",
        "--requests N",
        "-d, --data",
    ] {
        assert!(run.out().contains(part), "{part} in\n{}", run.out());
    }
}

#[test]
fn spawn_shows_a_missing_variable_and_env_fixes_it() {
    let app = example("needs_env");
    let app = app.to_str().unwrap();
    let run = fcgi(&["request", "--trace", "--spawn", app, "/"]);
    assert_eq!(run.code, 4);
    run.assert_stderr(&[
        "!!  the connection closed before END_REQUEST",
        "premature end of script headers",
        "needs_env exited with status 1 by itself, before SIGTERM",
        "app (stderr): needs_env: DATABASE_URL is not set",
    ]);

    let run = fcgi(&[
        "request",
        "--spawn",
        app,
        "--env",
        "DATABASE_URL=postgres://db/app",
        "/",
    ]);
    assert_eq!(run.code, 0);
    assert_eq!(
        run.out(),
        "database: postgres://db/app\ncwd: /\nenvironment: DATABASE_URL PATH\n",
        "the environment holds PATH and --env only, and the directory is /"
    );
    run.assert_stderr(&["needs_env was sent SIGTERM and exited with status 0"]);
}

#[test]
fn spawn_runs_the_app_in_cwd_and_shows_its_stderr() {
    let dir = TempDir::new("cli-cwd");
    let cwd = dir.0.canonicalize().unwrap();
    let run = fcgi(&[
        "request",
        "--spawn",
        example("needs_env").to_str().unwrap(),
        "--cwd",
        cwd.to_str().unwrap(),
        "--env",
        "DATABASE_URL=x",
    ]);
    assert!(
        run.has_line(&format!("cwd: {}", cwd.display())),
        "{}",
        run.out()
    );
    let run = fcgi(&[
        "request",
        "--spawn",
        example("echo").to_str().unwrap(),
        "/?stderr=hi",
    ]);
    assert_eq!(run.code, 0);
    run.assert_stderr(&["app (FCGI_STDERR): hi"]);
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with("app (stderr): fcgi-server:") && l.contains("SIGTERM received")),
        "the server's own stderr, where it says it stops: {}",
        run.stderr
    );
}

#[test]
fn values_prints_what_get_values_answers() {
    let echo = TestServer::echo();
    let run = fcgi(&["values", addr(&echo)]);
    assert_eq!(run.code, 0);
    assert_eq!(
        run.out(),
        "FCGI_MAX_CONNS=4\nFCGI_MAX_REQS=4\nFCGI_MPXS_CONNS=0\n"
    );
    let run = fcgi(&["values", addr(&echo), "FCGI_MPXS_CONNS"]);
    assert_eq!(run.out(), "FCGI_MPXS_CONNS=0\n");
}

/// A server whose ping path answers 200, whose `/down` answers 503, and
/// whose every other page shows the query and the Accept header it got.
fn pages() -> TestServer {
    TestServer::start(
        |req, res| {
            let path = format!("{}{}", req.script_name(), req.path_info());
            match path.as_str() {
                "/ping" => res.write_all(b"pong\n"),
                "/down" => {
                    res.status(503);
                    Ok(())
                }
                _ => {
                    let accept = req.param("HTTP_ACCEPT").unwrap_or("");
                    write!(res, "{path}?{}|{accept}", req.query_string())
                }
            }
        },
        |s| s,
    )
}

#[test]
fn health_exits_0_on_200_and_1_otherwise() {
    let server = pages();
    let run = fcgi(&["health", addr(&server)]);
    assert_eq!(run.code, 0);
    assert!(
        run.out().starts_with("/ping answered 200 in "),
        "{}",
        run.out()
    );
    let run = fcgi(&["health", "--path", "/down", addr(&server)]);
    assert_eq!(run.code, 1);
    run.assert_stderr(&["the ping path /down answered 503"]);
    let dir = TempDir::new("cli-health");
    let run = fcgi(&["health", dir.path("none.sock").to_str().unwrap()]);
    assert_eq!(run.code, 2);
}

#[test]
fn status_asks_for_the_format_and_the_workers() {
    let server = pages();
    let a = addr(&server);
    let cases = [
        (vec!["status", a], "/status?|*/*"),
        (
            vec!["status", "--json", "--full", a],
            "/status?json&full|*/*",
        ),
        (
            vec!["status", "--openmetrics", "--path", "/st", a],
            "/st?openmetrics|application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    ];
    for (args, want) in cases {
        let run = fcgi(&args);
        assert_eq!((run.code, run.out().as_str()), (0, want), "{args:?}");
    }
    let run = fcgi(&["status", "--path", "/down", a]);
    assert_eq!(run.code, 1);
    run.assert_stderr(&["the status page /down answered 503"]);
}

/// A figure of `fcgi bench --json`'s summary.
fn figure(json: &str, key: &str) -> f64 {
    let at = json
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("{key} in {json}"));
    let rest = &json[at + key.len() + 3..];
    let end = rest.find([',', '}']).unwrap();
    rest[..end].parse().unwrap()
}

/// About 1 s of CPU in all (a few thousand requests).
#[test]
fn bench_checks_every_answer_on_kept_and_new_connections_with_a_body() {
    let echo = TestServer::echo();
    let run = fcgi(&[
        "bench",
        "-c",
        "4",
        "--requests",
        "400",
        "--json",
        addr(&echo),
        "/?size=100",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.out();
    assert_eq!(figure(&json, "requests"), 400.0, "{json}");
    assert_eq!(
        (figure(&json, "body_min"), figure(&json, "body_max")),
        (100.0, 100.0)
    );
    assert_eq!(figure(&json, "total"), 0.0, "{json}");
    assert!(json.contains("\"keep_conn\":true"), "{json}");
    assert!(figure(&json, "p50") > 0.0 && figure(&json, "p99") >= figure(&json, "p50"));
    let run = fcgi(&[
        "bench",
        "-c",
        "3",
        "--new-conn",
        "--requests",
        "60",
        "--json",
        addr(&echo),
    ]);
    assert_eq!((run.code, figure(&run.out(), "requests")), (0, 60.0));
    assert!(run.out().contains("\"keep_conn\":false"), "{}", run.out());
    // A body of 200 000 bytes, echoed back: records of 64 KiB, written
    // as the socket takes them.
    let dir = TempDir::new("cli-bench");
    let body = dir.path("body");
    std::fs::write(&body, pattern(200_000)).unwrap();
    let data = format!("@{}", body.display());
    let run = fcgi(&[
        "bench",
        "-c",
        "2",
        "--requests",
        "20",
        "-d",
        &data,
        "--json",
        addr(&echo),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(figure(&run.out(), "body_max"), 200_000.0, "{}", run.out());
    assert_eq!(figure(&run.out(), "body_min"), 200_000.0, "{}", run.out());
}

#[test]
fn bench_counts_and_shows_every_failure() {
    let echo = TestServer::echo();
    let run = fcgi(&[
        "bench",
        "-c",
        "2",
        "--requests",
        "10",
        addr(&echo),
        "/?status=503",
    ]);
    assert_eq!(run.code, 1);
    for part in [
        "0 answered 2xx",
        "latency    p50",
        "errors     10:",
        "10 not 2xx (503: 10)",
    ] {
        assert!(run.out().contains(part), "{part} in\n{}", run.out());
    }
    let server = scripted::answer_and_close(scripted::stdout(b"Status: 200\r\n\r\npart"));
    let run = fcgi(&[
        "bench",
        "-c",
        "1",
        "--requests",
        "3",
        "--json",
        server.addr(),
    ]);
    assert_eq!(run.code, 1);
    assert_eq!(figure(&run.out(), "closed"), 3.0, "{}", run.out());
    let dir = TempDir::new("cli-bench-none");
    let sock = dir.path("none.sock");
    let run = fcgi(&["bench", "--requests", "1", sock.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    run.assert_stderr(&["cannot connect to"]);
    let run = fcgi(&["bench", "--duration", "1", "--requests", "1", "x.sock"]);
    assert_eq!(run.code, 64);
}
