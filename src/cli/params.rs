//! The params of a request: those nginx's `fastcgi_params` sends, with
//! values a web server would give them, then the command line's headers
//! and params on top. Nothing comes from the caller's environment.

use super::exit::Failure;

/// A param as it goes on the wire.
pub(crate) type Param = (String, Vec<u8>);

/// What a request asks for, before it becomes params.
#[derive(Debug, Default)]
pub(crate) struct Target<'a> {
    pub(crate) method: &'a str,
    /// A path with an optional query, or an `http://` or `https://` URL.
    pub(crate) uri: &'a str,
    pub(crate) script_name: Option<&'a str>,
    /// `-H` headers, in order.
    pub(crate) headers: &'a [(String, String)],
    /// `-p` params; a `None` value removes the param.
    pub(crate) params: &'a [(String, Option<String>)],
    /// The body's length, when there is a body.
    pub(crate) body_len: Option<u64>,
}

/// The URI, split as a web server splits it.
#[derive(Debug, PartialEq, Eq)]
struct Uri<'a> {
    https: bool,
    /// `HOST[:PORT]` of a URL.
    authority: Option<&'a str>,
    /// The path and query as sent (REQUEST_URI).
    request_uri: &'a str,
    path: &'a str,
    query: &'a str,
}

fn split_uri(uri: &str) -> Result<Uri<'_>, Failure> {
    let (https, rest) = match (uri.strip_prefix("http://"), uri.strip_prefix("https://")) {
        (Some(r), _) => (false, Some(r)),
        (_, Some(r)) => (true, Some(r)),
        _ => (false, None),
    };
    let (authority, request_uri) = match rest {
        Some(r) => {
            let at = r.find(['/', '?']).unwrap_or(r.len());
            (Some(&r[..at]), &r[at..])
        }
        None => (None, uri),
    };
    let request_uri = request_uri.split('#').next().unwrap_or_default();
    if authority.is_none() && !request_uri.starts_with('/') {
        return Err(Failure::usage(format!(
            "the URI '{uri}' is neither a path starting with / nor an http:// URL"
        )));
    }
    let (path, query) = request_uri.split_once('?').unwrap_or((request_uri, ""));
    let path = if path.is_empty() { "/" } else { path };
    Ok(Uri {
        https,
        authority,
        request_uri: if request_uri.is_empty() {
            "/"
        } else {
            request_uri
        },
        path,
        query,
    })
}

/// Decodes `%XX` escapes, as nginx does for `$uri` (and so for
/// DOCUMENT_URI, SCRIPT_NAME and PATH_INFO).
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(byte) if b[i] == b'%' => {
                out.push(byte);
                i += 3;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    out
}

/// SCRIPT_NAME and PATH_INFO: the mount point and the rest of the path.
fn split_path(path: &[u8], script_name: Option<&str>) -> Result<(Vec<u8>, Vec<u8>), Failure> {
    let prefix = script_name.unwrap_or("").trim_end_matches('/').as_bytes();
    match path.strip_prefix(prefix) {
        Some(rest) => Ok((prefix.to_vec(), rest.to_vec())),
        None => Err(Failure::usage(format!(
            "the path {} does not start with the --script-name {}",
            String::from_utf8_lossy(path),
            String::from_utf8_lossy(prefix)
        ))),
    }
}

/// Host, name and port of the server, from a URL or the defaults.
fn server(uri: &Uri<'_>) -> (String, String, String) {
    let default_port = if uri.https { "443" } else { "80" };
    let Some(authority) = uri.authority.filter(|a| !a.is_empty()) else {
        return ("localhost".into(), "localhost".into(), default_port.into());
    };
    let (name, port) = match authority.rsplit_once(':') {
        Some((n, p)) if !p.contains(']') => (n, p),
        _ => (authority, default_port),
    };
    (authority.into(), name.into(), port.into())
}

/// The params for `t`, in the order nginx sends them.
pub(crate) fn build(t: &Target<'_>) -> Result<Vec<Param>, Failure> {
    let uri = split_uri(t.uri)?;
    let decoded = percent_decode(uri.path);
    let (script_name, path_info) = split_path(&decoded, t.script_name)?;
    let mut p = defaults(t, &uri, [&decoded, &script_name, &path_info]);
    add_headers(&mut p, t.headers);
    add_params(&mut p, t.params);
    Ok(p)
}

/// nginx's `fastcgi_params` with the values nginx would give them, then
/// PATH_INFO and the headers a client sends. `paths` holds the decoded
/// path, SCRIPT_NAME and PATH_INFO.
fn defaults(t: &Target<'_>, uri: &Uri<'_>, paths: [&[u8]; 3]) -> Vec<Param> {
    let [document_uri, script_name, path_info] = paths;
    let (host, name, port) = server(uri);
    let len = t.body_len.map(|n| n.to_string()).unwrap_or_default();
    let content_type = match t.body_len {
        Some(_) => "application/x-www-form-urlencoded",
        None => "",
    };
    let software = concat!("fcgi/", env!("CARGO_PKG_VERSION"));
    let (scheme, https) = if uri.https {
        ("https", "on")
    } else {
        ("http", "")
    };
    [
        ("QUERY_STRING", uri.query.as_bytes()),
        ("REQUEST_METHOD", t.method.as_bytes()),
        ("CONTENT_TYPE", content_type.as_bytes()),
        ("CONTENT_LENGTH", len.as_bytes()),
        ("SCRIPT_NAME", script_name),
        ("REQUEST_URI", uri.request_uri.as_bytes()),
        ("DOCUMENT_URI", document_uri),
        ("DOCUMENT_ROOT", b"/"),
        ("SERVER_PROTOCOL", b"HTTP/1.1"),
        ("REQUEST_SCHEME", scheme.as_bytes()),
        ("HTTPS", https.as_bytes()),
        ("GATEWAY_INTERFACE", b"CGI/1.1"),
        ("SERVER_SOFTWARE", software.as_bytes()),
        ("REMOTE_ADDR", b"127.0.0.1"),
        ("REMOTE_PORT", b"0"),
        ("REMOTE_USER", b""),
        ("SERVER_ADDR", b"127.0.0.1"),
        ("SERVER_PORT", port.as_bytes()),
        ("SERVER_NAME", name.as_bytes()),
        ("REDIRECT_STATUS", b"200"),
        ("PATH_INFO", path_info),
        ("HTTP_HOST", host.as_bytes()),
        ("HTTP_USER_AGENT", software.as_bytes()),
        ("HTTP_ACCEPT", b"*/*"),
        ("HTTP_CONTENT_TYPE", content_type.as_bytes()),
        ("HTTP_CONTENT_LENGTH", len.as_bytes()),
    ]
    .into_iter()
    .filter(|(k, v)| !v.is_empty() || !omitted_when_empty(k))
    .map(|(k, v)| (k.to_owned(), v.to_vec()))
    .collect()
}

/// Params nginx leaves out when they would be empty: `HTTPS`
/// (`if_not_empty`), and the request headers a request without a body
/// does not have.
fn omitted_when_empty(name: &str) -> bool {
    matches!(name, "HTTPS" | "HTTP_CONTENT_TYPE" | "HTTP_CONTENT_LENGTH")
}

/// The param name for a header: `HTTP_` and the name in capitals, `-` as `_`.
fn header_param(name: &str) -> String {
    let upper = name.to_ascii_uppercase().replace('-', "_");
    format!("HTTP_{upper}")
}

/// Adds the `-H` headers: each replaces a default of its name, an empty
/// one removes it, and repeated ones all go, as nginx sends them.
fn add_headers(p: &mut Vec<Param>, headers: &[(String, String)]) {
    for (name, _) in headers {
        let param = header_param(name);
        p.retain(|(k, _)| *k != param);
        if let Some(cgi) = param
            .strip_prefix("HTTP_")
            .filter(|c| c.starts_with("CONTENT_"))
        {
            set(p, cgi, None);
        }
    }
    for (name, value) in headers.iter().filter(|(_, v)| !v.is_empty()) {
        let param = header_param(name);
        if let Some(cgi) = param
            .strip_prefix("HTTP_")
            .filter(|c| c.starts_with("CONTENT_"))
        {
            set(p, cgi, Some(value.as_bytes()));
        }
        p.push((param, value.as_bytes().to_vec()));
    }
}

fn add_params(p: &mut Vec<Param>, params: &[(String, Option<String>)]) {
    for (name, value) in params {
        set(p, name, value.as_deref().map(str::as_bytes));
    }
}

/// Sets `name` to `value` where it stands (or at the end), once; `None`
/// removes it. nginx's CONTENT_TYPE and CONTENT_LENGTH stay in place,
/// empty, when removed.
fn set(p: &mut Vec<Param>, name: &str, value: Option<&[u8]>) {
    let at = p.iter().position(|(k, _)| k == name);
    p.retain(|(k, _)| k != name);
    let value = match value {
        Some(v) => v.to_vec(),
        None if matches!(name, "CONTENT_TYPE" | "CONTENT_LENGTH") => Vec::new(),
        None => return,
    };
    let at = at.unwrap_or(p.len()).min(p.len());
    p.insert(at, (name.to_owned(), value));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(p: &'a [Param], name: &str) -> Option<&'a str> {
        let mut found = p.iter().filter(|(k, _)| k == name);
        let v = found.next().map(|(_, v)| std::str::from_utf8(v).unwrap());
        assert!(found.next().is_none(), "{name} twice");
        v
    }

    #[test]
    fn uri_cases() {
        let cases: [(&str, Option<&str>, [&str; 5]); 5] = [
            ("/", None, ["/", "", "", "/", "/"]),
            (
                "/app/a%20b/c?x=1&y",
                Some("/app"),
                [
                    "/app/a b/c",
                    "x=1&y",
                    "/app",
                    "/a b/c",
                    "/app/a%20b/c?x=1&y",
                ],
            ),
            ("/app", Some("/app/"), ["/app", "", "/app", "", "/app"]),
            (
                "http://example.com:8080/p?q#frag",
                None,
                ["/p", "q", "", "/p", "/p?q"],
            ),
            ("https://example.com", None, ["/", "", "", "/", "/"]),
        ];
        for (uri, sn, [doc, query, script, info, request]) in cases {
            let t = Target {
                method: "GET",
                uri,
                script_name: sn,
                ..Target::default()
            };
            let p = build(&t).unwrap();
            let got = [
                "DOCUMENT_URI",
                "QUERY_STRING",
                "SCRIPT_NAME",
                "PATH_INFO",
                "REQUEST_URI",
            ]
            .map(|n| get(&p, n).unwrap());
            assert_eq!(got, [doc, query, script, info, request], "{uri}");
        }
    }

    #[test]
    fn server_comes_from_a_url() {
        let t = Target {
            method: "GET",
            uri: "https://example.com:8443/",
            ..Target::default()
        };
        let p = build(&t).unwrap();
        let got = [
            "HTTP_HOST",
            "SERVER_NAME",
            "SERVER_PORT",
            "REQUEST_SCHEME",
            "HTTPS",
        ]
        .map(|n| get(&p, n).unwrap());
        assert_eq!(
            got,
            ["example.com:8443", "example.com", "8443", "https", "on"]
        );
        let p = build(&Target {
            method: "GET",
            uri: "/",
            ..Target::default()
        })
        .unwrap();
        assert_eq!(get(&p, "HTTPS"), None);
        assert_eq!(get(&p, "SERVER_PORT"), Some("80"));
    }

    #[test]
    fn headers_and_params_go_on_top() {
        let headers = [
            ("Content-Type".to_owned(), "text/plain".to_owned()),
            ("X-Thing".to_owned(), "1".to_owned()),
            ("X-Thing".to_owned(), "2".to_owned()),
            ("User-Agent".to_owned(), String::new()),
            ("Host".to_owned(), "h.example".to_owned()),
        ];
        let params = [
            ("DOCUMENT_ROOT".to_owned(), Some("/srv".to_owned())),
            ("REDIRECT_STATUS".to_owned(), None),
            ("NEW".to_owned(), Some(String::new())),
        ];
        let t = Target {
            method: "POST",
            uri: "/",
            headers: &headers,
            params: &params,
            body_len: Some(5),
            ..Target::default()
        };
        let p = build(&t).unwrap();
        assert_eq!(get(&p, "CONTENT_TYPE"), Some("text/plain"));
        assert_eq!(get(&p, "HTTP_CONTENT_TYPE"), Some("text/plain"));
        assert_eq!(get(&p, "CONTENT_LENGTH"), Some("5"));
        assert_eq!(get(&p, "HTTP_USER_AGENT"), None);
        assert_eq!(get(&p, "HTTP_HOST"), Some("h.example"));
        assert_eq!(get(&p, "DOCUMENT_ROOT"), Some("/srv"));
        assert_eq!(get(&p, "REDIRECT_STATUS"), None);
        assert_eq!(get(&p, "NEW"), Some(""));
        let things: Vec<_> = p.iter().filter(|(k, _)| k == "HTTP_X_THING").collect();
        assert_eq!(things.len(), 2);
        assert_eq!(p[0].0, "QUERY_STRING");
        assert_eq!(p[2].0, "CONTENT_TYPE");
    }

    #[test]
    fn a_path_outside_the_mount_point_is_refused() {
        let t = Target {
            method: "GET",
            uri: "/other",
            script_name: Some("/app"),
            ..Target::default()
        };
        assert!(
            build(&t)
                .unwrap_err()
                .sentence
                .contains("does not start with")
        );
        let t = Target {
            method: "GET",
            uri: "relative",
            ..Target::default()
        };
        assert!(build(&t).is_err());
    }
}
