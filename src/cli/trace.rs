//! What the client sees on the wire: the `--trace` of every record, the
//! `--timing` marks, and what had arrived when a request failed.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::client::WireEvent;
use crate::protocol::{BeginRequest, EndRequest, HEADER_LEN, Pairs, Record, Role};
use crate::protocol::{NULL_REQUEST_ID, ProtocolStatus as Ps, record_type as rt};

/// The request id `fcgi` sends with.
pub(crate) const REQUEST_ID: u16 = 1;

/// Times since the start of a request.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Marks {
    pub(crate) connect: Option<Duration>,
    pub(crate) sent: Option<Duration>,
    pub(crate) first: Option<Duration>,
    pub(crate) end: Option<Duration>,
}

/// The observer of one connection.
#[derive(Debug)]
pub(crate) struct Wire {
    trace: bool,
    /// When the first request started: trace times count from here.
    started: Instant,
    /// When the current request started: timing marks count from here.
    request_start: Instant,
    pub(crate) marks: Marks,
    /// Bytes of the current request's STDOUT stream.
    pub(crate) stdout: u64,
    stdout_ended: bool,
    /// The PARAMS stream sent so far, decoded when it ends.
    params: Vec<u8>,
}

impl Wire {
    pub(crate) fn new(trace: bool) -> Wire {
        let now = Instant::now();
        Wire {
            trace,
            started: now,
            request_start: now,
            marks: Marks::default(),
            stdout: 0,
            stdout_ended: false,
            params: Vec::new(),
        }
    }

    /// Starts counting for the next request on the connection.
    pub(crate) fn next_request(&mut self) {
        self.request_start = Instant::now();
        self.marks = Marks::default();
        self.stdout = 0;
        self.stdout_ended = false;
    }

    fn since_request(&self) -> Option<Duration> {
        Some(self.request_start.elapsed())
    }

    /// Marks the connection made.
    pub(crate) fn connected(&mut self, addr: &str) {
        self.marks.connect = self.since_request();
        self.note(&format!("connected to {addr}"));
    }

    /// A line of the trace that is not a record.
    pub(crate) fn note(&self, text: &str) {
        self.line('-', text);
    }

    /// Prints a line of the trace: the time, two marks (`>>` sent, `<<`
    /// received, `!!` wrong, `--` a note), the text. A line of detail
    /// (mark `' '`) has no time.
    fn line(&self, mark: char, text: &str) {
        if !self.trace {
        } else if mark == ' ' {
            eprintln!("{:19}{text}", "");
        } else {
            let ms = self.started.elapsed().as_secs_f64() * 1000.0;
            eprintln!("{ms:10.3} ms  {mark}{mark}  {text}");
        }
    }

    /// Takes in one event, for the marks and the trace.
    pub(crate) fn see(&mut self, event: &WireEvent<'_>) {
        match *event {
            WireEvent::Sent(r) => self.sent(r),
            WireEvent::Received(r) => self.received(r),
            WireEvent::Closed { partial } => self.closed(partial),
            WireEvent::BadHeader(bytes) => {
                self.line('<', &format!("{bytes:02x?}"));
                self.line('!', &bad_header(&bytes));
            }
        }
    }

    fn sent(&mut self, r: Record<'_>) {
        if r.header.record_type == rt::STDIN && r.content.is_empty() {
            self.marks.sent = self.since_request();
        }
        self.line('>', &describe(r));
        if r.header.record_type == rt::GET_VALUES {
            self.pairs(r.content);
        } else if r.header.record_type == rt::PARAMS {
            self.params.extend_from_slice(r.content);
            if r.content.is_empty() {
                let stream = std::mem::take(&mut self.params);
                self.pairs(&stream);
            }
        }
    }

    fn received(&mut self, r: Record<'_>) {
        self.marks.first = self.marks.first.or(self.since_request());
        self.line('<', &describe(r));
        if r.header.record_type == rt::GET_VALUES_RESULT {
            self.pairs(r.content);
        }
        for problem in problems(r, self.stdout_ended) {
            self.line('!', &problem);
        }
        if r.header.request_id != REQUEST_ID {
            return;
        }
        match r.header.record_type {
            rt::STDOUT if r.content.is_empty() => self.stdout_ended = true,
            rt::STDOUT => self.stdout += r.content.len() as u64,
            rt::END_REQUEST => self.marks.end = self.since_request(),
            _ => {}
        }
    }

    fn closed(&self, partial: usize) {
        self.line('<', "end of stream: the application closed the connection");
        let mut problem = String::from("the connection closed before END_REQUEST");
        if partial > 0 {
            let _ = write!(
                problem,
                ", in the middle of a record ({partial} bytes of it had arrived)"
            );
        }
        self.line('!', &problem);
    }

    /// Prints the pairs of a PARAMS or GET_VALUES stream.
    fn pairs(&self, stream: &[u8]) {
        for pair in Pairs::new(stream, u32::MAX) {
            match pair {
                Ok((name, value)) => self.line(' ', &format!("{}={}", esc(name), esc(value))),
                Err(e) => self.line('!', &format!("the name-value pairs are malformed: {e}")),
            }
        }
    }

    /// The `--timing` line for request number `n`.
    pub(crate) fn timing(&self, n: u32) -> String {
        let m = self.marks;
        let mut s = format!("timing of request {n}:");
        let marks = [
            ("connected", m.connect),
            ("request sent", m.sent),
            ("first record", m.first),
            ("END_REQUEST", m.end),
        ];
        for (name, mark) in marks {
            if let Some(d) = mark {
                let _ = write!(s, " {name} {:.3} ms,", d.as_secs_f64() * 1000.0);
            }
        }
        s.pop();
        s
    }
}

fn type_name(t: u8) -> String {
    let name = match t {
        rt::BEGIN_REQUEST => "BEGIN_REQUEST",
        rt::ABORT_REQUEST => "ABORT_REQUEST",
        rt::END_REQUEST => "END_REQUEST",
        rt::PARAMS => "PARAMS",
        rt::STDIN => "STDIN",
        rt::STDOUT => "STDOUT",
        rt::STDERR => "STDERR",
        rt::DATA => "DATA",
        rt::GET_VALUES => "GET_VALUES",
        rt::GET_VALUES_RESULT => "GET_VALUES_RESULT",
        rt::UNKNOWN_TYPE => "UNKNOWN_TYPE",
        other => return format!("type {other}"),
    };
    name.to_owned()
}

/// One line for a record: type, id, lengths, and its content in brief.
fn describe(r: Record<'_>) -> String {
    let h = r.header;
    let mut s = format!(
        "{:<17} id={} len={} pad={}",
        type_name(h.record_type),
        h.request_id,
        h.content_len,
        h.padding_len
    );
    let detail = match h.record_type {
        rt::BEGIN_REQUEST => BeginRequest::decode(r.content).ok().map(begin_detail),
        rt::END_REQUEST => EndRequest::decode(r.content).ok().map(end_detail),
        rt::UNKNOWN_TYPE => r.content.first().map(|t| format!("type={t}")),
        rt::GET_VALUES | rt::GET_VALUES_RESULT => None,
        _ if r.content.is_empty() => Some("(end of stream)".to_owned()),
        rt::PARAMS => None,
        _ => Some(preview(r.content)),
    };
    if let Some(d) = detail {
        let _ = write!(s, "  {d}");
    }
    s
}

fn begin_detail(b: BeginRequest) -> String {
    let role = match b.role() {
        Some(Role::Responder) => "RESPONDER".to_owned(),
        Some(Role::Authorizer) => "AUTHORIZER".to_owned(),
        Some(Role::Filter) => "FILTER".to_owned(),
        None => b.role.to_string(),
    };
    let flags = if b.keep_conn() { "KEEP_CONN" } else { "0" };
    format!("role={role} flags={flags}")
}

fn end_detail(e: EndRequest) -> String {
    let status = match Ps::try_from(e.protocol_status) {
        Ok(Ps::RequestComplete) => "REQUEST_COMPLETE".to_owned(),
        Ok(Ps::CantMpxConn) => "CANT_MPX_CONN".to_owned(),
        Ok(Ps::Overloaded) => "OVERLOADED".to_owned(),
        Ok(Ps::UnknownRole) => "UNKNOWN_ROLE".to_owned(),
        Err(other) => other.to_string(),
    };
    format!("app_status={} protocol_status={status}", e.app_status)
}

/// The start of a stream's content, quoted and escaped.
fn preview(content: &[u8]) -> String {
    const MAX: usize = 60;
    let more = if content.len() > MAX { "..." } else { "" };
    format!("\"{}\"{more}", esc(&content[..content.len().min(MAX)]))
}

/// Bytes as text, with anything unprintable escaped.
fn esc(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// What is wrong with a record the application sent.
fn problems(r: Record<'_>, stdout_ended: bool) -> Vec<String> {
    let h = r.header;
    let t = h.record_type;
    let name = type_name(t);
    let mut found = Vec::new();
    if h.record_len() % 8 != 0 {
        found.push(
            "not padded to a multiple of 8 bytes: the next record starts off the 8-byte \
             boundary the spec recommends, which libfcgi's cgi-fcgi misreads"
                .to_owned(),
        );
    }
    let management = matches!(t, rt::GET_VALUES_RESULT | rt::UNKNOWN_TYPE);
    if management && h.request_id != NULL_REQUEST_ID {
        found.push(format!("{name} must carry request id 0"));
    } else if !management && h.request_id != REQUEST_ID {
        found.push(format!(
            "request id {}, but the request is {REQUEST_ID}: a web server ignores this record",
            h.request_id
        ));
    }
    if matches!(
        t,
        rt::BEGIN_REQUEST | rt::ABORT_REQUEST | rt::PARAMS | rt::STDIN
    ) || matches!(t, rt::DATA | rt::GET_VALUES)
    {
        found.push(format!("{name} is a record only a web server sends"));
    } else if t > rt::UNKNOWN_TYPE {
        found.push(format!("record {name} is not in the FastCGI spec"));
    }
    if t == rt::END_REQUEST && r.content.len() != EndRequest::LEN {
        found.push("END_REQUEST must carry 8 bytes".to_owned());
    }
    if t == rt::STDOUT && stdout_ended {
        found.push("STDOUT after the empty record that ended the stream".to_owned());
    }
    found
}

fn bad_header(bytes: &[u8; HEADER_LEN]) -> String {
    format!(
        "version {} in a record header, and FastCGI has only version 1",
        bytes[0]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Header;

    fn rec(t: u8, id: u16, content: &[u8], pad: u8) -> Record<'_> {
        let mut header = Header::new(t, id, content.len() as u16);
        header.padding_len = pad;
        Record { header, content }
    }

    #[test]
    fn problems_cases() {
        let end = [0u8; 8];
        let cases: [(Record<'_>, bool, &[&str]); 8] = [
            (rec(rt::STDOUT, 1, b"12345", 3), false, &[]),
            (rec(rt::STDOUT, 1, b"12345", 0), false, &["not padded"]),
            (rec(rt::STDOUT, 7, b"12345678", 0), false, &["request id 7"]),
            (rec(rt::END_REQUEST, 1, &end, 0), false, &[]),
            (
                rec(rt::END_REQUEST, 1, &end[..5], 3),
                false,
                &["must carry 8 bytes"],
            ),
            (rec(rt::UNKNOWN_TYPE, 1, &end, 0), false, &["request id 0"]),
            (
                rec(rt::STDIN, 1, &end, 0),
                false,
                &["only a web server sends"],
            ),
            (
                rec(rt::STDOUT, 1, &end, 0),
                true,
                &["after the empty record"],
            ),
        ];
        for (r, ended, want) in cases {
            let got = problems(r, ended);
            assert_eq!(got.len(), want.len(), "{r:?}: {got:?}");
            for (g, w) in got.iter().zip(want) {
                assert!(g.contains(w), "{r:?}: {g}");
            }
        }
    }

    #[test]
    fn describe_shows_the_content_in_brief() {
        let begin = BeginRequest { role: 1, flags: 1 }.encode();
        let cases = [
            (
                rec(rt::BEGIN_REQUEST, 1, &begin, 0),
                "role=RESPONDER flags=KEEP_CONN",
            ),
            (
                rec(rt::STDOUT, 1, b"Status: 200\r\n", 3),
                "\"Status: 200\\r\\n\"",
            ),
            (rec(rt::STDIN, 1, b"", 0), "(end of stream)"),
            (rec(42, 1, b"", 0), "type 42"),
        ];
        for (r, want) in cases {
            assert!(describe(r).contains(want), "{}", describe(r));
        }
        assert!(describe(rec(rt::STDOUT, 1, &[b'x'; 100], 4)).ends_with("xx\"..."));
    }
}
