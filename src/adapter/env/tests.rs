//! The CGI environment to `http::Request` mapping, as tables: params in,
//! the request's parts out. Each request goes to a real server in this
//! process through the FastCGI client, as a web server's would.

use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::*;
use crate::client::Client;
use crate::{Request, Response, Server};

/// Maps `params` (sent in this order, duplicates included) with `route`;
/// `f` sees the result.
fn mapped<T: Send + 'static>(
    params: Params<'_>,
    route: RoutePath,
    f: impl Fn(Result<::http::Request<()>, Refused>) -> T + Send + Sync + 'static,
) -> T {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("fcgi-env-{}-{n}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let out: Arc<Mutex<Option<T>>> = Arc::default();
    let slot = Arc::clone(&out);
    let handler = move |req: &mut Request<'_>, _res: &mut Response<'_>| {
        let parts = request_parts(req, route, Stderr::for_request());
        *slot.lock().unwrap() = Some(f(parts));
        Ok(())
    };
    let server = Server::new(handler)
        .workers(1)
        .handle_signals(false)
        .listener(listener);
    let stop = server.shutdown_handle();
    let running = std::thread::spawn(move || server.run());
    let mut client = Client::connect(path.to_str().unwrap()).unwrap();
    let pairs = params.iter().map(|(k, v)| (k.as_bytes(), *v));
    client.request(pairs, &b""[..]).unwrap();
    stop.shutdown();
    running.join().unwrap().unwrap();
    let _ = std::fs::remove_file(&path);
    let result = out.lock().unwrap().take();
    result.expect("the handler ran")
}

/// Params as the web server sends them, in order.
type Params<'a> = &'a [(&'a str, &'a [u8])];

fn uri_of(params: &[(&str, &str)], route: RoutePath) -> String {
    let params: Vec<(&str, &[u8])> = params.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    mapped(&params, route, |r| {
        r.map(|r| r.uri().to_string())
            .unwrap_or_else(|e| format!("{e:?}"))
    })
}

/// (params, the path routed on, the URI the application sees)
type UriCase = (
    &'static [(&'static str, &'static str)],
    RoutePath,
    &'static str,
);

const NGINX_PREFIX: &[(&str, &str)] = &[
    ("REQUEST_URI", "/app/users/7?x=1"),
    ("QUERY_STRING", "x=1"),
    ("SCRIPT_NAME", "/app"),
    ("PATH_INFO", "/users/7"),
];

const URI_CASES: &[UriCase] = &[
    // A prefix mount: the path below it, or all of it.
    (NGINX_PREFIX, RoutePath::BelowMount, "/users/7?x=1"),
    (NGINX_PREFIX, RoutePath::Full, "/app/users/7?x=1"),
    // At the mount point itself.
    (
        &[
            ("REQUEST_URI", "/app"),
            ("SCRIPT_NAME", "/app"),
            ("PATH_INFO", ""),
        ],
        RoutePath::BelowMount,
        "/",
    ),
    (
        &[
            ("REQUEST_URI", "/app/"),
            ("SCRIPT_NAME", "/app"),
            ("PATH_INFO", "/"),
        ],
        RoutePath::BelowMount,
        "/",
    ),
    // The root: SCRIPT_NAME empty.
    (
        &[
            ("REQUEST_URI", "/a/b?q"),
            ("QUERY_STRING", "q"),
            ("SCRIPT_NAME", ""),
            ("PATH_INFO", "/a/b"),
        ],
        RoutePath::BelowMount,
        "/a/b?q",
    ),
    (
        &[
            ("REQUEST_URI", "/a/b"),
            ("SCRIPT_NAME", ""),
            ("PATH_INFO", "/a/b"),
        ],
        RoutePath::Full,
        "/a/b",
    ),
    // The client's encoding is kept where REQUEST_URI agrees with PATH_INFO.
    (
        &[
            ("REQUEST_URI", "/app/a%2Fb/%7Ex"),
            ("SCRIPT_NAME", "/app"),
            ("PATH_INFO", "/a/b/~x"),
        ],
        RoutePath::BelowMount,
        "/a%2Fb/%7Ex",
    ),
    // A rewritten request (Apache .htaccess): PATH_INFO, encoded.
    (
        &[
            ("REQUEST_URI", "/sub/hello world?x"),
            ("QUERY_STRING", "x"),
            ("SCRIPT_NAME", "/sub/app.fcgi"),
            ("PATH_INFO", "/hello world"),
        ],
        RoutePath::BelowMount,
        "/hello%20world?x",
    ),
    (
        &[
            ("REQUEST_URI", "/sub/hello?x"),
            ("QUERY_STRING", "x"),
            ("SCRIPT_NAME", "/sub/app.fcgi"),
            ("PATH_INFO", "/hello"),
        ],
        RoutePath::Full,
        "/sub/hello?x",
    ),
    // A path nginx normalised (slashes merged, dot segments resolved,
    // escapes decoded) is the same resource: the client's path is kept, as
    // an HTTP proxy passes it, so the application's routing and its own
    // traversal checks see what they see natively.
    (
        &[
            ("REQUEST_URI", "/app//x/../y"),
            ("SCRIPT_NAME", "/app"),
            ("PATH_INFO", "/y"),
        ],
        RoutePath::BelowMount,
        "//x/../y",
    ),
    (
        &[
            ("REQUEST_URI", "//hello//world"),
            ("SCRIPT_NAME", ""),
            ("PATH_INFO", "/hello/world"),
        ],
        RoutePath::BelowMount,
        "//hello//world",
    ),
    (
        &[
            ("REQUEST_URI", "/static/docs/..%2fhello.txt"),
            ("SCRIPT_NAME", ""),
            ("PATH_INFO", "/static/hello.txt"),
        ],
        RoutePath::BelowMount,
        "/static/docs/..%2fhello.txt",
    ),
    (
        &[
            ("REQUEST_URI", "/a/./b/%2E%2E/c/.?q"),
            ("SCRIPT_NAME", ""),
            ("PATH_INFO", "/a/c/"),
        ],
        RoutePath::BelowMount,
        "/a/./b/%2E%2E/c/.?q",
    ),
    // Apache's AllowEncodedSlashes NoDecode leaves `%2F` in PATH_INFO: the
    // same resource, and the escape is not escaped again.
    (
        &[
            ("REQUEST_URI", "/app/files/a%2Fb.txt"),
            ("SCRIPT_NAME", "/app"),
            ("PATH_INFO", "/files/a%2Fb.txt"),
        ],
        RoutePath::BelowMount,
        "/files/a%2Fb.txt",
    ),
    // ... also where a rewrite makes PATH_INFO the path (.htaccess).
    (
        &[
            ("REQUEST_URI", "/sub/files/a%2Fb%20c.txt"),
            ("SCRIPT_NAME", "/sub/app.fcgi"),
            ("PATH_INFO", "/files/a%2Fb c.txt"),
        ],
        RoutePath::BelowMount,
        "/files/a%2Fb%20c.txt",
    ),
    // A rewrite to another path is followed (the raw path names another
    // resource), also when only a dot segment or a slash tells them apart.
    (
        &[
            ("REQUEST_URI", "/a/../b"),
            ("SCRIPT_NAME", ""),
            ("PATH_INFO", "/a/b"),
        ],
        RoutePath::BelowMount,
        "/a/b",
    ),
    (
        &[
            ("REQUEST_URI", "/a/b/"),
            ("SCRIPT_NAME", ""),
            ("PATH_INFO", "/a/b"),
        ],
        RoutePath::BelowMount,
        "/a/b",
    ),
    // No REQUEST_URI: SCRIPT_NAME and PATH_INFO, percent-encoded.
    (
        &[
            ("SCRIPT_NAME", "/my app"),
            ("PATH_INFO", "/50%/ü?#"),
            ("QUERY_STRING", "a=1&b"),
        ],
        RoutePath::Full,
        "/my%20app/50%25/%C3%BC%3F%23?a=1&b",
    ),
    (
        &[("SCRIPT_NAME", "/my app"), ("PATH_INFO", "/x")],
        RoutePath::BelowMount,
        "/x",
    ),
    // Nothing at all (CGI by hand): the root.
    (&[], RoutePath::BelowMount, "/"),
    (&[], RoutePath::Full, "/"),
    // The query comes from QUERY_STRING (a rewrite may change it), with
    // what a URI cannot hold encoded.
    (
        &[("REQUEST_URI", "/p?old"), ("QUERY_STRING", "new=1 2")],
        RoutePath::Full,
        "/p?new=1%202",
    ),
    // Without QUERY_STRING, REQUEST_URI's query.
    (
        &[("REQUEST_URI", "/p?only=here")],
        RoutePath::Full,
        "/p?only=here",
    ),
    // A raw path with bytes a URI cannot hold: encoded.
    (
        &[("REQUEST_URI", "/a\"b{c}")],
        RoutePath::Full,
        "/a%22b%7Bc%7D",
    ),
];

#[test]
fn uri_cases() {
    for (params, route, want) in URI_CASES {
        assert_eq!(uri_of(params, *route), *want, "{params:?} {route:?}");
    }
}

#[test]
fn method_and_version_cases() {
    type Want<'a> = Result<(&'a str, Version), Refused>;
    let cases: &[(Params<'_>, Want<'_>)] = &[
        (
            &[
                ("REQUEST_METHOD", b"POST"),
                ("SERVER_PROTOCOL", b"HTTP/1.0"),
            ],
            Ok(("POST", Version::HTTP_10)),
        ),
        (
            &[
                ("REQUEST_METHOD", b"PROPFIND"),
                ("SERVER_PROTOCOL", b"HTTP/2.0"),
            ],
            Ok(("PROPFIND", Version::HTTP_2)),
        ),
        (
            &[("SERVER_PROTOCOL", b"HTTP/1.1")],
            Ok(("GET", Version::HTTP_11)),
        ),
        (
            &[("REQUEST_METHOD", b"GET"), ("SERVER_PROTOCOL", b"HTTP/3")],
            Ok(("GET", Version::HTTP_3)),
        ),
        (
            &[("REQUEST_METHOD", b"GET"), ("SERVER_PROTOCOL", b"SPDY")],
            Ok(("GET", Version::HTTP_11)),
        ),
        (&[("REQUEST_METHOD", b"G ET")], Err(Refused::Method)),
        (&[("REQUEST_METHOD", b"")], Err(Refused::Method)),
        (&[("REQUEST_METHOD", b"GET\xff")], Err(Refused::Method)),
    ];
    for (params, want) in cases {
        let got = mapped(params, RoutePath::BelowMount, |r| {
            r.map(|r| (r.method().as_str().to_owned(), r.version()))
        });
        let got = got.as_ref().map(|(m, v)| (m.as_str(), *v));
        assert_eq!(got, want.as_ref().map(|(m, v)| (*m, *v)), "{params:?}");
    }
}

/// The headers of a request mapped from `params`, as `name: value` lines
/// in their order (values shown lossily).
fn headers_of(params: &[(&str, &[u8])]) -> Vec<String> {
    mapped(params, RoutePath::BelowMount, |r| {
        let r = r.unwrap();
        r.headers()
            .iter()
            .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v.as_bytes())))
            .collect()
    })
}

/// (params, the request's headers as the application sees them)
type HeaderCase = (
    &'static [(&'static str, &'static [u8])],
    &'static [&'static str],
);

const HEADER_CASES: &[HeaderCase] = &[
    (
        &[
            ("HTTP_USER_AGENT", b"curl/8"),
            ("HTTP_X_FORWARDED_FOR", b"10.0.0.1"),
            ("HTTP_HOST", b"example.org"),
        ],
        &[
            "user-agent: curl/8",
            "x-forwarded-for: 10.0.0.1",
            "host: example.org",
        ],
    ),
    // CONTENT_TYPE and CONTENT_LENGTH; empty ones are skipped.
    (
        &[("CONTENT_TYPE", b"text/plain"), ("CONTENT_LENGTH", b"12")],
        &["content-type: text/plain", "content-length: 12"],
    ),
    (&[("CONTENT_TYPE", b""), ("CONTENT_LENGTH", b"")], &[]),
    // The CGI variables win over HTTP_CONTENT_* (which some servers send too).
    (
        &[("HTTP_CONTENT_LENGTH", b"99"), ("CONTENT_LENGTH", b"5")],
        &["content-length: 5"],
    ),
    // Host from SERVER_NAME and SERVER_PORT when the client sent none.
    (
        &[("SERVER_NAME", b"localhost"), ("SERVER_PORT", b"8080")],
        &["host: localhost:8080"],
    ),
    (&[("SERVER_NAME", b"localhost")], &["host: localhost"]),
    (
        &[
            ("HTTP_HOST", b"a.example"),
            ("SERVER_NAME", b"b.example"),
            ("SERVER_PORT", b"80"),
        ],
        &["host: a.example"],
    ),
    // Two Cookie headers, as nginx passes them: joined with "; " (where
    // the first one was sent).
    (
        &[
            ("HTTP_COOKIE", b"a=1"),
            ("HTTP_ACCEPT", b"*/*"),
            ("HTTP_COOKIE", b"b=2"),
        ],
        &["cookie: a=1; b=2", "accept: */*"],
    ),
    // Another name sent twice: both values, in order.
    (
        &[("HTTP_X_TAG", b"one"), ("HTTP_X_TAG", b"two")],
        &["x-tag: one", "x-tag: two"],
    ),
    // A value that is not UTF-8 passes; one with a control byte does not;
    // a name HTTP does not allow is left out.
    (
        &[
            ("HTTP_X_LATIN", b"caf\xe9"),
            ("HTTP_X_BAD", b"a\x01b"),
            ("HTTP_X(Y", b"1"),
        ],
        &["x-latin: caf\u{fffd}"],
    ),
    // Params that are not headers stay out of the headers.
    (
        &[
            ("REMOTE_ADDR", b"127.0.0.1"),
            ("HTTPS", b"on"),
            ("SCRIPT_NAME", b"/app"),
        ],
        &[],
    ),
];

#[test]
fn header_cases() {
    for (params, want) in HEADER_CASES {
        assert_eq!(headers_of(params), *want, "{params:?}");
    }
}

#[test]
fn the_latin_value_keeps_its_bytes() {
    let v = mapped(&[("HTTP_X_LATIN", b"caf\xe9")], RoutePath::Full, |r| {
        r.unwrap().headers()["x-latin"].as_bytes().to_vec()
    });
    assert_eq!(v, b"caf\xe9");
}

#[test]
fn extension_cases() {
    type Ext = (Option<RemoteAddr>, String, bool);
    let ext = |params: &[(&str, &[u8])]| -> Ext {
        mapped(params, RoutePath::BelowMount, |r| {
            let r = r.unwrap();
            let e = r.extensions();
            (
                e.get::<RemoteAddr>().copied(),
                e.get::<ScriptName>().unwrap().as_str().to_owned(),
                e.get::<Https>().unwrap().0,
            )
        })
    };
    let addr = |s: &str| Some(RemoteAddr(s.parse().unwrap()));
    let cases: &[(Params<'_>, Ext)] = &[
        (
            &[
                ("REMOTE_ADDR", b"192.0.2.7"),
                ("REMOTE_PORT", b"51234"),
                ("SCRIPT_NAME", b"/app"),
                ("HTTPS", b"on"),
            ],
            (addr("192.0.2.7:51234"), "/app".into(), true),
        ),
        (
            &[
                ("REMOTE_ADDR", b"::1"),
                ("SCRIPT_NAME", b""),
                ("REQUEST_SCHEME", b"https"),
            ],
            (addr("[::1]:0"), "".into(), true),
        ),
        (
            &[
                ("REMOTE_ADDR", b"unix:"),
                ("SCRIPT_NAME", b"/my app"),
                ("HTTPS", b"off"),
            ],
            (None, "/my%20app".into(), false),
        ),
        (&[], (None, "".into(), false)),
        // A client's headers do not set these.
        (
            &[
                ("HTTP_HTTPS", b"on"),
                ("HTTP_REMOTE_ADDR", b"10.9.9.9"),
                ("HTTP_SCRIPT_NAME", b"/x"),
            ],
            (None, "".into(), false),
        ),
    ];
    for (params, want) in cases {
        assert_eq!(&ext(params), want, "{params:?}");
    }
}

#[test]
fn raw_params_are_every_param_last_value_winning() {
    let params: &[(&str, &[u8])] = &[
        ("SCRIPT_NAME", b"/app"),
        ("HTTP_COOKIE", b"a=1"),
        ("X", b"\xff\x00"),
        ("SCRIPT_NAME", b""),
        ("HTTP_COOKIE", b"b=2"),
    ];
    let (all, script, x, missing) = mapped(params, RoutePath::BelowMount, |r| {
        let r = r.unwrap();
        let p = r.extensions().get::<RawParams>().unwrap().clone();
        let all: Vec<(Vec<u8>, Vec<u8>)> =
            p.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
        (
            all,
            p.get_str("SCRIPT_NAME").map(str::to_owned),
            p.get("X").map(<[u8]>::to_vec),
            p.get("NOPE").is_none(),
        )
    });
    let names: Vec<&[u8]> = all.iter().map(|(n, _)| &n[..]).collect();
    assert_eq!(names, [&b"X"[..], b"SCRIPT_NAME", b"HTTP_COOKIE"]);
    assert_eq!(all[2].1, b"b=2");
    assert_eq!(script.as_deref(), Some(""));
    assert_eq!(x.as_deref(), Some(&b"\xff\x00"[..]));
    assert!(missing);
}

#[test]
fn percent_encoding_by_part() {
    let enc = |src: &[u8], part| {
        let mut out = Vec::new();
        encode(&mut out, src, part);
        String::from_utf8(out).unwrap()
    };
    assert_eq!(enc(b"/a b/%41?#", Part::Path), "/a%20b/%2541%3F%23");
    assert_eq!(enc(b"/a b/%41?#", Part::RawPath), "/a%20b/%41%3F%23");
    assert_eq!(enc(b"x=/a b?%41#", Part::Query), "x=/a%20b?%41%23");
    assert_eq!(enc("é\x7f".as_bytes(), Part::Path), "%C3%A9%7F");
}

#[test]
fn normalised_paths() {
    let norm = |path: &str, decode| {
        let mut out = b"kept".to_vec();
        normalise(&mut out, path.as_bytes(), decode);
        String::from_utf8(out[4..].to_vec()).unwrap()
    };
    let cases = [
        ("/a%2Fb", Decode::All, "/a/b"),
        ("/a%2", Decode::All, "/a%2"),
        ("//a///b//", Decode::All, "/a/b/"),
        ("/a/./b/../c", Decode::All, "/a/c"),
        ("/a/b/..", Decode::All, "/a/"),
        ("/a/b/.", Decode::All, "/a/b/"),
        ("/../../x", Decode::All, "/x"),
        ("/..", Decode::All, "/"),
        ("/a/..%2f..%2Fb", Decode::All, "/b"),
        ("/a./.b/...", Decode::All, "/a./.b/..."),
        ("/%2e%2E/a", Decode::All, "/a"),
        ("/a%2Fb%41", Decode::Slash, "/a/b%41"),
        ("/a%2Fb", Decode::Nothing, "/a%2Fb"),
    ];
    for (path, decode, want) in cases {
        assert_eq!(norm(path, decode), want, "{path}");
    }
}

#[test]
fn same_resource_cases() {
    let same = |raw: &str, decoded: &str| {
        let mut s = Scratch::default();
        s.buf.extend_from_slice(raw.as_bytes());
        s.buf.extend_from_slice(decoded.as_bytes());
        let r = (0, raw.len());
        let d = (r.1, s.buf.len());
        same_resource(&mut s, r, d)
    };
    assert!(same("/a%2Fb", "/a/b"));
    assert!(same("/a%2", "/a%2"));
    assert!(same("//a/./b", "/a/b"));
    assert!(same("/a%2Fb", "/a%2Fb"));
    assert!(same("/a%252Fb", "/a%2Fb"));
    assert!(!same("/a/b", "/a/c"));
    assert!(!same("/a", "/ab"));
    assert!(!same("/a/", "/a"));
    assert!(same("/", ""));
    assert!(!same("/x", ""));
}
