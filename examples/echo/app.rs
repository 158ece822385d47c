//! The echo handler. Query keys, applied in this order:
//!
//! 1. `sleep_ms=N`: sleep N ms before answering.
//! 2. `stderr=TEXT`: write TEXT and a newline to the error stream.
//! 3. `panic=1`: panic.
//! 4. `status=NNN`: respond with that status.
//! 5. `header=NAME:VALUE`: add that header.
//! 6. `size=N`: the body is N bytes, byte i being `b'a' + i % 26`.
//! 7. `digest=1` with POST or PUT: the body is `LENGTH HASH\n`, the request
//!    body's length and 64-bit FNV-1a hash, read as a stream.
//! 8. otherwise POST or PUT: the request body, read whole, then echoed.
//! 9. otherwise: one `NAME=VALUE` line per param, sorted by name.

use std::io::{self, Read, Write};
use std::time::Duration;

use fcgi_server::{Request, Response};

/// Serves one request as described above.
pub(crate) fn handle(req: &mut Request<'_>, res: &mut Response<'_>) -> io::Result<()> {
    let query = req.query_string();
    let get = |key: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    };
    if let Some(ms) = get("sleep_ms").and_then(|v| v.parse().ok()) {
        std::thread::sleep(Duration::from_millis(ms));
    }
    if let Some(text) = get("stderr") {
        writeln!(res.stderr(), "{text}")?;
    }
    if get("panic") == Some("1") {
        panic!("echo: panic=1 was asked for");
    }
    if let Some(code) = get("status").and_then(|v| v.parse().ok()) {
        res.status(code);
    }
    res.header("Content-Type", "text/plain");
    if let Some((name, value)) = get("header").and_then(|h| h.split_once(':')) {
        res.header(name, value);
    }
    let posted = matches!(req.method(), "POST" | "PUT");
    if let Some(size) = get("size").and_then(|v| v.parse().ok()) {
        write_pattern(res, size)
    } else if posted && get("digest") == Some("1") {
        let (len, hash) = digest(req)?;
        writeln!(res, "{len} {hash:016x}")
    } else if posted {
        let mut body = Vec::new();
        req.read_to_end(&mut body)?;
        res.write_all(&body)
    } else {
        let mut params: Vec<(&[u8], &[u8])> = req.params().collect();
        params.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (name, value) in params {
            res.write_all(name)?;
            res.write_all(b"=")?;
            res.write_all(value)?;
            res.write_all(b"\n")?;
        }
        Ok(())
    }
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

/// Writes `size` bytes of the alphabet pattern, 64 KiB at a time.
fn write_pattern(res: &mut Response<'_>, size: u64) -> io::Result<()> {
    let mut left = size;
    while left > 0 {
        let n = left.min(PIECE.len() as u64) as usize;
        res.write_all(&PIECE[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// The length and FNV-1a hash of the request body, read in pieces.
pub(crate) fn digest(body: &mut impl Read) -> io::Result<(u64, u64)> {
    let mut buf = vec![0u8; 64 * 1024];
    let (mut len, mut hash) = (0u64, 0xcbf2_9ce4_8422_2325u64);
    loop {
        let n = body.read(&mut buf)?;
        if n == 0 {
            return Ok((len, hash));
        }
        len += n as u64;
        for &b in &buf[..n] {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}
