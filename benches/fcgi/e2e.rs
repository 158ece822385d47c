//! End to end: an HTTP load generator (`wrk`, one thread, HTTP
//! keep-alive) → a real web server (nginx with one worker, lighttpd) →
//! the application. The ceiling is the best of the raw servers (`raw.rs`,
//! shapes `epoll` and `threads`) behind the same front end, measured in
//! the same rounds; the ratio is the median of the rounds' ratios to it.
//!
//! - nginx, kept connections: `fastcgi_keep_conn on` and an upstream with
//!   `keepalive 32` (the tuned setup);
//! - nginx, a connection per request (its default);
//! - lighttpd starting the application itself (`bin-path`, the listening
//!   socket on its fd 0).
//!
//! Every response is verified: one request is read whole and checked
//! before each run, and wrk's count of non-2xx answers and socket errors
//! is shown beside each figure (a run with any is marked, never dropped).
//! The application's CPU time per request comes from `/proc`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{Server, TempDir, median, paired};

/// A front end, set up as its name says.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Front {
    NginxKept,
    NginxPerRequest,
    Lighttpd,
}

impl Front {
    const ALL: [Front; 3] = [Front::NginxKept, Front::NginxPerRequest, Front::Lighttpd];

    fn name(self) -> &'static str {
        match self {
            Front::NginxKept => "nginx, fastcgi_keep_conn on + keepalive 32",
            Front::NginxPerRequest => "nginx, a connection per request",
            Front::Lighttpd => "lighttpd bin-path",
        }
    }

    fn target(self) -> &'static str {
        match self {
            Front::NginxKept => ">= 0.85",
            _ => ">= 0.90",
        }
    }
}

/// What one wrk run measured.
#[derive(Clone, Copy, Default)]
pub(super) struct Wrk {
    pub(super) rate: f64,
    pub(super) requests: u64,
    /// Non-2xx/3xx answers plus socket errors.
    pub(super) errors: u64,
    /// The application's CPU time per request, in microseconds.
    pub(super) app_cpu_us: f64,
}

/// A front end and an application behind it, running.
struct Site {
    port: u16,
    front: Child,
    /// The application, when the front end does not start it itself.
    app: Option<Server>,
    _dir: TempDir,
}

impl Drop for Site {
    fn drop(&mut self) {
        // lighttpd's own child outlives a killed lighttpd.
        let spawned = self.app.is_none().then(|| self.app_pid()).flatten();
        let _ = self.front.kill();
        let _ = self.front.wait();
        if let Some(pid) = spawned {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn nginx_conf(dir: &Path, port: u16, sock: &Path, kept: bool) -> String {
    let d = dir.display();
    let sock = sock.display();
    let (upstream, keep) = if kept {
        (
            format!("upstream app {{ server unix:{sock}; keepalive 32; }}\n"),
            "fastcgi_keep_conn on; fastcgi_pass app;",
        )
    } else {
        (String::new(), "")
    };
    let pass = if kept {
        String::new()
    } else {
        format!("fastcgi_pass unix:{sock};")
    };
    format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\nuser root;\n\
         pid {d}/nginx.pid;\nerror_log {d}/error.log error;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n access_log off;\n client_body_temp_path {d}/body;\n\
         fastcgi_temp_path {d}/fastcgi;\n proxy_temp_path {d}/proxy;\n\
         uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n{upstream}\
         server {{ listen 127.0.0.1:{port} backlog=4096;\n location / {{\n\
         include /etc/nginx/fastcgi_params;\n fastcgi_param SCRIPT_NAME /app;\n\
         fastcgi_param PATH_INFO /bench;\n {keep} {pass}\n }}\n }}\n}}\n"
    )
}

fn lighttpd_conf(dir: &Path, port: u16, argv: &[String]) -> String {
    let d = dir.display();
    format!(
        "server.document-root = \"{d}\"\nserver.bind = \"127.0.0.1\"\n\
         server.port = {port}\nserver.errorlog = \"{d}/error.log\"\n\
         server.max-connections = 4096\nserver.modules += ( \"mod_fastcgi\" )\n\
         fastcgi.server = ( \"/\" => ((\n \"socket\" => \"{d}/app.sock\",\n\
         \"bin-path\" => \"{}\",\n \"check-local\" => \"disable\",\n\
         \"max-procs\" => 1\n)))\n",
        argv.join(" ")
    )
}

impl Site {
    fn start(front: Front, argv: &[String]) -> Site {
        let dir = TempDir::new();
        let port = free_port();
        let (mut cmd, app) = match front {
            Front::Lighttpd => {
                std::fs::write(dir.0.join("l.conf"), lighttpd_conf(&dir.0, port, argv)).unwrap();
                let mut c = Command::new("lighttpd");
                c.arg("-D").arg("-f").arg(dir.0.join("l.conf"));
                (c, None)
            }
            _ => {
                let mut app = Command::new(&argv[0]);
                app.args(&argv[1..]);
                let server = Server::start(vec![app]);
                let conf = nginx_conf(&dir.0, port, &server.path, front == Front::NginxKept);
                std::fs::write(dir.0.join("n.conf"), conf).unwrap();
                let mut c = Command::new("nginx");
                c.arg("-p").arg(&dir.0).arg("-c").arg(dir.0.join("n.conf"));
                (c, Some(server))
            }
        };
        let front = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the front end");
        let site = Site {
            port,
            front,
            app,
            _dir: dir,
        };
        site.check();
        site
    }

    /// One request read whole: the hello answer, through the front end.
    fn check(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(answer) = self.get() {
                let status = answer.lines().next().unwrap_or_default();
                let ok = status.contains(" 200 ") && answer.ends_with("\r\n\r\nHello, World!\n");
                assert!(ok, "not the hello answer:\n{answer}");
                return;
            }
            assert!(Instant::now() < deadline, "the front end does not answer");
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn get(&self) -> std::io::Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"GET /app/bench HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        Ok(answer)
    }

    /// The application's process: ours, or lighttpd's child.
    fn app_pid(&self) -> Option<u32> {
        if let Some(app) = &self.app {
            return Some(app.children[0].id());
        }
        let pid = self.front.id();
        let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        kids.split_whitespace().next()?.parse().ok()
    }
}

/// User and system CPU time of `pid` so far, in seconds.
pub(super) fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line: 12 and 13 here.
    (tick(11) + tick(12)) / 100.0
}

/// Runs wrk against `port` for `secs`.
fn wrk(port: u16, conns: usize, secs: f64) -> Wrk {
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{conns}")])
        // wrk takes whole seconds.
        .arg(format!("-d{}s", secs.ceil().max(1.0)))
        .arg(format!("http://127.0.0.1:{port}/app/bench"))
        .output()
        .expect("wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    let after = |key: &str| -> f64 {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .and_then(|v| {
                v.split_whitespace()
                    .next()?
                    .trim_end_matches(',')
                    .parse()
                    .ok()
            })
            .unwrap_or(0.0)
    };
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let socket_errors: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map_or(0, |l| {
            l.split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        });
    Wrk {
        rate: after("Requests/sec:"),
        requests,
        errors: after("Non-2xx or 3xx responses:") as u64 + socket_errors,
        app_cpu_us: f64::NAN,
    }
}

/// One measured run of `argv` behind `front`.
fn measure(front: Front, argv: &[String], conns: usize, secs: f64, warm: f64) -> Wrk {
    let site = Site::start(front, argv);
    if warm > 0.0 {
        wrk(site.port, conns, warm);
    }
    let pid = site.app_pid();
    let before = pid.map_or(0.0, cpu_secs);
    let mut m = wrk(site.port, conns, secs);
    if let Some(pid) = pid {
        m.app_cpu_us = (cpu_secs(pid) - before) * 1e6 / m.requests.max(1) as f64;
    }
    m
}

/// Whether wrk and both front ends are here; a missing one is said
/// (and fails a CI run).
fn tools_found() -> bool {
    let found = |name: &str| {
        let here = Command::new(name)
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !here {
            // As the tests do: a CI run must have them.
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "end to end: {name} is not installed (CI=true)"
            );
            println!("end to end: SKIPPED, {name} is not installed");
        }
        here
    };
    ["wrk", "nginx", "lighttpd"].into_iter().all(found)
}

/// The raw shapes measured behind each front end; the best of them (by
/// median rate) is the ceiling.
const RAW_SHAPES: [&str; 2] = ["epoll", "threads"];

/// The end-to-end table: each front end at 16 and 64 connections.
pub(super) fn run(hello: &Path, raw_exe: &Path, rounds: usize, secs: f64, smoke: bool) {
    if !tools_found() {
        return;
    }
    let ours = vec![hello.to_string_lossy().into_owned()];
    let raws: Vec<Vec<String>> = RAW_SHAPES
        .iter()
        .map(|shape| {
            let exe = raw_exe.to_string_lossy().into_owned();
            vec![exe, "--raw-server".into(), (*shape).into(), "hello".into()]
        })
        .collect();
    let conns: &[usize] = if smoke { &[16] } else { &[16, 64] };
    // A warm-up, as the FastCGI scenarios have one, except in a smoke run.
    let warm = if smoke { 0.0 } else { 0.5 };
    println!(
        "\nend to end: wrk (1 thread, HTTP keep-alive) -> front end (1 worker) -> hello; ratio to the best raw server (shapes {}) behind the same front end, median of {rounds} rounds' ratios",
        RAW_SHAPES.join(", ")
    );
    println!(
        "{:<44} {:>5} {:>12} {:>20} {:>7} {:>15}  target",
        "front end", "conns", "fcgi-server", "best raw", "ratio", "app CPU us/req"
    );
    for front in Front::ALL {
        for &c in conns {
            let mut ours_rounds = Vec::new();
            let mut raw_rounds: Vec<Vec<Wrk>> = vec![Vec::new(); raws.len()];
            for _ in 0..rounds {
                ours_rounds.push(measure(front, &ours, c, secs, warm));
                for (i, argv) in raws.iter().enumerate() {
                    raw_rounds[i].push(measure(front, argv, c, secs, warm));
                }
            }
            let rate = |v: &[Wrk]| median(&mut v.iter().map(|w| w.rate).collect::<Vec<_>>());
            let best = (0..raws.len())
                .max_by(|&a, &b| rate(&raw_rounds[a]).total_cmp(&rate(&raw_rounds[b])))
                .unwrap();
            print_row(
                front,
                c,
                &ours_rounds,
                (&raw_rounds[best], RAW_SHAPES[best]),
            );
        }
    }
}

fn print_row(front: Front, conns: usize, ours: &[Wrk], (raw, shape): (&[Wrk], &str)) {
    let rates = |v: &[Wrk]| v.iter().map(|w| w.rate).collect::<Vec<_>>();
    let med = |v: &[Wrk], f: fn(&Wrk) -> f64| median(&mut v.iter().map(f).collect::<Vec<_>>());
    let ratio = paired(&rates(ours), &rates(raw));
    let errors: u64 = ours.iter().chain(raw).map(|w| w.errors).sum();
    let mark = if errors > 0 {
        format!("  ({errors} errors: non-2xx or socket)")
    } else {
        String::new()
    };
    println!(
        "{:<44} {:>5} {:>8.0} r/s {:>8.0} r/s {:<7} {:>7.2} {:>7.1} vs {:<5.1}  {}{mark}",
        front.name(),
        conns,
        med(ours, |w| w.rate),
        med(raw, |w| w.rate),
        format!("({shape})"),
        ratio,
        med(ours, |w| w.app_cpu_us),
        med(raw, |w| w.app_cpu_us),
        front.target()
    );
}
