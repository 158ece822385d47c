//! The differential test: one realistic axum application
//! (examples/axum_site.rs) served at once natively by `axum::serve` and
//! over FastCGI by this crate's tower adapter, behind the same real web
//! server on both sides, and about a hundred named requests compared
//! answer by answer: status and reason, every header that carries
//! meaning (`Date`, `Server`, `Connection`, `Keep-Alive` set aside), the
//! framing (length, chunked, close-delimited), the body bytes, and a
//! server-sent event stream's events and whether they arrive one by one.
//!
//! The pairs: nginx `proxy_pass` and `fastcgi_pass`
//! (deploy/nginx-root.conf); lighttpd `mod_proxy` and `mod_fastcgi` with
//! `bin-path` (deploy/lighttpd-root.conf); Apache `mod_proxy_http` and
//! mod_fcgid (deploy/apache-fcgid.conf); and, with no front end, a raw
//! HTTP request to `axum::serve` and the crate's own FastCGI client with
//! the params nginx sends.
//!
//! A difference the front end makes itself, because it speaks HTTP to
//! one application and FastCGI to the other, is listed in [`KNOWN`] with
//! why, and left out; it must still be seen, so that the list stays true.
//! Every other difference fails the test. Negative controls show that the
//! comparison fails when it should: a route that answers differently over
//! FastCGI is caught through every front end, and altered answers are
//! caught aspect by aspect.
#![cfg(feature = "tower")]

mod support;

#[path = "differential/compare.rs"]
mod compare;
#[path = "differential/corpus.rs"]
mod corpus;
#[path = "differential/wire.rs"]
mod wire;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use compare::{Difference, differences, timing};
use support::frontend::{Frontend, Proc, free_port};
use support::{TempDir, eventually, example, have_tool};
use wire::{Answer, Ask, Framing};

/// A difference named and left out: behind which front end (`*`: any),
/// in which aspect (`*`: any), for which cases (empty: any), and why.
struct Known {
    /// Whose doing it is: `front end` or `hyper`.
    whose: &'static str,
    front_end: &'static str,
    aspect: &'static str,
    cases: &'static [&'static str],
    /// Whether a difference in that aspect is this one, given the native
    /// answer's status.
    fits: fn(&Difference, u16) -> bool,
    /// Whether it shows every run (else it depends on timing).
    always: bool,
    why: &'static str,
}

fn any(_: &Difference, _: u16) -> bool {
    true
}

/// The front end's own 502: the native server reset the connection.
fn native_bad_gateway(_: &Difference, native: u16) -> bool {
    native == 502
}

const LIGHTTPD_WHOLE: &str = "lighttpd, streaming (server.stream-response-body = 1), \
    frames an answer of unknown length with Content-Length when it has it whole before it \
    sends it, else chunked: which depends on timing, on either side";

/// Content-Length framing on one side, chunked on the other.
fn length_or_chunked(d: &Difference, _: u16) -> bool {
    let length = |s: &str| s.starts_with("content-length");
    (d.native == "chunked" && length(&d.fcgi)) || (d.fcgi == "chunked" && length(&d.native))
}

/// A `Content-Length` on one side only.
fn length_on_one_side(d: &Difference, _: u16) -> bool {
    (d.native == "(absent)") != (d.fcgi == "(absent)")
}

/// `Accept-Ranges: bytes` on one side only.
fn accept_ranges_on_one_side(d: &Difference, _: u16) -> bool {
    let (one, other) = (r#"["bytes"]"#, "(absent)");
    (d.native == one && d.fcgi == other) || (d.native == other && d.fcgi == one)
}

/// The paths that lighttpd normalises before it proxies.
const NORMALISED_BY_LIGHTTPD: &[&str] = &[
    "double-slash",
    "dot-segments",
    "encoded-dot-segments",
    "encoded-slash",
];

/// Bodiless HEAD answers on which hyper keeps axum's `content-length: 0`.
const HEAD_NO_CONTENT: &[&str] = &["status-204-head", "etag-not-modified-head"];

const HYPER_HEAD_204_304: &str = "hyper passes on the content-length: 0 that axum sets on \
    a 204 or 304 answer to HEAD (to GET it drops it); RFC 9110 8.6 allows none on a 204 and \
    only the 200's length on a 304, so the adapter sends none, as Apache and lighttpd \
    do in front of hyper; nginx passes it on";

const KNOWN: &[Known] = &[
    Known {
        whose: "hyper",
        front_end: "*",
        aspect: "*",
        cases: &["upload-too-large", "upload-stream-too-large"],
        fits: native_bad_gateway,
        always: false,
        why: "axum::serve answers 413 before it has read the body and closes the \
              connection with the rest unread, so the kernel resets it; the front end, \
              still sending the body, may then answer 502 instead (seen behind nginx); \
              over FastCGI the 413 arrives",
    },
    Known {
        whose: "front end",
        front_end: "lighttpd",
        aspect: "framing",
        cases: &[],
        fits: length_or_chunked,
        always: false,
        why: LIGHTTPD_WHOLE,
    },
    Known {
        whose: "front end",
        front_end: "lighttpd",
        aspect: "header content-length",
        cases: &[],
        fits: length_on_one_side,
        always: false,
        why: LIGHTTPD_WHOLE,
    },
    Known {
        whose: "front end",
        front_end: "lighttpd",
        aspect: "header accept-ranges",
        cases: &[],
        fits: accept_ranges_on_one_side,
        always: false,
        why: "lighttpd adds Accept-Ranges: bytes to a 200 answer it holds whole before \
              it sends it (it could serve a range of it itself); streaming \
              (server.stream-response-body = 1), whether it does depends on timing, \
              on either side",
    },
    Known {
        whose: "front end",
        front_end: "lighttpd",
        aspect: "*",
        cases: NORMALISED_BY_LIGHTTPD,
        fits: any,
        always: true,
        why: "lighttpd's mod_proxy sends the backend the path it normalised (%2F \
              decoded, slashes merged, dot segments resolved), but gives a FastCGI \
              application the client's REQUEST_URI, which the adapter keeps, as nginx's \
              proxy_pass and Apache's nocanon pass it",
    },
    Known {
        whose: "hyper",
        front_end: "direct",
        aspect: "header content-length",
        cases: HEAD_NO_CONTENT,
        fits: any,
        always: true,
        why: HYPER_HEAD_204_304,
    },
    Known {
        whose: "hyper",
        front_end: "nginx",
        aspect: "header content-length",
        cases: HEAD_NO_CONTENT,
        fits: any,
        always: true,
        why: HYPER_HEAD_204_304,
    },
];

/// Where one side of a pair is reached.
#[derive(Clone)]
enum Endpoint {
    /// HTTP on this port, the application mounted at this prefix.
    Http(u16, &'static str),
    /// FastCGI on this unix socket (the crate's client).
    Fcgi(String),
}

impl Endpoint {
    fn ask(&self, ask: &Ask) -> Answer {
        let got = match self {
            Endpoint::Http(port, prefix) => wire::http(*port, prefix, ask),
            Endpoint::Fcgi(sock) => wire::fcgi(sock, ask),
        };
        got.unwrap_or_else(|e| panic!("{} {}: {e}", ask.method, ask.target))
    }
}

/// A pair of servers to compare, and what keeps them running.
struct Pair {
    name: &'static str,
    native: Endpoint,
    fcgi: Endpoint,
    _native_app: Proc,
    _front: Option<Frontend>,
    _dir: Option<(TempDir, Proc)>,
}

/// Writes the static files into `static/` beside the application.
fn write_static(app: &Path) {
    let dir = app.parent().unwrap().join("static");
    for (name, content) in corpus::static_files() {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
    }
    // The application may run as the web server's user.
    let chmod = Command::new("chmod")
        .arg("-R")
        .arg("a+rX")
        .arg(&dir)
        .status();
    assert!(chmod.is_ok_and(|s| s.success()));
}

/// `app --http 127.0.0.1:port`, answering.
fn native_app(app: &Path, port: u16) -> Proc {
    let child = Command::new(app)
        .arg("--http")
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let up = eventually(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "axum::serve did not start on {port}");
    Proc(child)
}

/// No front end: a raw HTTP request to `axum::serve`, and the crate's
/// client to the application over FastCGI.
fn direct() -> Pair {
    let dir = TempDir::new("differential");
    let app = dir.path("app.fcgi");
    let cp = Command::new("cp")
        .arg(example("axum_site"))
        .arg(&app)
        .status();
    assert!(cp.is_ok_and(|s| s.success()));
    write_static(&app);
    let sock = dir.path("app.sock");
    let fcgi = Command::new(&app)
        .arg(&sock)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let fcgi = Proc(fcgi);
    assert!(eventually(Duration::from_secs(10), || sock.exists()));
    let port = free_port();
    Pair {
        name: "direct",
        native: Endpoint::Http(port, ""),
        fcgi: Endpoint::Fcgi(sock.to_str().unwrap().to_owned()),
        _native_app: native_app(&app, port),
        _front: None,
        _dir: Some((dir, fcgi)),
    }
}

/// nginx: deploy/nginx-root.conf, and a second server that proxies.
fn nginx() -> Pair {
    let (native, proxy) = (free_port(), free_port());
    let fe = Frontend::nginx("axum_site", "nginx-root.conf", |site| {
        site + &format!(
            "\nserver {{\n    listen 127.0.0.1:{proxy};\n    client_max_body_size 512m;\n    \
             location / {{\n        proxy_pass http://127.0.0.1:{native};\n        \
             proxy_http_version 1.1;\n    }}\n}}\n"
        )
    });
    front_pair("nginx", fe, native, proxy, "")
}

/// lighttpd: deploy/lighttpd-root.conf (`bin-path`), and `mod_proxy` on a
/// second port.
fn lighttpd() -> Pair {
    let (native, proxy) = (free_port(), free_port());
    let extra = format!(
        "\nserver.modules += ( \"mod_proxy\" )\n\
         $SERVER[\"socket\"] == \"127.0.0.1:{proxy}\" {{\n    fastcgi.server = ()\n    \
         proxy.server = ( \"\" => (( \"host\" => \"127.0.0.1\", \"port\" => {native} )) )\n}}\n"
    );
    let fe = Frontend::lighttpd_with("axum_site", "lighttpd-root.conf", &extra);
    front_pair("lighttpd", fe, native, proxy, "")
}

/// Apache: deploy/apache-fcgid.conf (mod_fcgid, at /yourapplication), and
/// `mod_proxy_http` at the same path on a second port. Both keep encoded
/// slashes (`AllowEncodedSlashes NoDecode`), and the proxy passes the
/// client's path as it is (`nocanon`), flushes as the application does
/// (`flushpackets=on`), as a site serving events would, and opens a
/// connection per request (`disablereuse=on`): `axum::serve` closes one
/// after answering a request whose body it did not read, and Apache would
/// send the next request on it (502).
fn apache() -> Pair {
    let (native, proxy) = (free_port(), free_port());
    let m = "/usr/lib/apache2/modules";
    let extra = format!(
        "LoadModule proxy_module {m}/mod_proxy.so\n\
         LoadModule proxy_http_module {m}/mod_proxy_http.so\n\
         AllowEncodedSlashes NoDecode\nListen 127.0.0.1:{proxy}\n\
         <VirtualHost 127.0.0.1:{proxy}>\n    AllowEncodedSlashes NoDecode\n    \
         ProxyPass /yourapplication http://127.0.0.1:{native} nocanon flushpackets=on \
         disablereuse=on\n\
         </VirtualHost>\n"
    );
    let fe = Frontend::apache_fcgid_with("axum_site", &extra);
    front_pair("apache", fe, native, proxy, "/yourapplication")
}

fn front_pair(
    name: &'static str,
    fe: Frontend,
    native: u16,
    proxy: u16,
    prefix: &'static str,
) -> Pair {
    write_static(&fe.app);
    let app = native_app(&fe.app, native);
    let up = eventually(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", proxy)).is_ok()
    });
    assert!(up, "{name}: the proxy port does not answer");
    Pair {
        name,
        native: Endpoint::Http(proxy, prefix),
        fcgi: Endpoint::Http(fe.port, prefix),
        _native_app: app,
        _front: Some(fe),
        _dir: None,
    }
}

/// A case's differences, each either known or not.
struct Outcome {
    case: &'static str,
    known: Vec<(Difference, &'static Known)>,
    unexplained: Vec<Difference>,
    /// How the body arrived, natively and over FastCGI.
    timing: (&'static str, &'static str),
}

/// Asks both sides of `pair` the case, at the same time.
fn both(pair: &Pair, ask: &Ask) -> (Answer, Answer) {
    std::thread::scope(|s| {
        let native = s.spawn(|| pair.native.ask(ask));
        let fcgi = pair.fcgi.ask(ask);
        (native.join().unwrap(), fcgi)
    })
}

fn judge(
    front_end: &str,
    case: &'static str,
    native_status: u16,
    diffs: Vec<Difference>,
) -> Outcome {
    let mut out = Outcome {
        case,
        known: Vec::new(),
        unexplained: Vec::new(),
        timing: ("", ""),
    };
    for d in diffs {
        let known = KNOWN.iter().find(|k| {
            (k.front_end == "*" || k.front_end == front_end)
                && (k.aspect == "*" || k.aspect == d.aspect)
                && (k.cases.is_empty() || k.cases.contains(&case))
                && (k.fits)(&d, native_status)
        });
        match known {
            Some(k) => out.known.push((d, k)),
            None => out.unexplained.push(d),
        }
    }
    out
}

/// Every case through `pair`.
fn run(pair: &Pair) -> Vec<Outcome> {
    corpus::cases()
        .into_iter()
        .map(|(case, ask)| {
            let (native, fcgi) = both(pair, &ask);
            let mut outcome = judge(pair.name, case, native.status, differences(&native, &fcgi));
            outcome.timing = (timing(&native), timing(&fcgi));
            outcome
        })
        .collect()
}

/// The report of one pair: what differs, known (each case's aspects on
/// one line) or not, and how the event stream arrived.
fn report(name: &str, outcomes: &[Outcome]) -> (String, usize) {
    let mut text = String::new();
    let mut bad = 0;
    for o in outcomes {
        if let Some((_, k)) = o.known.first() {
            let aspects: Vec<&str> = o.known.iter().map(|(d, _)| d.aspect.as_str()).collect();
            let whose = k.whose;
            text += &format!("  [{name}] {}: {whose}'s own, in {aspects:?}\n", o.case);
        }
        for d in &o.unexplained {
            bad += 1;
            text += &format!("  [{name}] {} DIFFERS in {d}\n", o.case);
        }
        if o.case.starts_with("sse") {
            let (n, f) = o.timing;
            text += &format!(
                "  [{name}] {}: events arrived {n} natively, {f} over FastCGI\n",
                o.case
            );
        }
    }
    (text, bad)
}

/// What starts a pair.
type Setup = fn() -> Pair;

/// Starts a pair, one at a time: a port that `free_port` found is free
/// only until someone binds it, and each pair binds several.
fn start(setup: Setup) -> Pair {
    static STARTING: Mutex<()> = Mutex::new(());
    let _one = STARTING.lock().unwrap_or_else(|e| e.into_inner());
    setup()
}

/// Each front end the test drives, by the tool that must be installed.
const FRONT_ENDS: &[(&str, &str, Setup)] = &[
    ("direct", "", direct),
    ("nginx", "nginx", nginx),
    ("lighttpd", "lighttpd", lighttpd),
    ("apache", "apache2", apache),
];

#[test]
fn same_answers_natively_and_over_fastcgi() {
    let began = Instant::now();
    let runs: Vec<_> = FRONT_ENDS
        .iter()
        .filter(|(_, tool, _)| tool.is_empty() || have_tool(tool))
        .map(|&(name, _, setup)| {
            std::thread::spawn(move || {
                let pair = start(setup);
                let outcomes = run(&pair);
                let control = negative_control(&pair);
                (name, outcomes, control)
            })
        })
        .collect();
    let mut text = String::new();
    let mut bad = 0;
    let mut seen_known = Vec::new();
    for r in runs {
        let (name, outcomes, control) = r.join().unwrap();
        let (t, b) = report(name, &outcomes);
        text += &t;
        bad += b;
        if let Err(e) = control {
            bad += 1;
            text += &format!("  [{name}] negative control: {e}\n");
        }
        for o in &outcomes {
            for (d, _) in &o.known {
                seen_known.push((name, d.aspect.clone(), o.case));
            }
        }
    }
    for k in KNOWN {
        text += &format!(
            "  known, {}'s own, behind {}: {}\n",
            k.whose, k.front_end, k.why
        );
    }
    eprintln!("differential test: {:?}\n{text}", began.elapsed());
    for k in KNOWN.iter().filter(|k| k.always) {
        let seen = seen_known.iter().any(|(f, a, c)| {
            (k.front_end == "*" || *f == k.front_end)
                && (k.aspect == "*" || a == k.aspect)
                && (k.cases.is_empty() || k.cases.contains(c))
        });
        assert!(
            seen,
            "a known difference no longer shows: {} {} ({})",
            k.front_end, k.aspect, k.why
        );
    }
    assert_eq!(bad, 0, "answers differ:\n{text}");
}

/// The route that answers differently over FastCGI is caught: its body
/// differs, and nothing names it known.
fn negative_control(pair: &Pair) -> Result<(), String> {
    let ask = Ask {
        method: "GET",
        target: "/transport".into(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    let (native, fcgi) = both(pair, &ask);
    let outcome = judge(
        pair.name,
        "transport",
        native.status,
        differences(&native, &fcgi),
    );
    let aspects: Vec<&str> = outcome
        .unexplained
        .iter()
        .map(|d| d.aspect.as_str())
        .collect();
    if aspects.contains(&"body") {
        Ok(())
    } else {
        Err(format!(
            "/transport's different answer was not caught: {aspects:?}"
        ))
    }
}

/// Altered answers are caught, each in the aspect altered: the
/// comparison is not blind to any of them.
#[test]
fn an_altered_answer_is_caught() {
    let pair = start(direct);
    let cases = corpus::cases();
    let find = |name: &str| cases.iter().find(|(n, _)| *n == name).unwrap().1.clone();
    let (native, fcgi) = both(&pair, &find("cookies"));
    assert_eq!(differences(&native, &fcgi), Vec::new());
    type Alter = fn(&mut Answer);
    let alterations: &[(&str, Alter)] = &[
        ("status", |a| a.status = 201),
        ("reason", |a| a.reason = "Fine".into()),
        ("header x-extra", |a| {
            a.headers.push(("x-extra".into(), "1".into()))
        }),
        ("header content-type", |a| {
            a.headers.retain(|(n, _)| n != "content-type")
        }),
        ("framing", |a| a.framing = Framing::Chunked),
        ("body", |a| a.body[0] ^= 1),
    ];
    for (aspect, alter) in alterations {
        let mut altered = fcgi.clone();
        alter(&mut altered);
        let found: Vec<String> = differences(&native, &altered)
            .into_iter()
            .map(|d| d.aspect)
            .collect();
        assert!(
            found.iter().any(|a| a == aspect),
            "{aspect} altered, found {found:?}"
        );
    }
    // Events that arrive all at the end.
    let (native, fcgi) = both(&pair, &find("sse"));
    assert_eq!(timing(&native), "incremental");
    assert_eq!(differences(&native, &fcgi), Vec::new());
    let mut late = fcgi.clone();
    let end = *late.arrivals.last().unwrap();
    late.arrivals.iter_mut().for_each(|t| *t = end);
    let found: Vec<String> = differences(&native, &late)
        .into_iter()
        .map(|d| d.aspect)
        .collect();
    assert_eq!(found, ["timing"]);
    // A header set aside does not count.
    let mut dated = fcgi.clone();
    dated
        .headers
        .push(("date".into(), "Thu, 01 Jan 1970 00:00:00 GMT".into()));
    assert_eq!(differences(&native, &dated), Vec::new());
}
