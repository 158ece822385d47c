//! The CGI environment of a FastCGI request as an `http::Request`: the one
//! place where both adapters turn params into a method, a URI, a version,
//! headers and extensions.
//!
//! Every param is copied once, into one shared buffer (a `Bytes`) that the
//! [`RawParams`] extension owns; header values, the URI and the mount point
//! are slices of it, so they cost no further copy.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};

use ::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use ::http::{Method, Uri, Version};
use bytes::Bytes;

use super::ext::{Https, RawParams, RemoteAddr, ScriptName};
use super::stderr::Stderr;
use crate::Request;

/// Which path the application routes on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum RoutePath {
    /// The path below the mount point (`SCRIPT_NAME`), as WSGI does: the
    /// application's routes do not depend on where it is mounted.
    #[default]
    BelowMount,
    /// The whole path the client asked for, as Go's `net/http/fcgi` does:
    /// the application nests its routes under its mount point.
    Full,
}

impl RoutePath {
    /// `Full` when `full_path` is on, else `BelowMount`.
    pub(crate) fn full_if(full_path: bool) -> RoutePath {
        if full_path {
            RoutePath::Full
        } else {
            RoutePath::BelowMount
        }
    }
}

/// Why a request cannot become an `http::Request` (answered with 400).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    Method,
    Uri,
}

impl Refused {
    pub(crate) fn message(&self) -> &'static str {
        match self {
            Refused::Method => "invalid REQUEST_METHOD",
            Refused::Uri => "the request path and query do not make a URI",
        }
    }
}

thread_local! {
    /// The worker's scratch buffer: the params and derived values are laid
    /// out here, then copied into one `Bytes`.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

#[derive(Default)]
struct Scratch {
    buf: Vec<u8>,
    /// Headers from `HTTP_*` params: (name span, value span), the name
    /// still in its `HTTP_` form.
    headers: Vec<(Span, Span)>,
}

type Span = (usize, usize);

/// The method, URI, version, headers and extensions of `req`, with an
/// empty body.
pub(crate) fn request_parts(
    req: &Request<'_>,
    route: RoutePath,
    stderr: Stderr,
) -> Result<::http::Request<()>, Refused> {
    let method = match req.param_bytes("REQUEST_METHOD") {
        None => Method::GET,
        Some(m) => Method::from_bytes(m).map_err(|_| Refused::Method)?,
    };
    let (bytes, raw_len, headers, uri, mount) = SCRATCH.with(|s| {
        let s = &mut *s.borrow_mut();
        lay_out(req, route, s)
    });
    let uri = Uri::from_maybe_shared(bytes.slice(uri.0..uri.1)).map_err(|_| Refused::Uri)?;
    let params = RawParams::new(bytes, raw_len);
    let mut out = ::http::Request::new(());
    *out.method_mut() = method;
    *out.uri_mut() = uri;
    *out.version_mut() = version(req.param_bytes("SERVER_PROTOCOL"));
    *out.headers_mut() = header_map(&params, &headers);
    add_host(out.headers_mut(), &params);
    let ext = out.extensions_mut();
    if let Some(addr) = remote_addr(&params) {
        ext.insert(RemoteAddr(addr));
    }
    ext.insert(ScriptName(params.bytes().slice(mount.0..mount.1)));
    ext.insert(Https(is_https(&params)));
    ext.insert(stderr);
    ext.insert(params);
    Ok(out)
}

/// Lays out in the scratch buffer: every param (last value wins), then the
/// joined values of header names sent more than once, the URI and the
/// encoded mount point. Returns the frozen buffer, the length of its params
/// part, the header spans, the URI's span and the mount point's span.
fn lay_out(
    req: &Request<'_>,
    route: RoutePath,
    s: &mut Scratch,
) -> (Bytes, usize, Vec<(Span, Span)>, Span, Span) {
    s.buf.clear();
    s.headers.clear();
    for (name, value) in req.params() {
        RawParams::push(&mut s.buf, name, value);
    }
    let raw_len = s.buf.len();
    let mut at = 0;
    while let Some((name, value, next)) = RawParams::entry(&s.buf[..raw_len], at) {
        let n = &s.buf[name.0..name.1];
        if n.starts_with(b"HTTP_") && !matches!(n, b"HTTP_CONTENT_TYPE" | b"HTTP_CONTENT_LENGTH") {
            header_values(req, (name.0 + 5, name.1), value, s);
        }
        at = next;
    }
    let uri_at = s.buf.len();
    let (script, path_info) = (req.script_name().as_bytes(), req.path_info().as_bytes());
    let path = uri_path(req, route, script, path_info);
    match path {
        Some(raw) => encode(&mut s.buf, raw, Part::RawPath),
        None if route == RoutePath::Full => {
            encode(&mut s.buf, script, Part::Path);
            encode(&mut s.buf, path_info, Part::Path);
        }
        None => encode(&mut s.buf, path_info, Part::Path),
    }
    if s.buf.len() == uri_at {
        s.buf.push(b'/');
    }
    let query = req.param_bytes("QUERY_STRING").unwrap_or_else(|| {
        let uri = req.request_uri().as_bytes();
        uri.iter()
            .position(|&b| b == b'?')
            .map_or(&[][..], |q| &uri[q + 1..])
    });
    if !query.is_empty() {
        s.buf.push(b'?');
        encode(&mut s.buf, query, Part::Query);
    }
    let uri = (uri_at, s.buf.len());
    encode(&mut s.buf, script, Part::Path);
    let mount = (uri.1, s.buf.len());
    let bytes = Bytes::copy_from_slice(&s.buf);
    (bytes, raw_len, std::mem::take(&mut s.headers), uri, mount)
}

/// Records the header values of the `HTTP_*` param whose name (without
/// `HTTP_`) is at `name`: its one value where it was sent once; where it
/// was sent more than once, every value (cookies joined with `"; "`, as
/// one `Cookie` header must be).
fn header_values(req: &Request<'_>, name: Span, value: Span, s: &mut Scratch) {
    let Ok(key) = std::str::from_utf8(&s.buf[name.0 - 5..name.1]) else {
        return;
    };
    if req.param_values(key).nth(1).is_none() {
        s.headers.push((name, value));
        return;
    }
    // A name sent twice: rare, so an allocation here is no matter.
    let key = key.to_owned();
    let values: Vec<&[u8]> = req.param_values(&key).collect();
    if key == "HTTP_COOKIE" {
        let at = s.buf.len();
        s.buf.extend_from_slice(&values.join(&b"; "[..]));
        s.headers.push((name, (at, s.buf.len())));
        return;
    }
    for v in values {
        let at = s.buf.len();
        s.buf.extend_from_slice(v);
        s.headers.push((name, (at, s.buf.len())));
    }
}

/// The raw (client-encoded) path to use, when `REQUEST_URI` gives one:
/// all of it, or, below the mount, what follows `SCRIPT_NAME` in it.
/// `None`: build the path from `SCRIPT_NAME` and `PATH_INFO` instead.
fn uri_path<'a>(
    req: &Request<'a>,
    route: RoutePath,
    script: &[u8],
    path_info: &[u8],
) -> Option<&'a [u8]> {
    let uri = req
        .param_bytes("REQUEST_URI")
        .filter(|u| u.starts_with(b"/"))?;
    let path = &uri[..uri.iter().position(|&b| b == b'?').unwrap_or(uri.len())];
    match route {
        RoutePath::Full => Some(path),
        RoutePath::BelowMount => {
            let rest = path.strip_prefix(script)?;
            // The rest must be a path of its own, and the one the web server
            // routed on (REQUEST_URI may predate a rewrite).
            let fits = rest.is_empty() || rest.starts_with(b"/");
            (fits && same_path(rest, path_info)).then_some(rest)
        }
    }
}

/// Whether the raw path `raw` decodes to `decoded` (or `decoded` is
/// empty, as some web servers send it at the mount point itself).
fn same_path(raw: &[u8], decoded: &[u8]) -> bool {
    if decoded.is_empty() {
        return raw.is_empty() || raw == b"/";
    }
    let mut want = decoded.iter();
    let mut i = 0;
    while i < raw.len() {
        let escaped = match raw.get(i..i + 3) {
            Some(&[b'%', h, l]) => hex(h).zip(hex(l)).map(|(h, l)| h * 16 + l),
            _ => None,
        };
        let b = match escaped {
            Some(b) => {
                i += 2;
                b
            }
            None => raw[i],
        };
        i += 1;
        if want.next() != Some(&b) {
            return false;
        }
    }
    want.next().is_none()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The parts of a URI that [`encode`] writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    /// A decoded path (`SCRIPT_NAME`, `PATH_INFO`): `%` is encoded too.
    Path,
    /// A path as the client sent it (`REQUEST_URI`): its `%` escapes stay.
    RawPath,
    /// A query string as the client sent it.
    Query,
}

/// Appends `src` to `out`, percent-encoding every byte that may not stand
/// as it is in that part of a URI.
fn encode(out: &mut Vec<u8>, src: &[u8], part: Part) {
    for &b in src {
        let plain = b.is_ascii_alphanumeric()
            || b"-._~!$&'()*+,;=:@/".contains(&b)
            || (b == b'%' && part != Part::Path)
            || (b == b'?' && part == Part::Query);
        if plain {
            out.push(b);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
    }
}

fn version(protocol: Option<&[u8]>) -> Version {
    match protocol {
        Some(b"HTTP/1.0") => Version::HTTP_10,
        Some(b"HTTP/0.9") => Version::HTTP_09,
        Some(b"HTTP/2" | b"HTTP/2.0") => Version::HTTP_2,
        Some(b"HTTP/3" | b"HTTP/3.0") => Version::HTTP_3,
        _ => Version::HTTP_11,
    }
}

/// The headers: every `HTTP_*` param (`HTTP_USER_AGENT` as `user-agent`),
/// then `CONTENT_TYPE` and `CONTENT_LENGTH` when not empty. A name or value
/// that HTTP does not allow is left out.
fn header_map(params: &RawParams, spans: &[(Span, Span)]) -> HeaderMap {
    let bytes = params.bytes();
    let mut map = HeaderMap::with_capacity(spans.len() + 3);
    for &((n0, n1), (v0, v1)) in spans {
        let (Some(name), Ok(value)) = (
            header_name(&bytes[n0..n1]),
            HeaderValue::from_maybe_shared(bytes.slice(v0..v1)),
        ) else {
            continue;
        };
        map.append(name, value);
    }
    for (param, name) in [
        ("CONTENT_TYPE", header::CONTENT_TYPE),
        ("CONTENT_LENGTH", header::CONTENT_LENGTH),
    ] {
        let Some(span) = params.value_span(param).filter(|s| s.1 > s.0) else {
            continue;
        };
        if let Ok(v) = HeaderValue::from_maybe_shared(bytes.slice(span.0..span.1)) {
            map.insert(name, v);
        }
    }
    map
}

/// `USER_AGENT` as the header name `user-agent`.
fn header_name(cgi: &[u8]) -> Option<HeaderName> {
    let mut buf = [0u8; 64];
    let mut long = Vec::new();
    let name: &mut [u8] = if cgi.len() <= buf.len() {
        &mut buf[..cgi.len()]
    } else {
        long.resize(cgi.len(), 0);
        &mut long
    };
    for (dst, &src) in name.iter_mut().zip(cgi) {
        *dst = if src == b'_' {
            b'-'
        } else {
            src.to_ascii_lowercase()
        };
    }
    HeaderName::from_bytes(name).ok()
}

/// `Host` from `HTTP_HOST` (already among the headers), else from
/// `SERVER_NAME` and `SERVER_PORT`.
fn add_host(map: &mut HeaderMap, params: &RawParams) {
    if map.contains_key(header::HOST) {
        return;
    }
    let Some(name) = params.get("SERVER_NAME").filter(|n| !n.is_empty()) else {
        return;
    };
    let mut host = name.to_vec();
    if let Some(port) = params.get("SERVER_PORT").filter(|p| !p.is_empty()) {
        host.push(b':');
        host.extend_from_slice(port);
    }
    if let Ok(v) = HeaderValue::from_bytes(&host) {
        map.insert(header::HOST, v);
    }
}

fn remote_addr(params: &RawParams) -> Option<SocketAddr> {
    let ip: IpAddr = params.get_str("REMOTE_ADDR")?.parse().ok()?;
    let port = params
        .get_str("REMOTE_PORT")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    Some(SocketAddr::new(ip, port))
}

/// `HTTPS` set to `on` (or `1`), or `REQUEST_SCHEME` `https`.
fn is_https(params: &RawParams) -> bool {
    let on = |v: &[u8]| v.eq_ignore_ascii_case(b"on") || v == b"1";
    params.get("HTTPS").is_some_and(on)
        || params
            .get("REQUEST_SCHEME")
            .is_some_and(|s| s.eq_ignore_ascii_case(b"https"))
}

#[cfg(test)]
mod tests;
