//! The echo handler, as a plain closure: the query's keys (see
//! `contract.rs`) applied to the server's own `Request` and `Response`.

use std::io::{self, Read, Write};
use std::time::Duration;

use fcgi_server::{Request, Response};

#[path = "contract.rs"]
pub(crate) mod contract;

use contract::{Ask, Digest};

/// Serves one request as `contract.rs` describes.
pub(crate) fn handle(req: &mut Request<'_>, res: &mut Response<'_>) -> io::Result<()> {
    let ask = Ask::parse(req.query_string());
    if let Some(ms) = ask.sleep_ms {
        std::thread::sleep(Duration::from_millis(ms));
    }
    if let Some(text) = ask.stderr {
        writeln!(res.stderr(), "{text}")?;
    }
    if ask.panic {
        panic!("{}", contract::PANIC);
    }
    if let Some(code) = ask.status {
        res.status(code);
    }
    res.header("Content-Type", "text/plain");
    if let Some((name, value)) = ask.header {
        res.header(name, value);
    }
    let posted = contract::posted(req.method());
    if let Some(size) = ask.size {
        contract::pieces(size).try_for_each(|piece| res.write_all(piece))
    } else if posted && ask.digest {
        res.write_all(digest(req)?.line().as_bytes())
    } else if posted {
        let mut body = Vec::new();
        req.read_to_end(&mut body)?;
        res.write_all(&body)
    } else {
        contract::write_listing(res, req.params())
    }
}

/// The digest of a body read in pieces.
pub(crate) fn digest(body: &mut impl Read) -> io::Result<Digest> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut digest = Digest::new();
    loop {
        let n = body.read(&mut buf)?;
        if n == 0 {
            return Ok(digest);
        }
        digest.update(&buf[..n]);
    }
}
