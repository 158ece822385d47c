//! What the server's bookkeeping reads of a request: its URI and path,
//! found in O(1) through the positions noted while its params were
//! indexed; its method and remote address by a search, only when a
//! report or a log needs them.

use crate::connection::params::{self, PathParams, Span};

/// A request's params, as the status page, the counters, the access log
/// and the reports see them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestView<'a> {
    params: &'a [u8],
    index: &'a [Span],
    found: &'a PathParams,
}

impl<'a> RequestView<'a> {
    pub(crate) fn new(
        params: &'a [u8],
        index: &'a [Span],
        found: &'a PathParams,
    ) -> RequestView<'a> {
        RequestView {
            params,
            index,
            found,
        }
    }

    /// `REQUEST_METHOD`: the first one sent (web servers send it once,
    /// and early: nginx third), so that the search is short.
    pub(crate) fn method(&self) -> &'a [u8] {
        let name: &[u8] = b"REQUEST_METHOD";
        self.index
            .iter()
            .find(|s| s.name(self.params) == name)
            .map_or(&[], |s| s.value(self.params))
    }

    pub(crate) fn uri(&self) -> &'a [u8] {
        PathParams::value(self.params, self.index, self.found.uri)
    }

    /// Whether the request's path (`SCRIPT_NAME` + `PATH_INFO`) is `path`.
    #[inline]
    pub(crate) fn path_is(&self, path: &str) -> bool {
        let script = PathParams::value(self.params, self.index, self.found.script);
        let info = PathParams::value(self.params, self.index, self.found.path);
        let path = path.as_bytes();
        path.len() == script.len() + info.len() && path.starts_with(script) && path.ends_with(info)
    }

    /// `REMOTE_ADDR` (a search: for the access log only).
    pub(crate) fn remote_addr(&self) -> &'a [u8] {
        params::last(self.params, self.index, b"REMOTE_ADDR").unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::encode_pair;

    #[test]
    fn path_is_script_name_then_path_info() {
        let mut bytes = Vec::new();
        for (k, v) in [
            ("SCRIPT_NAME", "/app"),
            ("PATH_INFO", "/status"),
            ("REQUEST_METHOD", "GET"),
            ("REMOTE_ADDR", "10.0.0.1"),
        ] {
            encode_pair(&mut bytes, k.as_bytes(), v.as_bytes());
        }
        let mut index = Vec::new();
        let mut found = params::index(&bytes, &mut index, 1 << 20).unwrap();
        params::fix_paths(&mut bytes, &mut index, &mut found, false);
        let view = RequestView::new(&bytes, &index, &found);
        assert!(view.path_is("/app/status"));
        for other in ["/app/statu", "/app/status/", "/status", "/app", ""] {
            assert!(!view.path_is(other), "{other}");
        }
        assert_eq!(view.method(), b"GET");
        assert_eq!(view.uri(), b"");
        assert_eq!(view.remote_addr(), b"10.0.0.1");
    }
}
