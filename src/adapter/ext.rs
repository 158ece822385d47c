//! The request extensions both adapters set: facts that come from the web
//! server, not from the client, so they are never put in headers that a
//! client could forge.

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;

/// Every FastCGI param of the request (the CGI environment), as the web
/// server sent it; where a name was sent twice, the last value.
///
/// In the request extensions of both adapters. Cloning it is cheap (the
/// params are shared, not copied).
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "http")] {
/// use fcgi_server::http::RawParams;
///
/// fn server_software(req: &http::Request<fcgi_server::http::Body<'_>>) -> Option<String> {
///     let params = req.extensions().get::<RawParams>()?;
///     params.get_str("SERVER_SOFTWARE").map(str::to_owned)
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct RawParams {
    /// The params, each `[name length u32][value length u32][name][value]`,
    /// then values derived from them (which this type does not list).
    bytes: Bytes,
    /// Where the params end in `bytes`.
    len: usize,
}

type Span = (usize, usize);

impl RawParams {
    pub(crate) fn new(bytes: Bytes, len: usize) -> RawParams {
        RawParams { bytes, len }
    }

    /// Appends one param to a buffer laid out as `bytes` is.
    pub(crate) fn push(buf: &mut Vec<u8>, name: &[u8], value: &[u8]) {
        buf.extend_from_slice(&(name.len() as u32).to_le_bytes());
        buf.extend_from_slice(&(value.len() as u32).to_le_bytes());
        buf.extend_from_slice(name);
        buf.extend_from_slice(value);
    }

    /// The param that starts at `at` in `buf`: its name's and value's
    /// spans, and where the next one starts.
    pub(crate) fn entry(buf: &[u8], at: usize) -> Option<(Span, Span, usize)> {
        let len = |i: usize| {
            let b = buf.get(i..i + 4)?;
            Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        };
        let (name_len, value_len) = (len(at)?, len(at + 4)?);
        let name = (at + 8, at + 8 + name_len);
        let value = (name.1, name.1 + value_len);
        (value.1 <= buf.len()).then_some((name, value, value.1))
    }

    /// Every param, duplicates included: (name, value, where the next starts).
    fn entries(&self) -> impl Iterator<Item = (&[u8], &[u8], usize)> {
        let buf = &self.bytes[..self.len];
        let mut at = 0;
        std::iter::from_fn(move || {
            let (n, v, next) = RawParams::entry(buf, at)?;
            at = next;
            Some((&buf[n.0..n.1], &buf[v.0..v.1], next))
        })
    }

    /// The value of param `name`, as bytes; where the web server sent the
    /// name twice, the last value.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        let name = name.as_bytes();
        self.entries()
            .filter(|(n, _, _)| *n == name)
            .last()
            .map(|(_, v, _)| v)
    }

    /// The value of param `name`, if it is valid UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every param as `(name, value)`, in the order the web server sent
    /// them; a name sent twice appears once, with its last value (where
    /// it was last sent).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let later = |name: &[u8], from: usize| {
            let rest = RawParams {
                bytes: self.bytes.slice(from..self.len),
                len: self.len - from,
            };
            rest.entries().any(|(n, _, _)| n == name)
        };
        self.entries()
            .filter(move |(n, _, next)| !later(n, *next))
            .map(|(n, v, _)| (n, v))
    }
}

impl fmt::Debug for RawParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        f.debug_map()
            .entries(self.iter().map(|(n, v)| (lossy(n), lossy(v))))
            .finish()
    }
}

/// The application's mount point: `SCRIPT_NAME`, percent-encoded as a URI
/// path (`""` at the root, `"/yourapplication"` under a prefix).
///
/// In the request extensions of both adapters. By default the request's
/// URI holds the path below it (see
/// [`Builder::full_path`](crate::http::Builder::full_path)), so a link the
/// application makes for its own page `/login` is `mount + "/login"`.
#[derive(Clone, PartialEq, Eq)]
pub struct ScriptName(pub(crate) Bytes);

impl ScriptName {
    /// The mount point as a string (percent-encoded, so always ASCII).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Debug for ScriptName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ScriptName").field(&self.as_str()).finish()
    }
}

/// The HTTP client's address, from `REMOTE_ADDR` and `REMOTE_PORT` (port
/// 0 when the web server does not send it).
///
/// In the request extensions of both adapters when `REMOTE_ADDR` is an IP
/// address (a web server that talks to its clients over a unix socket may
/// send none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

/// Whether the client reached the web server over TLS: `HTTPS` is `on`
/// (or `1`), or `REQUEST_SCHEME` is `https`.
///
/// In the request extensions of both adapters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Https(pub bool);
