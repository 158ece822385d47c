//! The address syntax shared by the server's `bind` and the client's
//! `connect`: a unix socket path, or a TCP `HOST:PORT`.

use std::path::PathBuf;

/// What a bind address names.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Address {
    /// A unix socket path (`/run/app.sock`, `app.sock`, `unix:/run/app.sock`).
    Unix(PathBuf),
    /// A TCP `HOST:PORT` (`127.0.0.1:9000`, `[::1]:9000`, `localhost:9000`).
    Tcp(String),
}

impl Address {
    /// A path (anything with a `/`, or without a `:PORT` suffix) is a unix
    /// socket; `HOST:PORT` is TCP.
    pub(crate) fn parse(s: &str) -> Address {
        if let Some(path) = s.strip_prefix("unix:") {
            return Address::Unix(path.into());
        }
        let is_tcp = !s.contains('/')
            && s.rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if is_tcp {
            Address::Tcp(s.to_owned())
        } else {
            Address::Unix(s.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_cases() {
        let cases = [
            ("/run/app.sock", Address::Unix("/run/app.sock".into())),
            ("app.sock", Address::Unix("app.sock".into())),
            ("./a:1", Address::Unix("./a:1".into())),
            ("unix:/tmp/x", Address::Unix("/tmp/x".into())),
            ("127.0.0.1:9000", Address::Tcp("127.0.0.1:9000".into())),
            ("[::1]:9000", Address::Tcp("[::1]:9000".into())),
            ("localhost:0", Address::Tcp("localhost:0".into())),
            (":9000", Address::Unix(":9000".into())),
            ("host:notaport", Address::Unix("host:notaport".into())),
        ];
        for (input, want) in cases {
            assert_eq!(Address::parse(input), want, "input {input}");
        }
    }
}
