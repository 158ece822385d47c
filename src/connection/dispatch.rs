//! The one record dispatch of a connection, used both while a request's
//! params arrive ([`gather`](super::gather)) and while its handler reads
//! the body ([`body`](super::body)).
//!
//! [`classify`] decides what a record is, given the request in progress;
//! [`dispatch`] does what the protocol asks of the connection itself
//! (answers management records, refuses a second request or an unplayed
//! role) and hands the caller only what concerns its request, as an
//! [`Event`].

use std::io::IoSlice;

use super::{Config, Fault, Transport, write_all};
use crate::protocol::{
    self, BeginRequest, EndRequest, Header, Pairs, ProtocolStatus, Record, Role, UnknownType,
    record_type,
};

/// The request a connection is serving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Active {
    pub(crate) id: u16,
    pub(crate) role: Role,
    pub(crate) keep_conn: bool,
}

/// How a record relates to the request in progress.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Request id 0: a management record.
    Management,
    /// A begin-request with no request in progress.
    Begin,
    /// A begin-request while another request is in progress.
    Concurrent,
    /// A record for the request in progress.
    Ours,
    /// A record for an inactive request id, or of a type we do not know.
    Ignore,
    /// A type that only an application sends: the peer is confused.
    Invalid,
}

/// What a record is, given the request in progress (if any).
pub(crate) fn classify(h: &Header, active: Option<&Active>) -> Kind {
    use record_type::*;
    match h.record_type {
        END_REQUEST | STDOUT | STDERR | GET_VALUES_RESULT | UNKNOWN_TYPE if h.request_id != 0 => {
            Kind::Invalid
        }
        _ if h.request_id == protocol::NULL_REQUEST_ID => Kind::Management,
        BEGIN_REQUEST if active.is_some() => Kind::Concurrent,
        BEGIN_REQUEST => Kind::Begin,
        ABORT_REQUEST | PARAMS | STDIN | DATA if active.is_some_and(|a| a.id == h.request_id) => {
            Kind::Ours
        }
        _ => Kind::Ignore,
    }
}

/// The streams of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    /// `FCGI_PARAMS`: the CGI environment.
    Params,
    /// `FCGI_STDIN`: the request body.
    Stdin,
    /// `FCGI_DATA`: the filter role's second input.
    Data,
}

/// What a record means for the request in progress, once [`dispatch`]
/// has done what the protocol asks of the connection itself.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event<'r> {
    /// A new request, of a role the application plays.
    Begin(Active),
    /// A new request of a role the application does not play, answered
    /// with `FCGI_UNKNOWN_ROLE`; whether the peer keeps the connection open.
    Refused { keep_conn: bool },
    /// Content of one of the active request's streams; empty content ends
    /// that stream.
    Stream(Stream, &'r [u8]),
    /// The web server aborted the active request.
    Abort,
    /// Nothing for the request: a management record answered, a second
    /// request refused, a record for an inactive id ignored.
    Nothing,
}

/// Handles one record on a connection whose request in progress is
/// `active`.
pub(crate) fn dispatch<'r>(
    io: &dyn Transport,
    cfg: &Config,
    rec: Record<'r>,
    active: Option<&Active>,
) -> Result<Event<'r>, Fault> {
    let h = rec.header;
    Ok(match classify(&h, active) {
        Kind::Invalid => return Err(invalid_type(&h)),
        Kind::Management => {
            management(io, &h, rec.content, cfg)?;
            Event::Nothing
        }
        Kind::Concurrent => {
            refuse(io, h.request_id, ProtocolStatus::CantMpxConn)?;
            Event::Nothing
        }
        Kind::Begin => begin(io, &h, rec.content, cfg)?,
        Kind::Ours => match h.record_type {
            record_type::PARAMS => Event::Stream(Stream::Params, rec.content),
            record_type::STDIN => Event::Stream(Stream::Stdin, rec.content),
            record_type::DATA => Event::Stream(Stream::Data, rec.content),
            _ => Event::Abort,
        },
        Kind::Ignore => Event::Nothing,
    })
}

/// The fault for a record type that only applications send.
fn invalid_type(h: &Header) -> Fault {
    Fault::Protocol(format!(
        "record type {} (sent only by applications) from the web server",
        h.record_type
    ))
}

/// Starts a request, or refuses a role that is not played.
fn begin<'r>(
    io: &dyn Transport,
    h: &Header,
    content: &[u8],
    cfg: &Config,
) -> Result<Event<'r>, Fault> {
    let begin = BeginRequest::decode(content)?;
    match begin.role() {
        Some(role) if cfg.roles.plays(role) => Ok(Event::Begin(Active {
            id: h.request_id,
            role,
            keep_conn: begin.keep_conn(),
        })),
        _ => {
            refuse(io, h.request_id, ProtocolStatus::UnknownRole)?;
            Ok(Event::Refused {
                keep_conn: begin.keep_conn(),
            })
        }
    }
}

/// Ends request `id` at once with an end-request record.
pub(crate) fn refuse(io: &dyn Transport, id: u16, status: ProtocolStatus) -> std::io::Result<()> {
    let rec = EndRequest::new(0, status).record(id);
    write_all(io, &mut [IoSlice::new(&rec)])
}

/// Answers a management record: `FCGI_GET_VALUES` with the names asked for
/// that we know, anything else with `FCGI_UNKNOWN_TYPE`.
fn management(io: &dyn Transport, h: &Header, content: &[u8], cfg: &Config) -> Result<(), Fault> {
    if h.record_type != record_type::GET_VALUES {
        let reply = UnknownType {
            record_type: h.record_type,
        }
        .record();
        return Ok(write_all(io, &mut [IoSlice::new(&reply)])?);
    }
    let mut body = Vec::with_capacity(96);
    let workers = cfg.workers().to_string();
    for pair in Pairs::new(content, cfg.max_params_bytes as u32) {
        let (name, _) = pair?;
        let value = match name {
            protocol::value_name::MAX_CONNS | protocol::value_name::MAX_REQS => workers.as_bytes(),
            protocol::value_name::MPXS_CONNS => b"0",
            _ => continue,
        };
        protocol::encode_pair(&mut body, name, value);
    }
    body.truncate(protocol::MAX_ALIGNED_CONTENT_LEN);
    let mut reply = Vec::with_capacity(body.len() + 16);
    protocol::push_record(&mut reply, record_type::GET_VALUES_RESULT, 0, &body);
    Ok(write_all(io, &mut [IoSlice::new(&reply)])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_cases() {
        use record_type::*;
        let active = Active {
            id: 1,
            role: Role::Responder,
            keep_conn: true,
        };
        let h = |t, id| Header::new(t, id, 0);
        let cases = [
            (h(GET_VALUES, 0), None, Kind::Management),
            (h(BEGIN_REQUEST, 0), None, Kind::Management),
            (h(BEGIN_REQUEST, 1), None, Kind::Begin),
            (h(BEGIN_REQUEST, 2), Some(active), Kind::Concurrent),
            (h(STDIN, 1), Some(active), Kind::Ours),
            (h(STDIN, 2), Some(active), Kind::Ignore),
            (h(STDIN, 1), None, Kind::Ignore),
            (h(ABORT_REQUEST, 1), Some(active), Kind::Ours),
            (h(STDOUT, 1), Some(active), Kind::Invalid),
            (h(END_REQUEST, 5), None, Kind::Invalid),
            (h(200, 1), Some(active), Kind::Ignore),
        ];
        for (header, act, want) in cases {
            assert_eq!(classify(&header, act.as_ref()), want, "{header:?} {act:?}");
        }
    }

    #[test]
    fn dispatch_answers_what_concerns_the_connection() {
        use crate::memio::Mem;
        use record_type::*;
        let active = Active {
            id: 1,
            role: Role::Responder,
            keep_conn: true,
        };
        let cfg = Config::default();
        let begin_body = BeginRequest { role: 2, flags: 1 }.encode();
        let rec = |t, id, content| Record {
            header: Header::new(t, id, 0),
            content,
        };
        // (record, request in progress, event, what was written back)
        let cases: [(Record<'_>, Option<Active>, Event<'_>, Option<u8>); 6] = [
            (
                rec(STDIN, 1, b"x"),
                Some(active),
                Event::Stream(Stream::Stdin, b"x"),
                None,
            ),
            (
                rec(DATA, 1, b""),
                Some(active),
                Event::Stream(Stream::Data, b""),
                None,
            ),
            (rec(ABORT_REQUEST, 1, b""), Some(active), Event::Abort, None),
            (
                rec(BEGIN_REQUEST, 2, &begin_body),
                Some(active),
                Event::Nothing,
                Some(END_REQUEST),
            ),
            (
                rec(BEGIN_REQUEST, 2, &begin_body),
                None,
                Event::Refused { keep_conn: true },
                Some(END_REQUEST),
            ),
            (rec(99, 0, b""), None, Event::Nothing, Some(UNKNOWN_TYPE)),
        ];
        for (record, act, want, reply) in cases {
            let io = Mem::new(b"", &[], false);
            let event = dispatch(&io, &cfg, record, act.as_ref()).unwrap();
            assert_eq!(event, want, "{record:?}");
            let out = io.out.into_inner();
            assert_eq!(out.get(1).copied(), reply, "{record:?}");
        }
    }
}
