//! hello and echo (size=N, POST echo) on the `fastcgi` crate, for
//! benches/compare.sh. Usage: rust-fastcgi-bench hello|echo; socket on fd 0.

use std::io::{Read, Write};

fn main() {
    let echo = std::env::args().nth(1).as_deref() == Some("echo");
    let piece: &'static [u8] = Box::leak((0..65520).map(|i| b'a' + (i % 26) as u8).collect());
    fastcgi::run(move |mut req| {
        let query = req.param("QUERY_STRING").unwrap_or_default();
        let method = req.param("REQUEST_METHOD").unwrap_or_default();
        let size = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("size="))
            .and_then(|v| v.parse::<usize>().ok());
        let mut body = Vec::new();
        if echo && size.is_none() && (method == "POST" || method == "PUT") {
            let _ = req.stdin().read_to_end(&mut body);
        }
        let mut out = req.stdout();
        let _ = out.write_all(b"Content-Type: text/plain\r\n\r\n");
        if !echo {
            let _ = out.write_all(b"Hello, World!\n");
        } else if let Some(mut n) = size {
            while n > 0 {
                let k = n.min(piece.len());
                let _ = out.write_all(&piece[..k]);
                n -= k;
            }
        } else {
            let _ = out.write_all(&body);
        }
    });
}
