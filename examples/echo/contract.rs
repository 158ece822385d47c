//! What every echo application does, whatever it is written with (see
//! `shared/APP-CONTRACT.md`): the query's keys, the download pattern, the
//! digest of a request body, and the params listing. `app.rs` (the plain
//! closure), `http_echo.rs` and `axum_echo.rs` apply them.

use std::io::{self, Write};

/// What the query string asks for, in the order it is applied.
#[derive(Debug, Default)]
pub(crate) struct Ask<'q> {
    /// `sleep_ms=N`: sleep N ms before answering.
    pub(crate) sleep_ms: Option<u64>,
    /// `stderr=TEXT`: write TEXT and a newline to the error stream.
    pub(crate) stderr: Option<&'q str>,
    /// `panic=1`: panic (after the two above).
    pub(crate) panic: bool,
    /// `status=NNN`: respond with that status.
    pub(crate) status: Option<u16>,
    /// `header=NAME:VALUE`: add that header.
    pub(crate) header: Option<(&'q str, &'q str)>,
    /// `size=N`: the body is N bytes of the pattern ([`pieces`]).
    pub(crate) size: Option<u64>,
    /// `digest=1` (with POST or PUT): the body is the request body's
    /// [`Digest`] line.
    pub(crate) digest: bool,
}

impl<'q> Ask<'q> {
    /// Reads `key=value` pairs split on `&`, without percent-decoding.
    pub(crate) fn parse(query: &'q str) -> Ask<'q> {
        let get = |key: &str| {
            query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v)
        };
        Ask {
            sleep_ms: get("sleep_ms").and_then(|v| v.parse().ok()),
            stderr: get("stderr"),
            panic: get("panic") == Some("1"),
            status: get("status").and_then(|v| v.parse().ok()),
            header: get("header").and_then(|h| h.split_once(':')),
            size: get("size").and_then(|v| v.parse().ok()),
            digest: get("digest") == Some("1"),
        }
    }
}

/// What `panic=1` panics with.
pub(crate) const PANIC: &str = "echo: panic=1 was asked for";

/// Whether a request with this method has a body to echo or digest.
pub(crate) fn posted(method: &str) -> bool {
    matches!(method, "POST" | "PUT")
}

/// 64 KiB of the alphabet pattern, built at compile time. 65520 is a
/// multiple of 26, so every piece starts at 'a'.
static PIECE: [u8; 65520] = {
    let mut piece = [0u8; 65520];
    let mut i = 0;
    while i < piece.len() {
        piece[i] = b'a' + (i % 26) as u8;
        i += 1;
    }
    piece
};

/// `size` bytes of the pattern (byte i is `b'a' + i % 26`), in pieces of
/// at most 64 KiB.
pub(crate) fn pieces(size: u64) -> impl Iterator<Item = &'static [u8]> {
    let mut left = size;
    std::iter::from_fn(move || {
        let n = left.min(PIECE.len() as u64) as usize;
        left -= n as u64;
        (n > 0).then(|| &PIECE[..n])
    })
}

/// The length and 64-bit FNV-1a hash of a body read in pieces.
#[derive(Debug)]
pub(crate) struct Digest {
    pub(crate) len: u64,
    pub(crate) hash: u64,
}

impl Digest {
    pub(crate) fn new() -> Digest {
        Digest {
            len: 0,
            hash: 0xcbf2_9ce4_8422_2325,
        }
    }

    pub(crate) fn update(&mut self, piece: &[u8]) {
        self.len += piece.len() as u64;
        for &b in piece {
            self.hash = (self.hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// The response body: `LENGTH HASH\n`.
    pub(crate) fn line(&self) -> String {
        format!("{} {:016x}\n", self.len, self.hash)
    }
}

/// One `NAME=VALUE` line per param, sorted by name in byte order.
pub(crate) fn write_listing<'p>(
    out: &mut impl Write,
    params: impl Iterator<Item = (&'p [u8], &'p [u8])>,
) -> io::Result<()> {
    let mut params: Vec<(&[u8], &[u8])> = params.collect();
    params.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (name, value) in params {
        out.write_all(name)?;
        out.write_all(b"=")?;
        out.write_all(value)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
