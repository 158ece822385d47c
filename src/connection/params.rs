//! The params index: where each name-value pair of a request's params
//! stream sits, built in place without copying, and the corrections of
//! `SCRIPT_NAME` and `PATH_INFO` made on it.

use super::Fault;
use crate::protocol::Pairs;

/// A stretch of the params buffer: (offset, length).
pub(crate) type Range = (u32, u32);

/// Where one name-value pair sits in the params buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    pub(crate) name: Range,
    pub(crate) value: Range,
}

/// The bytes of `range` in `params`.
pub(crate) fn slice(params: &[u8], (at, len): Range) -> &[u8] {
    &params[at as usize..(at + len) as usize]
}

impl Span {
    pub(crate) fn name<'p>(&self, params: &'p [u8]) -> &'p [u8] {
        slice(params, self.name)
    }

    pub(crate) fn value<'p>(&self, params: &'p [u8]) -> &'p [u8] {
        slice(params, self.value)
    }
}

/// The value of the last pair named `name`: where a web server sent a
/// name twice, the last value wins.
pub(crate) fn last<'p>(params: &'p [u8], index: &[Span], name: &[u8]) -> Option<&'p [u8]> {
    index
        .iter()
        .rev()
        .find(|s| s.name(params) == name)
        .map(|s| s.value(params))
}

/// Indexes the params stream in place: offsets, no copies. Also returns
/// where the pairs that [`fix_paths`] needs are, found on the way.
pub(crate) fn index(
    params: &[u8],
    index: &mut Vec<Span>,
    limit: usize,
) -> Result<PathParams, Fault> {
    index.clear();
    let mut paths = PathParams::default();
    let base = params.as_ptr() as usize;
    for pair in Pairs::new(params, limit.min(u32::MAX as usize) as u32) {
        let (name, value) = pair?;
        paths.note(name, index.len());
        let at = |s: &[u8]| (s.as_ptr() as usize - base) as u32;
        index.push(Span {
            name: (at(name), name.len() as u32),
            value: (at(value), value.len() as u32),
        });
    }
    Ok(paths)
}

/// Points the pair at position `at` of `index` at `value`, or, with no
/// position, adds a pair named `name`. Returns the pair's position.
fn put(
    params: &mut Vec<u8>,
    index: &mut Vec<Span>,
    at: Option<usize>,
    name: &[u8],
    value: Range,
) -> usize {
    if let Some(i) = at {
        index[i].value = value;
        return i;
    }
    let name_at = params.len() as u32;
    params.extend_from_slice(name);
    index.push(Span {
        name: (name_at, name.len() as u32),
        value,
    });
    index.len() - 1
}

/// The positions in the index of the last `SCRIPT_NAME`, `PATH_INFO` and
/// `REQUEST_URI` pairs, noted while the index is built (and, once
/// [`fix_paths`] has run, of the corrected ones: the server's bookkeeping
/// reads them without a search).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PathParams {
    pub(crate) script: Option<usize>,
    pub(crate) path: Option<usize>,
    pub(crate) uri: Option<usize>,
}

impl PathParams {
    /// Notes the pair at position `i`, if it is one of the three.
    fn note(&mut self, name: &[u8], i: usize) {
        // Most names differ in length from all three: one comparison.
        let slot = match name.len() {
            9 if name == b"PATH_INFO" => &mut self.path,
            11 if name == b"SCRIPT_NAME" => &mut self.script,
            11 if name == b"REQUEST_URI" => &mut self.uri,
            _ => return,
        };
        *slot = Some(i);
    }

    /// The value of the pair at `at` (one of the fields), or `""`.
    pub(crate) fn value<'p>(params: &'p [u8], index: &[Span], at: Option<usize>) -> &'p [u8] {
        at.and_then(|i| index.get(i))
            .map_or(&[], |s| s.value(params))
    }
}

/// Corrects `SCRIPT_NAME` and `PATH_INFO` in place, without allocating
/// (derived values are spans into the params buffer, which may grow).
///
/// - `root_mount`: the application serves the whole site, but the web
///   server put the request path in `SCRIPT_NAME` (lighttpd at `"/"`): the
///   path moves to `PATH_INFO` and `SCRIPT_NAME` becomes empty.
/// - A missing or empty `PATH_INFO` is derived, as flup does, from the path
///   of `REQUEST_URI` below `SCRIPT_NAME` (not percent-decoded).
///
/// `found` is updated to where the pairs are now.
pub(crate) fn fix_paths(
    params: &mut Vec<u8>,
    index: &mut Vec<Span>,
    found: &mut PathParams,
    root_mount: bool,
) {
    let PathParams { script, path, uri } = found;
    let value = |index: &[Span], i: Option<usize>| i.map_or((0, 0), |i| index[i].value);
    if root_mount {
        let (s, p) = (value(index, *script), value(index, *path));
        let at = params.len() as u32;
        params.extend_from_within(s.0 as usize..(s.0 + s.1) as usize);
        params.extend_from_within(p.0 as usize..(p.0 + p.1) as usize);
        *path = Some(put(params, index, *path, b"PATH_INFO", (at, s.1 + p.1)));
        *script = Some(put(params, index, *script, b"SCRIPT_NAME", (at, 0)));
    }
    if value(index, *path).1 > 0 {
        return;
    }
    let Some(at_uri) = *uri else {
        return;
    };
    let (uri_at, uri_len) = index[at_uri].value;
    let request_uri = slice(params, (uri_at, uri_len));
    let path_len = request_uri
        .iter()
        .position(|&b| b == b'?')
        .unwrap_or(request_uri.len()) as u32;
    let (script_at, script_len) = value(index, *script);
    let script_name = slice(params, (script_at, script_len));
    if script_len <= path_len && request_uri.starts_with(script_name) {
        let derived = (uri_at + script_len, path_len - script_len);
        *path = Some(put(params, index, *path, b"PATH_INFO", derived));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::encode_pair;

    fn fixed(pairs: &[(&str, &str)], root: bool) -> (Option<String>, Option<String>) {
        let mut params = Vec::new();
        for (k, v) in pairs {
            encode_pair(&mut params, k.as_bytes(), v.as_bytes());
        }
        let mut spans = Vec::new();
        let mut now = index(&params, &mut spans, 1 << 20).unwrap();
        fix_paths(&mut params, &mut spans, &mut now, root);
        let get = |name: &[u8]| {
            last(&params, &spans, name).map(|v| String::from_utf8(v.to_vec()).unwrap())
        };
        // The positions returned point at the values that the names find.
        for (at, name) in [(now.script, "SCRIPT_NAME"), (now.path, "PATH_INFO")] {
            let value = PathParams::value(&params, &spans, at);
            assert_eq!(value, get(name.as_bytes()).unwrap_or_default().as_bytes());
        }
        (get(b"SCRIPT_NAME"), get(b"PATH_INFO"))
    }

    #[test]
    fn path_fix_cases() {
        let s = |v: &str| Some(v.to_owned());
        type Pairs<'a> = &'a [(&'a str, &'a str)];
        type Paths = (Option<String>, Option<String>);
        let cases: &[(Pairs<'_>, bool, Paths)] = &[
            // Prefix mount, front end sends both: untouched.
            (
                &[
                    ("SCRIPT_NAME", "/app"),
                    ("PATH_INFO", "/x"),
                    ("REQUEST_URI", "/app/y"),
                ],
                false,
                (s("/app"), s("/x")),
            ),
            // No PATH_INFO: derived from REQUEST_URI, query cut off.
            (
                &[("SCRIPT_NAME", "/app"), ("REQUEST_URI", "/app/a/b?q=1")],
                false,
                (s("/app"), s("/a/b")),
            ),
            // Empty PATH_INFO: derived too.
            (
                &[
                    ("SCRIPT_NAME", "/app"),
                    ("PATH_INFO", ""),
                    ("REQUEST_URI", "/app/z"),
                ],
                false,
                (s("/app"), s("/z")),
            ),
            // SCRIPT_NAME not a prefix of the path: left alone.
            (
                &[("SCRIPT_NAME", "/other"), ("REQUEST_URI", "/app/z")],
                false,
                (s("/other"), None),
            ),
            // lighttpd at root: the path is in SCRIPT_NAME.
            (
                &[
                    ("SCRIPT_NAME", "/a/b"),
                    ("PATH_INFO", ""),
                    ("REQUEST_URI", "/a/b?x"),
                ],
                true,
                (s(""), s("/a/b")),
            ),
            (
                &[("SCRIPT_NAME", "/a"), ("PATH_INFO", "/b")],
                true,
                (s(""), s("/a/b")),
            ),
            // Already right (fix-root-scriptname): unchanged.
            (
                &[("SCRIPT_NAME", ""), ("PATH_INFO", "/a/b")],
                true,
                (s(""), s("/a/b")),
            ),
        ];
        for (pairs, root, want) in cases {
            assert_eq!(&fixed(pairs, *root), want, "{pairs:?} root={root}");
        }
    }
}
