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
    /// Normalised paths, compared by [`same_resource`].
    canon: Vec<u8>,
}

type Span = (usize, usize);

/// Where the params that the mapping reads are in the scratch buffer: the
/// last value of each name, noted in the one pass over the params.
#[derive(Clone, Copy, Default)]
struct Known {
    method: Option<Span>,
    protocol: Option<Span>,
    query: Option<Span>,
    uri: Option<Span>,
    script: Option<Span>,
    path: Option<Span>,
    content_type: Option<Span>,
    content_length: Option<Span>,
    server_name: Option<Span>,
    server_port: Option<Span>,
    remote_addr: Option<Span>,
    remote_port: Option<Span>,
    https: Option<Span>,
    scheme: Option<Span>,
}

impl Known {
    /// Notes the param `name` whose value is at `value`, if it is one of
    /// those the mapping reads.
    fn note(&mut self, name: &[u8], value: Span) {
        let slot = match name {
            b"REQUEST_METHOD" => &mut self.method,
            b"SERVER_PROTOCOL" => &mut self.protocol,
            b"QUERY_STRING" => &mut self.query,
            b"REQUEST_URI" => &mut self.uri,
            b"SCRIPT_NAME" => &mut self.script,
            b"PATH_INFO" => &mut self.path,
            b"CONTENT_TYPE" => &mut self.content_type,
            b"CONTENT_LENGTH" => &mut self.content_length,
            b"SERVER_NAME" => &mut self.server_name,
            b"SERVER_PORT" => &mut self.server_port,
            b"REMOTE_ADDR" => &mut self.remote_addr,
            b"REMOTE_PORT" => &mut self.remote_port,
            b"HTTPS" => &mut self.https,
            b"REQUEST_SCHEME" => &mut self.scheme,
            _ => return,
        };
        *slot = Some(value);
    }
}

/// What [`lay_out`] made: the frozen buffer and where things are in it.
struct Laid {
    bytes: Bytes,
    /// The end of the params part.
    raw_len: usize,
    uri: Span,
    mount: Span,
    known: Known,
}

impl Laid {
    fn get(&self, span: Option<Span>) -> Option<&[u8]> {
        span.map(|(a, b)| &self.bytes[a..b])
    }
}

/// The method, URI, version, headers and extensions of `req`, with an
/// empty body.
pub(crate) fn request_parts(
    req: &Request<'_>,
    route: RoutePath,
    stderr: Stderr,
) -> Result<::http::Request<()>, Refused> {
    let (laid, headers) = SCRATCH.with(|s| {
        let s = &mut *s.borrow_mut();
        let laid = lay_out(req, route, s);
        let headers = header_map(&laid, &s.headers);
        (laid, headers)
    });
    let method = match laid.get(laid.known.method) {
        None => Method::GET,
        Some(m) => Method::from_bytes(m).map_err(|_| Refused::Method)?,
    };
    let uri = laid.bytes.slice(laid.uri.0..laid.uri.1);
    let uri = Uri::from_maybe_shared(uri).map_err(|_| Refused::Uri)?;
    let mut out = ::http::Request::new(());
    *out.method_mut() = method;
    *out.uri_mut() = uri;
    *out.version_mut() = version(laid.get(laid.known.protocol));
    *out.headers_mut() = headers;
    let ext = out.extensions_mut();
    if let Some(addr) = remote_addr(&laid) {
        ext.insert(RemoteAddr(addr));
    }
    ext.insert(ScriptName(laid.bytes.slice(laid.mount.0..laid.mount.1)));
    ext.insert(Https(is_https(&laid)));
    ext.insert(stderr);
    ext.insert(RawParams::new(laid.bytes, laid.raw_len));
    Ok(out)
}

/// Lays out in the scratch buffer, in one pass over the params: every
/// param as it came, then the joined value of `Cookie` headers sent more
/// than once, the URI and the encoded mount point.
fn lay_out(req: &Request<'_>, route: RoutePath, s: &mut Scratch) -> Laid {
    s.buf.clear();
    s.headers.clear();
    let mut known = Known::default();
    for (name, value) in req.all_params() {
        let at = s.buf.len() + 8;
        RawParams::push(&mut s.buf, name, value);
        let value_span = (at + name.len(), s.buf.len());
        if name.starts_with(b"HTTP_") {
            if !matches!(name, b"HTTP_CONTENT_TYPE" | b"HTTP_CONTENT_LENGTH") {
                s.headers.push(((at + 5, at + name.len()), value_span));
            }
        } else {
            known.note(name, value_span);
        }
    }
    let raw_len = s.buf.len();
    join_cookies(s);
    let none = (0, 0);
    let (script, path_info) = (known.script.unwrap_or(none), known.path.unwrap_or(none));
    let uri = known.uri.unwrap_or(none);
    let raw_path = uri_path(s, uri, route, script, path_info);
    // QUERY_STRING, or else the query of REQUEST_URI.
    let query = known.query.unwrap_or_else(|| {
        let q = s.buf[uri.0..uri.1].iter().position(|&b| b == b'?');
        q.map_or(none, |q| (uri.0 + q + 1, uri.1))
    });
    let uri_at = s.buf.len();
    write_path(s, uri, raw_path, route, (script, path_info));
    if s.buf.len() == uri_at {
        s.buf.push(b'/');
    }
    if query.1 > query.0 {
        s.buf.push(b'?');
        encode_within(&mut s.buf, query, Part::Query);
    }
    let uri = (uri_at, s.buf.len());
    encode_within(&mut s.buf, script, Part::Path);
    let mount = (uri.1, s.buf.len());
    Laid {
        bytes: Bytes::copy_from_slice(&s.buf),
        raw_len,
        uri,
        mount,
        known,
    }
}

/// Appends the URI's path: the raw one when there is one, else from
/// `SCRIPT_NAME` (routing on the full path) and `PATH_INFO`, encoded; in
/// `PATH_INFO`, `%2F` is an escape the web server kept (Apache's
/// `AllowEncodedSlashes NoDecode`) when the client's URI (at `uri`) has
/// it too.
fn write_path(
    s: &mut Scratch,
    uri: Span,
    raw: Option<Span>,
    route: RoutePath,
    (script, path_info): (Span, Span),
) {
    let info_part = if has_encoded_slash(&s.buf[uri.0..uri.1]) {
        Part::PathKeepingSlashes
    } else {
        Part::Path
    };
    match raw {
        Some(raw) => encode_within(&mut s.buf, raw, Part::RawPath),
        None if route == RoutePath::Full => {
            encode_within(&mut s.buf, script, Part::Path);
            encode_within(&mut s.buf, path_info, info_part);
        }
        None => encode_within(&mut s.buf, path_info, info_part),
    }
}

/// `Cookie` headers sent more than once (nginx passes two `Cookie` request
/// headers as two `HTTP_COOKIE` params) become one, their values joined
/// with `"; "`, as HTTP/1.1 wants one `Cookie` header. Other names sent
/// more than once keep every value, as several values of the header.
fn join_cookies(s: &mut Scratch) {
    let is_cookie = |buf: &[u8], (a, b): Span| &buf[a..b] == b"COOKIE";
    let count = s.headers.iter().filter(|h| is_cookie(&s.buf, h.0)).count();
    if count < 2 {
        return;
    }
    let at = s.buf.len();
    let mut first = None;
    for i in 0..s.headers.len() {
        let (name, (a, b)) = s.headers[i];
        if !is_cookie(&s.buf, name) {
            continue;
        }
        if first.is_some() {
            s.buf.extend_from_slice(b"; ");
        }
        first.get_or_insert(i);
        s.buf.extend_from_within(a..b);
    }
    let first = first.unwrap_or(0);
    s.headers[first].1 = (at, s.buf.len());
    let buf = &s.buf;
    let mut i = 0;
    s.headers.retain(|h| {
        i += 1;
        i - 1 == first || !is_cookie(buf, h.0)
    });
}

/// Where in `buf` the raw (client-encoded) path to use is, when
/// `REQUEST_URI` (at `uri`) gives one: all of its path, or, below the mount,
/// what follows `SCRIPT_NAME` in it. `None`: build the path from
/// `SCRIPT_NAME` and `PATH_INFO` instead.
fn uri_path(
    s: &mut Scratch,
    uri: Span,
    route: RoutePath,
    script: Span,
    path_info: Span,
) -> Option<Span> {
    let buf = &s.buf;
    let full = &buf[uri.0..uri.1];
    if !full.starts_with(b"/") {
        return None;
    }
    let path = (
        uri.0,
        uri.0 + full.iter().position(|&b| b == b'?').unwrap_or(full.len()),
    );
    if route == RoutePath::Full {
        return Some(path);
    }
    let rest = buf[path.0..path.1].strip_prefix(&buf[script.0..script.1])?;
    // The rest must be a path of its own, and the one the web server
    // routed on (REQUEST_URI may predate a rewrite).
    let fits = rest.is_empty() || rest.starts_with(b"/");
    let rest_span = (path.1 - rest.len(), path.1);
    (fits && same_resource(s, rest_span, path_info)).then_some(rest_span)
}

/// Whether the raw path at `raw` names the resource that the decoded path
/// at `decoded` (`PATH_INFO`) does once both are normalised as web
/// servers normalise (percent-decoded, slashes merged, dot segments
/// resolved): nginx and lighttpd pass such a normalised `PATH_INFO` while
/// an HTTP proxy passes the client's path as it is. `%2F` in `decoded`
/// also counts as a slash (Apache's `AllowEncodedSlashes NoDecode` leaves
/// it encoded). An empty `decoded` (some web servers send it at the mount
/// point itself) matches an empty or `/` raw path.
fn same_resource(s: &mut Scratch, raw: Span, decoded: Span) -> bool {
    let (buf, canon) = (&s.buf, &mut s.canon);
    let (raw, decoded) = (&buf[raw.0..raw.1], &buf[decoded.0..decoded.1]);
    if decoded.is_empty() {
        return raw.is_empty() || raw == b"/";
    }
    canon.clear();
    normalise(canon, raw, Decode::All);
    let mid = canon.len();
    normalise(canon, decoded, Decode::Slash);
    if canon[..mid] == canon[mid..] {
        return true;
    }
    canon.truncate(mid);
    normalise(canon, decoded, Decode::Nothing);
    canon[..mid] == canon[mid..]
}

/// Which escapes [`normalise`] decodes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Decode {
    All,
    /// `%2F` and `%2f` only.
    Slash,
    Nothing,
}

/// Appends `path` to `out` percent-decoded (as `decode` says), with its
/// slashes merged and its `.` and `..` segments resolved (never above the
/// root), as RFC 3986 5.2.4 and the web servers do.
fn normalise(out: &mut Vec<u8>, path: &[u8], decode: Decode) {
    let start = out.len();
    let mut i = 0;
    while i < path.len() {
        let escaped = match path.get(i..i + 3) {
            Some(&[b'%', h, l]) if decode != Decode::Nothing => {
                hex(h).zip(hex(l)).map(|(h, l)| h * 16 + l)
            }
            _ => None,
        };
        let b = match escaped {
            Some(b) if decode == Decode::All || b == b'/' => {
                i += 2;
                b
            }
            _ => path[i],
        };
        i += 1;
        if b == b'/' && out.len() > start && out[out.len() - 1] == b'/' {
            continue;
        }
        out.push(b);
        resolve_dots(out, start, i == path.len());
    }
}

/// Resolves a `.` or `..` segment just completed at the end of `out` (the
/// normalised path from `start`): one followed by a slash, or at the end.
fn resolve_dots(out: &mut Vec<u8>, start: usize, at_end: bool) {
    let seg = &out[start..];
    let (dot, dotdot): (&[u8], &[u8]) = if at_end {
        (b"/.", b"/..")
    } else {
        (b"/./", b"/../")
    };
    if seg.ends_with(dot) {
        out.truncate(out.len() - dot.len() + 1);
    } else if seg.ends_with(dotdot) {
        out.truncate(out.len() - dotdot.len());
        let parent = out[start..]
            .iter()
            .rposition(|&b| b == b'/')
            .map_or(start, |p| start + p);
        out.truncate(parent);
        out.push(b'/');
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Whether `path` holds an encoded slash (`%2F`, either case).
fn has_encoded_slash(path: &[u8]) -> bool {
    path.windows(3).any(|w| w.eq_ignore_ascii_case(b"%2F"))
}

/// The parts of a URI that [`encode`] writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    /// A decoded path (`SCRIPT_NAME`, `PATH_INFO`): `%` is encoded too.
    Path,
    /// A decoded path in which `%2F` stays an encoded slash.
    PathKeepingSlashes,
    /// A path as the client sent it (`REQUEST_URI`): its `%` escapes stay.
    RawPath,
    /// A query string as the client sent it.
    Query,
}

/// Appends `src` to `out`, percent-encoding every byte that may not stand
/// as it is in that part of a URI.
#[cfg(test)]
fn encode(out: &mut Vec<u8>, src: &[u8], part: Part) {
    for &b in src {
        encode_byte(out, b, part);
    }
}

/// Appends the bytes at `src` in `buf` to `buf`, encoded as [`encode`] does.
fn encode_within(buf: &mut Vec<u8>, src: Span, part: Part) {
    for i in src.0..src.1 {
        let b = buf[i];
        let slash = part == Part::PathKeepingSlashes
            && b == b'%'
            && i + 3 <= src.1
            && buf[i..i + 3].eq_ignore_ascii_case(b"%2F");
        if slash {
            buf.push(b'%');
        } else {
            encode_byte(buf, b, part);
        }
    }
}

fn encode_byte(out: &mut Vec<u8>, b: u8, part: Part) {
    let plain = b.is_ascii_alphanumeric()
        || b"-._~!$&'()*+,;=:@/".contains(&b)
        || (b == b'%' && part != Part::Path && part != Part::PathKeepingSlashes)
        || (b == b'?' && part == Part::Query);
    if plain {
        out.push(b);
    } else {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
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
/// then `CONTENT_TYPE` and `CONTENT_LENGTH` when not empty, and `Host` from
/// `SERVER_NAME` and `SERVER_PORT` when the client sent none. A name or
/// value that HTTP does not allow is left out.
fn header_map(laid: &Laid, spans: &[(Span, Span)]) -> HeaderMap {
    let bytes = &laid.bytes;
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
    let k = laid.known;
    for (span, name) in [
        (k.content_type, header::CONTENT_TYPE),
        (k.content_length, header::CONTENT_LENGTH),
    ] {
        let Some((a, b)) = span.filter(|s| s.1 > s.0) else {
            continue;
        };
        if let Ok(v) = HeaderValue::from_maybe_shared(bytes.slice(a..b)) {
            map.insert(name, v);
        }
    }
    if !map.contains_key(header::HOST) {
        if let Some(host) = host(laid) {
            map.insert(header::HOST, host);
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

/// `SERVER_NAME:SERVER_PORT` (or the name alone).
fn host(laid: &Laid) -> Option<HeaderValue> {
    let name = laid.get(laid.known.server_name).filter(|n| !n.is_empty())?;
    let mut host = name.to_vec();
    if let Some(port) = laid.get(laid.known.server_port).filter(|p| !p.is_empty()) {
        host.push(b':');
        host.extend_from_slice(port);
    }
    HeaderValue::from_bytes(&host).ok()
}

fn remote_addr(laid: &Laid) -> Option<SocketAddr> {
    let text = |span| laid.get(span).and_then(|v| std::str::from_utf8(v).ok());
    let ip: IpAddr = text(laid.known.remote_addr)?.parse().ok()?;
    let port = text(laid.known.remote_port)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    Some(SocketAddr::new(ip, port))
}

/// `HTTPS` set to `on` (or `1`), or `REQUEST_SCHEME` `https`.
fn is_https(laid: &Laid) -> bool {
    let on = |v: &[u8]| v.eq_ignore_ascii_case(b"on") || v == b"1";
    laid.get(laid.known.https).is_some_and(on)
        || laid
            .get(laid.known.scheme)
            .is_some_and(|s| s.eq_ignore_ascii_case(b"https"))
}

#[cfg(test)]
mod tests;
