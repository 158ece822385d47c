//! Upgrading under load: SIGUSR2 hands the listening socket to a fresh
//! start of the (replaced) binary, and `max_requests` recycles the same
//! way, behind a real nginx, with an HTTP load running that checks every
//! response; a new binary that fails leaves the old one serving; the old
//! way (SIGTERM, then start) is measured beside it. Also systemd's
//! `Type=notify` messages on a real datagram socket, and SIGUSR2 refused
//! for the socket inherited on fd 0.

mod support;

use std::io::Write;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{SocketAddr, UnixDatagram, UnixListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::frontend::{self, Frontend, Proc, replace, signal};
use support::load::{Load, Tally};
use support::{TempDir, connect_retry, eventually, example, get, have_tool, http};

/// HTTP clients of the load, each with one request in flight.
const CLIENTS: usize = 4;
/// Hand-overs per setup.
const TIMES: u64 = 10;
const LONG: Duration = Duration::from_secs(15);

/// nginx (deploy/nginx-root.conf) in front of the echo application, with
/// `env` added: with `keep_conn` as shipped (`fastcgi_keep_conn on` and
/// `keepalive`), else a FastCGI connection per request.
fn nginx(keep_conn: bool, env: &[(&str, &str)]) -> Frontend {
    let edit = move |site: String| {
        if keep_conn {
            return site;
        }
        let site = replace(&site, "fastcgi_keep_conn on;", "");
        replace(&site, "keepalive 8;", "")
    };
    Frontend::nginx_with_env("echo", "nginx-root.conf", edit, env)
}

fn setup_name(keep_conn: bool) -> &'static str {
    if keep_conn {
        "kept connections"
    } else {
        "a connection per request"
    }
}

/// Whether `pid` runs (and is not a zombie).
fn alive(pid: u32) -> bool {
    frontend::status(pid, "State:").is_some_and(|s| !s.starts_with('Z'))
}

/// Running processes whose command line mentions `needle` (the
/// application's socket path, which only its processes are given).
fn procs_with(needle: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(needle) && alive(pid)
        })
        .collect()
}

/// Stops every process of the application; none may be left.
fn stop_all(needle: &str) {
    for pid in procs_with(needle) {
        signal(pid, "TERM");
    }
    let gone = eventually(LONG, || procs_with(needle).is_empty());
    assert!(gone, "processes left behind: {:?}", procs_with(needle));
}

/// The kernel's inode number of the socket listening at `path` (from
/// /proc/net/unix): the same number means the same socket.
fn listening_inode(path: &Path) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/unix").ok()?;
    let path = path.to_str()?;
    table.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let listening = f.get(3).is_some_and(|flags| flags.ends_with("10000"));
        (f.len() == 8 && f[7] == path && listening).then(|| f[6].parse().ok())?
    })
}

/// [`listening_inode`], once the application listens (its socket file
/// appears a moment before).
fn listening(path: &Path) -> u64 {
    let mut inode = None;
    let ok = eventually(LONG, || {
        inode = listening_inode(path);
        inode.is_some()
    });
    assert!(ok, "nothing listens on {}", path.display());
    inode.unwrap()
}

/// Puts a copy of `from` at `app` the way a deployment does (a new file
/// renamed over the old one); returns its inode number.
fn install(app: &Path, from: &Path) -> u64 {
    let new = app.with_extension("new");
    // By `cp`, not by this process (see `Frontend::workdir`).
    let copied = Command::new("cp").arg(from).arg(&new).status().unwrap();
    assert!(copied.success());
    std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&new, app).unwrap();
    std::fs::metadata(app).unwrap().ino()
}

/// The pid of the application process of generation `g`, once its start
/// is in the log.
fn started(fe: &Frontend, g: u64) -> u32 {
    let find = || {
        fe.app_log_text().lines().find_map(|l| {
            let rest = l.split(" event=start pid=").nth(1)?;
            l.contains(&format!(" generation={g} "))
                .then(|| rest.split(' ').next()?.parse().ok())?
        })
    };
    let mut pid = None;
    let ok = eventually(LONG, || {
        pid = find();
        pid.is_some()
    });
    assert!(ok, "generation {g} did not start:\n{}", fe.app_log_text());
    pid.unwrap()
}

/// Prints past the test harness's capture, so that the figures show in
/// the output of a passing run.
fn report(line: &str) {
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

fn figures(t: &Tally) -> String {
    format!(
        "{} requests served, {} failed ({} of them 502)",
        t.ok, t.failed, t.bad_gateway
    )
}

fn assert_clean(what: &str, t: &Tally, fe: &Frontend) {
    assert!(t.ok > 0, "{what}: no request served");
    assert!(
        t.failed == 0 && t.bad_gateway == 0,
        "{what}: {}: {:#?}\nnginx:\n{}\napp:\n{}",
        figures(t),
        t.errors,
        fe.error_log_text(),
        fe.app_log_text()
    );
}

/// SIGUSR2 `TIMES` times, each after a new binary was put in place; then
/// the same number of restarts the old way, measured.
fn hand_over_under_load(keep_conn: bool) {
    if !have_tool("nginx") {
        return;
    }
    let fe = nginx(keep_conn, &[("FCGI_STATUS_PATH", "/fcgi-status")]);
    let sock = fe.dir.path("app.sock");
    let needle = sock.to_str().unwrap().to_owned();
    let inode = listening(&sock);
    let file = std::fs::metadata(&sock).unwrap().ino();
    let load = Load::start(fe.port, CLIENTS);
    assert!(load.wait_for(100, LONG), "the load does not run");
    let mut pid = fe.app_proc.as_ref().unwrap().pid();
    let clock = Instant::now();
    for g in 1..=TIMES {
        let exe = install(&fe.app, &example("echo"));
        signal(pid, "USR2");
        let new = started(&fe, g);
        let runs = std::fs::metadata(format!("/proc/{new}/exe")).unwrap().ino();
        assert_eq!(runs, exe, "generation {g} runs the binary put in place");
        assert!(eventually(LONG, || !alive(pid)), "pid {pid} did not exit");
        assert!(load.wait_for(50, LONG), "not served after hand-over {g}");
        pid = new;
    }
    let took = clock.elapsed();
    let status = http::get(fe.port, "/fcgi-status?json").text();
    assert!(status.contains("\"fcgi_generation\":10,"), "{status}");
    let tally = load.finish();
    assert_eq!(
        listening_inode(&sock),
        Some(inode),
        "the same socket listens"
    );
    assert_eq!(std::fs::metadata(&sock).unwrap().ino(), file);
    assert_eq!(procs_with(&needle), vec![pid], "one process serves");
    let setup = setup_name(keep_conn);
    report(&format!(
        "hand-over, {setup}: {TIMES} binaries handed over to in {took:.1?}: {}",
        figures(&tally)
    ));
    let (old, took) = old_way(&fe, pid);
    report(&format!(
        "old way, {setup}: {TIMES} times SIGTERM then start, in {took:.1?}: {}",
        figures(&old)
    ));
    assert_clean("hand-over", &tally, &fe);
    stop_all(&needle);
}

/// Restarts the application `TIMES` times as before hand-overs existed:
/// SIGTERM, wait for the exit, start it again; under the same load.
fn old_way(fe: &Frontend, mut pid: u32) -> (Tally, Duration) {
    let sock = fe.dir.path("app.sock");
    let load = Load::start(fe.port, CLIENTS);
    assert!(load.wait_for(100, LONG), "the load does not run");
    let mut started = Vec::new();
    let clock = Instant::now();
    for _ in 0..TIMES {
        signal(pid, "TERM");
        assert!(eventually(LONG, || !alive(pid)), "pid {pid} did not exit");
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(fe.dir.path("app.log"))
            .unwrap();
        let child = Command::new(&fe.app)
            .arg(&sock)
            .env("FCGI_WORKERS", "8")
            .stdin(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        pid = child.id();
        started.push(Proc(child));
        assert!(load.wait_for(50, LONG), "not served after a restart");
    }
    let took = clock.elapsed();
    (load.finish(), took)
}

#[test]
fn hand_over_ten_times_under_load_with_kept_connections() {
    hand_over_under_load(true);
}

#[test]
fn hand_over_ten_times_under_load_with_a_connection_per_request() {
    hand_over_under_load(false);
}

/// `max_requests` recycles by handing over, every 2000 requests.
fn recycle_under_load(keep_conn: bool) {
    if !have_tool("nginx") {
        return;
    }
    let fe = nginx(keep_conn, &[("FCGI_MAX_REQUESTS", "2000")]);
    let sock = fe.dir.path("app.sock");
    let needle = sock.to_str().unwrap().to_owned();
    let inode = listening(&sock);
    let load = Load::start(fe.port, CLIENTS);
    let clock = Instant::now();
    started(&fe, 3);
    assert!(load.wait_for(100, LONG));
    let took = clock.elapsed();
    let tally = load.finish();
    assert_eq!(
        listening_inode(&sock),
        Some(inode),
        "the same socket listens"
    );
    let one = eventually(LONG, || procs_with(&needle).len() == 1);
    assert!(one, "{:?} still run", procs_with(&needle));
    report(&format!(
        "recycling every 2000 requests, {}: 3 recycles in {took:.1?}: {}",
        setup_name(keep_conn),
        figures(&tally)
    ));
    assert_clean("recycling", &tally, &fe);
    stop_all(&needle);
}

#[test]
fn max_requests_recycles_under_load_with_kept_connections() {
    recycle_under_load(true);
}

#[test]
fn max_requests_recycles_under_load_with_a_connection_per_request() {
    recycle_under_load(false);
}

/// Puts `text` at `app` as its new binary.
fn install_text(fe: &Frontend, name: &str, text: &str) {
    let src = fe.dir.path(name);
    std::fs::write(&src, text).unwrap();
    install(&fe.app, &src);
}

/// Waits until the application's log holds `n` lines with `what`.
fn logged(fe: &Frontend, what: &str, n: usize) {
    let ok = eventually(LONG, || fe.app_log_text().matches(what).count() >= n);
    assert!(ok, "{what:?} not logged {n} times:\n{}", fe.app_log_text());
}

#[test]
fn a_new_binary_that_fails_leaves_the_old_one_serving() {
    if !have_tool("nginx") {
        return;
    }
    let fe = nginx(true, &[("FCGI_HANDOVER_TIMEOUT_MS", "1500")]);
    let needle = fe.dir.path("app.sock").to_str().unwrap().to_owned();
    let load = Load::start(fe.port, CLIENTS);
    assert!(load.wait_for(100, LONG));
    let pid = fe.app_proc.as_ref().unwrap().pid();
    let cases = [
        (
            "#!/bin/sh\necho 'cannot start: a broken build' >&2\nexit 3\n",
            "exited with status 3 before it was serving",
        ),
        ("this is not a program\n", "Exec format error"),
        (
            // Runs on, as `sh PROGRAM SOCKET`, without ever serving.
            "#!/bin/sh\nwhile :; do sleep 0.1; done\n",
            "did not say it was serving within 1.5s",
        ),
    ];
    for (n, (text, why)) in cases.iter().enumerate() {
        install_text(&fe, &format!("broken{n}"), text);
        signal(pid, "USR2");
        if why.starts_with("did not say") {
            // A second SIGUSR2 while the first hand-over waits.
            std::thread::sleep(Duration::from_millis(300));
            signal(pid, "USR2");
            logged(&fe, "refused: the hand-over to pid", 1);
        }
        logged(&fe, why, 1);
        logged(&fe, "event=handover_failed", n + 1);
        assert!(alive(pid), "the old process goes on");
        let one = eventually(LONG, || procs_with(&needle) == vec![pid]);
        assert!(one, "the failed one is stopped: {:?}", procs_with(&needle));
        assert!(load.wait_for(50, LONG), "not served after failure {n}");
    }
    // A good binary again: the hand-over goes through.
    install(&fe.app, &example("echo"));
    signal(pid, "USR2");
    let new = started(&fe, 1);
    assert!(eventually(LONG, || !alive(pid)));
    assert!(load.wait_for(50, LONG));
    let tally = load.finish();
    report(&format!(
        "three failed hand-overs, then one: {}",
        figures(&tally)
    ));
    assert_clean("failed hand-overs", &tally, &fe);
    assert_eq!(procs_with(&needle), vec![new]);
    stop_all(&needle);
}

/// Receives one notification, as text.
fn notification(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("a notification");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// The messages of `Type=notify`, on a socket at a path or an abstract
/// one: READY=1; RELOADING=1, then MAINPID= the new process with READY=1
/// around a hand-over; STOPPING=1 when the new one stops, and nothing
/// from the old one as it drains.
fn notify_sequence(abstract_name: bool) {
    let dir = TempDir::new("notify");
    let (listen, env) = if abstract_name {
        let name = format!(
            "fcgi-test-notify-{}-{}",
            std::process::id(),
            dir.0.display()
        );
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        (UnixDatagram::bind_addr(&addr).unwrap(), format!("@{name}"))
    } else {
        let path = dir.path("notify.sock");
        let env = path.to_str().unwrap().to_owned();
        (UnixDatagram::bind(path).unwrap(), env)
    };
    listen.set_read_timeout(Some(LONG)).unwrap();
    let sock = dir.path("app.sock");
    let mut first = Command::new(example("echo"))
        .arg(&sock)
        .env("NOTIFY_SOCKET", &env)
        .env("FCGI_STATUS_PATH", "/st")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = notification(&listen);
    assert!(ready.starts_with("READY=1\n"), "{ready:?}");
    let fcgi = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_fcgi"))
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let before = fcgi(&["status", sock.to_str().unwrap(), "--path", "/st"]);
    assert!(before.contains("fcgi_generation"), "{before}");
    signal(first.id(), "USR2");
    let reloading = notification(&listen);
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading:?}"
    );
    let handed = notification(&listen);
    let main: u32 = handed
        .strip_prefix("MAINPID=")
        .and_then(|r| r.split('\n').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{handed:?}"));
    assert!(handed.contains("\nREADY=1\n"), "{handed:?}");
    assert_ne!(main, first.id());
    assert!(alive(main));
    let exited = first.wait().unwrap();
    assert!(exited.success(), "the old process exits 0: {exited}");
    let after = fcgi(&["status", sock.to_str().unwrap(), "--path", "/st"]);
    let line = after.lines().find(|l| l.starts_with("fcgi_generation"));
    assert_eq!(
        line.and_then(|l| l.split_whitespace().nth(1)),
        Some("1"),
        "{after}"
    );
    listen.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    assert!(
        listen.recv(&mut buf).is_err(),
        "the old process said nothing more"
    );
    listen.set_nonblocking(false).unwrap();
    signal(main, "TERM");
    let stopping = notification(&listen);
    assert!(stopping.starts_with("STOPPING=1"), "{stopping:?}");
    assert!(eventually(LONG, || !alive(main)));
    assert!(!sock.exists(), "the last process removed the socket file");
}

#[test]
fn type_notify_messages_on_a_socket_at_a_path() {
    notify_sequence(false);
}

#[test]
fn type_notify_messages_on_an_abstract_socket() {
    notify_sequence(true);
}

#[test]
fn sigusr2_is_refused_for_the_socket_inherited_on_fd_0() {
    let dir = TempDir::new("fd0");
    let path = dir.path("web-server.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let log = dir.path("app.log");
    let mut child = Command::new(example("echo"))
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(listener)))
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let addr = path.to_str().unwrap();
    let res = connect_retry(addr).request(get(""), &b""[..]).unwrap();
    assert_eq!(res.status, 200);
    signal(child.id(), "USR2");
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    let refused = eventually(LONG, || {
        text().contains("SIGUSR2 received; not handing over: the listening socket was inherited on file descriptor 0")
    });
    assert!(refused, "{}", text());
    assert!(child.try_wait().unwrap().is_none(), "still running");
    let res = connect_retry(addr).request(get(""), &b""[..]).unwrap();
    assert_eq!(res.status, 200, "still serving");
    signal(child.id(), "TERM");
    assert!(child.wait().unwrap().success());
}

/// Under systemd socket activation (the socket on fd 3, `LISTEN_PID` the
/// process's own): SIGUSR2 hands over, and the socket file, systemd's,
/// stays when the last process stops.
#[test]
fn socket_activation_hands_over_and_leaves_the_socket_file() {
    let dir = TempDir::new("activated");
    let path = dir.path("activated.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let inode = listening_inode(&path).unwrap();
    let log = dir.path("app.log");
    // The shell moves the socket to fd 3 and execs the app with its own
    // pid in LISTEN_PID, as systemd does.
    let mut first = Command::new("sh")
        .arg("-c")
        .arg("exec 3<&0 0</dev/null; LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\"")
        .arg(example("echo"))
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(listener)))
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let addr = path.to_str().unwrap();
    assert_eq!(
        connect_retry(addr)
            .request(get(""), &b""[..])
            .unwrap()
            .status,
        200
    );
    signal(first.id(), "USR2");
    assert!(
        first.wait().unwrap().success(),
        "the first process hands over and exits"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let new: u32 = text
        .split(" event=handed_over ")
        .nth(1)
        .and_then(|r| r.split(" to=").nth(1)?.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    let res = connect_retry(addr).request(get(""), &b""[..]).unwrap();
    assert_eq!(res.status, 200, "the new process serves");
    assert_eq!(listening_inode(&path), Some(inode));
    signal(new, "TERM");
    assert!(eventually(LONG, || !alive(new)));
    assert!(path.exists(), "the socket file is systemd's: it stays");
}

/// Every echo application (on each adapter, with its feature) hands over
/// on SIGUSR2.
fn hands_over(name: &str) {
    let dir = TempDir::new("each");
    let sock = dir.path("app.sock");
    let mut first = Command::new(example(name))
        .arg(&sock)
        .env("FCGI_STATUS_PATH", "/st")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = sock.to_str().unwrap();
    assert_eq!(
        connect_retry(addr)
            .request(get(""), &b""[..])
            .unwrap()
            .status,
        200
    );
    signal(first.id(), "USR2");
    assert!(
        first.wait().unwrap().success(),
        "{name}: handed over and exited"
    );
    let mut c = connect_retry(addr);
    let res = c.request(get(""), &b""[..]).unwrap();
    assert_eq!(res.status, 200);
    let mut c = connect_retry(addr);
    let status = c.request(status_params("/st"), &b""[..]).unwrap();
    let text = String::from_utf8_lossy(&status.body).into_owned();
    assert!(text.contains("fcgi_generation"), "{text}");
    let generation = text
        .lines()
        .find(|l| l.starts_with("fcgi_generation"))
        .and_then(|l| l.split_whitespace().nth(1));
    assert_eq!(generation, Some("1"), "{name}: {text}");
    stop_all(addr);
}

fn status_params(path: &str) -> Vec<(&'static str, String)> {
    vec![
        ("REQUEST_METHOD", "GET".into()),
        ("QUERY_STRING", String::new()),
        ("SCRIPT_NAME", path.into()),
    ]
}

support::each_echo_app! {
    each_app_hands_over => hands_over;
}
