//! CGI mode: one request from the environment and standard input, the
//! response on standard output.
//!
//! It is what makes `./app.fcgi`, run by hand as the web server's user,
//! show what is wrong instead of waiting for a socket. The request goes
//! through the same connection loop as a FastCGI one: this module is a
//! [`Transport`] that turns the environment and stdin into FastCGI records
//! and the output records back into stdout and stderr.

use std::cell::{Cell, RefCell};
use std::io::{self, IoSlice, Read, Write};
use std::os::unix::ffi::OsStrExt;

use crate::connection::{Transport, Wait};
use crate::protocol::{
    self, BeginRequest, HEADER_LEN, Header, MAX_ALIGNED_CONTENT_LEN, Role, record_type,
};

/// The request id CGI mode uses internally.
const ID: u16 = 1;

/// Whether `FCGI_FORCE_CGI` asks for CGI mode (a value starting with `Y`/`y`).
pub(crate) fn forced() -> bool {
    std::env::var_os("FCGI_FORCE_CGI")
        .is_some_and(|v| matches!(v.as_bytes().first(), Some(b'Y' | b'y')))
}

/// The CGI side of one request.
pub(crate) struct Cgi<R> {
    /// Records not yet handed out: the begin-request and params.
    head: Vec<u8>,
    pos: Cell<usize>,
    stdin: RefCell<R>,
    /// Body bytes still to read, from `CONTENT_LENGTH`.
    body_left: Cell<u64>,
    body_done: Cell<bool>,
    /// Output bytes that do not yet make a whole record.
    partial: RefCell<Vec<u8>>,
    stdout: RefCell<Box<dyn Write>>,
    stderr: RefCell<Box<dyn Write>>,
}

impl<R: Read> Cgi<R> {
    /// A request from the environment, with `stdin` as its body.
    pub(crate) fn from_env(stdin: R) -> Cgi<R> {
        let env: Vec<(Vec<u8>, Vec<u8>)> = std::env::vars_os()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        Cgi::new(&env, stdin, Box::new(io::stdout()), Box::new(io::stderr()))
    }

    pub(crate) fn new(
        env: &[(Vec<u8>, Vec<u8>)],
        stdin: R,
        stdout: Box<dyn Write>,
        stderr: Box<dyn Write>,
    ) -> Cgi<R> {
        let mut pairs = Vec::new();
        let mut length = 0;
        for (k, v) in env {
            protocol::encode_pair(&mut pairs, k, v);
            if k == b"CONTENT_LENGTH" {
                length = std::str::from_utf8(v)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
            }
        }
        let mut head = Vec::with_capacity(pairs.len() + 64);
        let begin = BeginRequest {
            role: Role::Responder.into(),
            flags: 0,
        };
        push(&mut head, record_type::BEGIN_REQUEST, &begin.encode());
        for chunk in pairs.chunks(MAX_ALIGNED_CONTENT_LEN) {
            push(&mut head, record_type::PARAMS, chunk);
        }
        push(&mut head, record_type::PARAMS, b"");
        Cgi {
            head,
            pos: Cell::new(0),
            stdin: RefCell::new(stdin),
            body_left: Cell::new(length),
            body_done: Cell::new(false),
            partial: RefCell::new(Vec::new()),
            stdout: RefCell::new(stdout),
            stderr: RefCell::new(stderr),
        }
    }

    /// One STDIN record of up to `buf.len()` bytes read from stdin, or the
    /// empty one that ends the body.
    fn body_record(&self, buf: &mut [u8]) -> io::Result<usize> {
        let room = (buf.len() - HEADER_LEN).min(MAX_ALIGNED_CONTENT_LEN) as u64;
        let want = self.body_left.get().min(room) as usize;
        let n = if want == 0 {
            0
        } else {
            self.stdin
                .borrow_mut()
                .read(&mut buf[HEADER_LEN..HEADER_LEN + want])?
        };
        if n == 0 {
            self.body_done.set(true);
        }
        self.body_left.set(self.body_left.get() - n as u64);
        let h = Header::new(record_type::STDIN, ID, n as u16);
        buf[..HEADER_LEN].copy_from_slice(&h.encode());
        Ok(HEADER_LEN + n)
    }

    /// Writes the content of every whole record in `partial` out.
    fn drain_output(&self) -> io::Result<()> {
        let mut partial = self.partial.borrow_mut();
        let mut used = 0;
        while let Some((rec, n)) = protocol::decode_record(&partial[used..])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
        {
            match rec.header.record_type {
                record_type::STDOUT => self.stdout.borrow_mut().write_all(rec.content)?,
                record_type::STDERR => self.stderr.borrow_mut().write_all(rec.content)?,
                record_type::END_REQUEST => self.stdout.borrow_mut().flush()?,
                _ => {}
            }
            used += n;
        }
        partial.drain(..used);
        Ok(())
    }
}

impl<R: Read> Transport for Cgi<R> {
    /// Everything is at hand: no read waits for anything but stdin.
    fn read(&self, buf: &mut [u8], _wait: Wait) -> io::Result<usize> {
        let pos = self.pos.get();
        if pos < self.head.len() {
            let n = (self.head.len() - pos).min(buf.len());
            buf[..n].copy_from_slice(&self.head[pos..pos + n]);
            self.pos.set(pos + n);
            return Ok(n);
        }
        if self.body_done.get() {
            return Ok(0);
        }
        self.body_record(buf)
    }

    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut total = 0;
        for b in bufs {
            self.partial.borrow_mut().extend_from_slice(b);
            total += b.len();
        }
        self.drain_output()?;
        Ok(total)
    }
}

fn push(out: &mut Vec<u8>, rtype: u8, content: &[u8]) {
    out.extend_from_slice(&Header::new(rtype, ID, content.len() as u16).encode());
    out.extend_from_slice(content);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::{Buffers, Config, NoControl, Resume};
    use crate::runtime::serve::serve;
    use crate::{Request, Response};
    use std::rc::Rc;

    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn handler(req: &mut Request<'_>, res: &mut Response<'_>) -> io::Result<()> {
        let mut body = Vec::new();
        req.read_to_end(&mut body)?;
        writeln!(res.stderr(), "logged")?;
        res.header("Content-Type", "text/plain");
        write!(res, "{} {} ", req.method(), req.path_info())?;
        res.write_all(&body)
    }

    #[test]
    fn one_request_from_env_and_stdin() {
        let env: Vec<(Vec<u8>, Vec<u8>)> = [
            ("REQUEST_METHOD", "POST"),
            ("PATH_INFO", "/p"),
            ("CONTENT_LENGTH", "100000"),
        ]
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
        // More on stdin than CONTENT_LENGTH: only CONTENT_LENGTH is read.
        let stdin: Vec<u8> = (0..100_050u32).map(|i| b'a' + (i % 26) as u8).collect();
        let (out, err) = (Shared::default(), Shared::default());
        let cgi = Cgi::new(
            &env,
            &stdin[..],
            Box::new(out.clone()),
            Box::new(err.clone()),
        );
        serve(
            &cgi,
            &mut Buffers::new(),
            &Config::default(),
            &handler,
            &NoControl,
            Resume::NEW,
            None,
        )
        .unwrap();
        let out = out.0.borrow();
        let head = b"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nPOST /p ";
        assert!(
            out.starts_with(head),
            "{}",
            String::from_utf8_lossy(&out[..80])
        );
        assert_eq!(&out[head.len()..], &stdin[..100_000]);
        assert_eq!(&*err.0.borrow(), b"logged\n");
    }
}
