//! How `fcgi` ends: its exit codes, and the one plain sentence that says
//! what went wrong.

use std::io;
use std::time::Duration;

use crate::protocol::{self, EndRequest, ProtocolStatus};

/// The exit status of `fcgi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// A complete response (or, for `values`, an answer).
    Complete,
    /// With `--fail`, a status of 400 or more; `status` and `health`: not 200.
    Status,
    /// No connection could be made.
    Connect,
    /// No complete response in time.
    Timeout,
    /// A protocol error, or the connection closed before END_REQUEST.
    Protocol,
    /// The command line is wrong.
    Usage,
    /// A file or program that the command line names cannot be used.
    Input,
    /// The response cannot be written to standard output.
    Output,
}

/// Every exit code with its meaning, for the help text.
pub(crate) const EXIT_CODES: [(Exit, &str); 8] = [
    (Exit::Complete, "a complete response"),
    (
        Exit::Status,
        "with --fail, a status of 400 or more; status and health: not 200; bench: a \
         request failed",
    ),
    (Exit::Connect, "cannot connect"),
    (Exit::Timeout, "no complete response within --timeout"),
    (
        Exit::Protocol,
        "a protocol error, or the connection closed before END_REQUEST",
    ),
    (Exit::Usage, "the command line is wrong"),
    (
        Exit::Input,
        "a file or program named on the command line cannot be used",
    ),
    (Exit::Output, "the response cannot be written to stdout"),
];

impl Exit {
    /// The process exit code.
    pub(crate) fn code(self) -> i32 {
        match self {
            Exit::Complete => 0,
            Exit::Status => 1,
            Exit::Connect => 2,
            Exit::Timeout => 3,
            Exit::Protocol => 4,
            Exit::Usage => 64,
            Exit::Input => 66,
            Exit::Output => 74,
        }
    }
}

/// A failure: how `fcgi` exits, and the sentence that it prints.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) exit: Exit,
    pub(crate) sentence: String,
}

impl Failure {
    pub(crate) fn new(exit: Exit, sentence: impl Into<String>) -> Failure {
        Failure {
            exit,
            sentence: sentence.into(),
        }
    }

    pub(crate) fn usage(sentence: impl Into<String>) -> Failure {
        Failure::new(Exit::Usage, sentence)
    }
}

/// Prints the failure's sentence on stderr.
pub(crate) fn say(f: &Failure) {
    eprintln!("fcgi: {}", f.sentence);
    if f.exit == Exit::Usage {
        eprintln!("fcgi: 'fcgi help' lists the commands, 'fcgi help COMMAND' their flags");
    }
}

/// What had arrived of a response when it failed.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Progress {
    /// Bytes of the STDOUT stream, headers included.
    pub(crate) stdout: u64,
    /// Whether the header block was complete.
    pub(crate) head: bool,
    /// Bytes of the body.
    pub(crate) body: u64,
}

/// The sentence for a connection that could not be made.
pub(crate) fn connect_failed(addr: &str, e: &io::Error) -> Failure {
    let why = match e.kind() {
        io::ErrorKind::NotFound => "there is no such socket file".to_owned(),
        io::ErrorKind::ConnectionRefused => {
            "nothing is listening there (connection refused)".to_owned()
        }
        io::ErrorKind::PermissionDenied => "permission denied: the socket's mode or its \
             directory does not let this user in (try as the web server's user)"
            .to_owned(),
        io::ErrorKind::TimedOut => "the connection was not made in time".to_owned(),
        _ => e.to_string(),
    };
    Failure::new(Exit::Connect, format!("cannot connect to {addr}: {why}"))
}

/// Whether `e` says that the peer went away.
pub(crate) fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// The sentence for a request whose response failed with `e`, after
/// `got` had arrived (`None` for a management request).
pub(crate) fn response_failed(e: &io::Error, got: Option<Progress>, timeout: Duration) -> Failure {
    if is_timeout(e) {
        return Failure::new(Exit::Timeout, timed_out(got, timeout));
    }
    if is_closed(e) {
        return Failure::new(Exit::Protocol, closed_early(got));
    }
    let inner = e
        .get_ref()
        .and_then(|i| i.downcast_ref::<protocol::Error>());
    let sentence = match (inner, got) {
        (Some(p), _) => bad_record(p),
        (None, Some(g)) if g.stdout == 0 && e.kind() == io::ErrorKind::InvalidData => {
            "the application ended the request without sending any header".to_owned()
        }
        (None, _) if e.kind() == io::ErrorKind::InvalidData => {
            format!("the application's answer is malformed: {e}")
        }
        (None, _) => format!("talking to the application failed: {e}"),
    };
    Failure::new(Exit::Protocol, sentence)
}

fn timed_out(got: Option<Progress>, timeout: Duration) -> String {
    let secs = timeout.as_secs_f64();
    let had = match got.unwrap_or_default() {
        Progress { stdout: 0, .. } => "nothing".to_owned(),
        Progress { head: false, .. } => "part of the headers".to_owned(),
        Progress { body, .. } => format!("the headers and {body} body bytes"),
    };
    format!("no complete answer within {secs} s (--timeout): the application had sent {had}")
}

fn closed_early(got: Option<Progress>) -> String {
    match got {
        None => "the application closed the connection without answering".to_owned(),
        Some(Progress { stdout: 0, .. }) => "the application closed the connection before \
             sending any header (what web servers report as \"premature end of script headers\")"
            .to_owned(),
        Some(Progress { head: false, .. }) => {
            "the application closed the connection in the middle of the response headers".to_owned()
        }
        Some(Progress { body, .. }) => format!(
            "the application closed the connection after {body} body bytes, \
             before END_REQUEST: the response is cut off"
        ),
    }
}

fn bad_record(e: &protocol::Error) -> String {
    match e {
        protocol::Error::Version(v) => format!(
            "the application sent a record header with version {v}, and FastCGI has only \
             version 1: it does not speak FastCGI, or its records are out of step"
        ),
        other => format!("the application broke the protocol: {other}"),
    }
}

/// The sentence for an END_REQUEST that refuses the request.
pub(crate) fn refused(end: &EndRequest) -> Failure {
    let why = match ProtocolStatus::try_from(end.protocol_status) {
        Ok(ProtocolStatus::CantMpxConn) => {
            "FCGI_CANT_MPX_CONN (it serves one request at a time on a connection)"
        }
        Ok(ProtocolStatus::Overloaded) => "FCGI_OVERLOADED (it is out of some resource)",
        Ok(ProtocolStatus::UnknownRole) => "FCGI_UNKNOWN_ROLE (it does not play this role)",
        _ => "a protocol status the spec does not define",
    };
    Failure::new(
        Exit::Protocol,
        format!("the application refused the request: {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_code_and_sentence() {
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        let timeout = Duration::from_secs(1);
        let none = Progress::default();
        let head = Progress {
            stdout: 40,
            head: false,
            body: 0,
        };
        let cut = Progress {
            stdout: 50,
            head: true,
            body: 7,
        };
        let version = io::Error::new(io::ErrorKind::InvalidData, protocol::Error::Version(2));
        let cases: [(io::Error, Option<Progress>, Exit, &str); 7] = [
            (
                eof,
                Some(none),
                Exit::Protocol,
                "premature end of script headers",
            ),
            (
                io::Error::from(io::ErrorKind::ConnectionReset),
                Some(head),
                Exit::Protocol,
                "in the middle of the response headers",
            ),
            (
                io::Error::from(io::ErrorKind::UnexpectedEof),
                Some(cut),
                Exit::Protocol,
                "after 7 body bytes",
            ),
            (
                io::Error::from(io::ErrorKind::TimedOut),
                Some(none),
                Exit::Timeout,
                "within 1 s (--timeout): the application had sent nothing",
            ),
            (
                io::Error::from(io::ErrorKind::WouldBlock),
                Some(cut),
                Exit::Timeout,
                "the headers and 7 body bytes",
            ),
            (version, Some(none), Exit::Protocol, "version 2"),
            (
                io::Error::new(io::ErrorKind::InvalidData, "x"),
                Some(none),
                Exit::Protocol,
                "without sending any header",
            ),
        ];
        for (e, got, exit, part) in cases {
            let f = response_failed(&e, got, timeout);
            assert_eq!(f.exit, exit, "{e:?}");
            assert!(f.sentence.contains(part), "{e:?}: {}", f.sentence);
        }
    }

    #[test]
    fn codes_are_distinct() {
        let mut codes: Vec<i32> = EXIT_CODES.iter().map(|(e, _)| e.code()).collect();
        codes.dedup();
        assert_eq!(codes, [0, 1, 2, 3, 4, 64, 66, 74]);
    }
}
