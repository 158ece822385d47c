//! An answer of `fcgi bench`, checked record by record as its bytes
//! come, in whatever pieces the socket gives them: no record is buffered
//! whole, so a 1 MiB answer costs no more memory than a small one.

use crate::protocol::{EndRequest, HEADER_LEN, Header, ProtocolStatus, record_type};

/// How much of FCGI_STDOUT is kept to find the status and the end of the
/// header block.
const HEAD_KEPT: usize = 1024;

/// A complete answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Done {
    /// The HTTP status (`Status:`, or 200 without it).
    pub(super) status: u16,
    /// Bytes of the body, after the header block.
    pub(super) body: u64,
}

/// Why an answer is not one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Bad {
    /// A malformed record, a record of another request or of a type an
    /// application does not send, bytes after END_REQUEST, an
    /// END_REQUEST that is not FCGI_REQUEST_COMPLETE, or no header block.
    Protocol,
}

/// What has arrived of the answer in flight.
pub(super) struct Answer {
    header: [u8; HEADER_LEN],
    /// Bytes of `header` that came; the record's content and padding
    /// follow once it is whole.
    have: usize,
    kind: u8,
    /// Content and padding of the current record still to come.
    left: usize,
    pad: usize,
    head: [u8; HEAD_KEPT],
    /// Bytes of FCGI_STDOUT so far.
    stdout: u64,
    end: [u8; 8],
    end_have: usize,
}

impl Answer {
    pub(super) fn new() -> Answer {
        Answer {
            header: [0; HEADER_LEN],
            have: 0,
            kind: 0,
            left: 0,
            pad: 0,
            head: [0; HEAD_KEPT],
            stdout: 0,
            end: [0; 8],
            end_have: 0,
        }
    }

    /// Forgets the answer before, for the next request.
    pub(super) fn reset(&mut self) {
        self.have = 0;
        self.left = 0;
        self.pad = 0;
        self.stdout = 0;
        self.end_have = 0;
    }

    /// Takes bytes that came; the answer once END_REQUEST is complete.
    pub(super) fn feed(&mut self, mut data: &[u8]) -> Result<Option<Done>, Bad> {
        while !data.is_empty() {
            if self.have < HEADER_LEN {
                let n = (HEADER_LEN - self.have).min(data.len());
                self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
                self.have += n;
                data = &data[n..];
                if self.have == HEADER_LEN {
                    self.start_record()?;
                }
            } else {
                let n = data.len().min(self.left + self.pad);
                let content = n.min(self.left);
                self.content(&data[..content]);
                self.left -= content;
                self.pad -= n - content;
                data = &data[n..];
            }
            if self.have == HEADER_LEN && self.left + self.pad == 0 {
                if let Some(done) = self.end_record()? {
                    return if data.is_empty() {
                        Ok(Some(done))
                    } else {
                        Err(Bad::Protocol)
                    };
                }
            }
        }
        Ok(None)
    }

    fn start_record(&mut self) -> Result<(), Bad> {
        let h = match Header::decode(&self.header) {
            Ok(Some(h)) => h,
            _ => return Err(Bad::Protocol),
        };
        let known = matches!(
            h.record_type,
            record_type::STDOUT | record_type::STDERR | record_type::END_REQUEST
        );
        if h.request_id != 1 || !known {
            return Err(Bad::Protocol);
        }
        self.kind = h.record_type;
        self.left = usize::from(h.content_len);
        self.pad = usize::from(h.padding_len);
        Ok(())
    }

    fn content(&mut self, c: &[u8]) {
        match self.kind {
            record_type::STDOUT => {
                let at = self.stdout.min(HEAD_KEPT as u64) as usize;
                let n = c.len().min(HEAD_KEPT - at);
                self.head[at..at + n].copy_from_slice(&c[..n]);
                self.stdout += c.len() as u64;
            }
            record_type::END_REQUEST => {
                let n = c.len().min(8 - self.end_have);
                self.end[self.end_have..self.end_have + n].copy_from_slice(&c[..n]);
                self.end_have += n;
            }
            _ => {}
        }
    }

    /// The current record is whole: the answer, if it was END_REQUEST.
    fn end_record(&mut self) -> Result<Option<Done>, Bad> {
        self.have = 0;
        if self.kind != record_type::END_REQUEST {
            return Ok(None);
        }
        let end = EndRequest::decode(&self.end[..self.end_have]).map_err(|_| Bad::Protocol)?;
        if end.protocol_status != u8::from(ProtocolStatus::RequestComplete) {
            return Err(Bad::Protocol);
        }
        let kept = &self.head[..self.stdout.min(HEAD_KEPT as u64) as usize];
        let (status, head_len) = status_of(kept).ok_or(Bad::Protocol)?;
        Ok(Some(Done {
            status,
            body: self.stdout - head_len as u64,
        }))
    }
}

/// The status a CGI header block gives (200 without `Status:`), and the
/// block's length with its blank line; `None` without a whole block.
fn status_of(stdout: &[u8]) -> Option<(u16, usize)> {
    let (end, sep) = match stdout.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (i, 4),
        None => (stdout.windows(2).position(|w| w == b"\n\n")?, 2),
    };
    let status = stdout[..end]
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            let (name, value) = (&line[..colon], &line[colon + 1..]);
            name.trim_ascii()
                .eq_ignore_ascii_case(b"status")
                .then(|| value.trim_ascii().get(..3))?
        })
        .next()
        .map_or(Some(200), |code| {
            std::str::from_utf8(code).ok()?.parse().ok()
        })?;
    Some((status, end + sep))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::push_record;

    fn answer(stdout: &[u8], protocol_status: ProtocolStatus) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in stdout.chunks(7) {
            push_record(&mut out, record_type::STDOUT, 1, chunk);
        }
        push_record(&mut out, record_type::STDERR, 1, b"a warning\n");
        push_record(&mut out, record_type::STDOUT, 1, b"");
        out.extend_from_slice(&EndRequest::new(0, protocol_status).record(1));
        out
    }

    /// Every split of the bytes gives the same answer.
    fn fed_in_pieces(bytes: &[u8]) -> Vec<Result<Option<Done>, Bad>> {
        let mut results = Vec::new();
        for size in [1, 3, 8, 13, bytes.len()] {
            let mut a = Answer::new();
            let mut last = Ok(None);
            for piece in bytes.chunks(size) {
                last = a.feed(piece);
                if !matches!(last, Ok(None)) {
                    break;
                }
            }
            results.push(last);
        }
        results
    }

    #[test]
    fn answers_are_read_whatever_the_pieces() {
        let ok = answer(
            b"Content-Type: text/plain\r\n\r\nHello",
            ProtocolStatus::RequestComplete,
        );
        for r in fed_in_pieces(&ok) {
            assert_eq!(
                r,
                Ok(Some(Done {
                    status: 200,
                    body: 5
                }))
            );
        }
        let not_found = answer(
            b"Status: 404 Not Found\n\nno",
            ProtocolStatus::RequestComplete,
        );
        for r in fed_in_pieces(&not_found) {
            assert_eq!(
                r,
                Ok(Some(Done {
                    status: 404,
                    body: 2
                }))
            );
        }
        let overloaded = answer(b"Status: 200\r\n\r\n", ProtocolStatus::Overloaded);
        for r in fed_in_pieces(&overloaded) {
            assert_eq!(r, Err(Bad::Protocol));
        }
        let headless = answer(b"no header block", ProtocolStatus::RequestComplete);
        for r in fed_in_pieces(&headless) {
            assert_eq!(r, Err(Bad::Protocol));
        }
    }

    #[test]
    fn another_request_or_bytes_after_the_end_are_refused() {
        let mut other = Vec::new();
        push_record(&mut other, record_type::STDOUT, 2, b"x");
        assert_eq!(Answer::new().feed(&other), Err(Bad::Protocol));
        let mut extra = answer(b"\r\n\r\n", ProtocolStatus::RequestComplete);
        extra.push(1);
        assert_eq!(Answer::new().feed(&extra), Err(Bad::Protocol));
    }
}
