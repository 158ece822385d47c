//! The one record dispatch of a connection, used both while a request's
//! params arrive ([`gather`](super::gather)) and while its handler reads
//! the body ([`body`](super::body)).
//!
//! [`classify`] decides what a record is, given the request in progress;
//! [`dispatch`] does what the protocol asks of the connection itself
//! (answers management records, refuses a second request or an unplayed
//! role) and hands the caller only what concerns its request, as an
//! [`Event`].
//!
//! A refused authorizer request is also denied: see [`refuse_request`].

use std::io::IoSlice;

use super::{Config, Fault, Transport, output};
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
        ABORT_REQUEST | PARAMS | STDIN if active.is_some_and(|a| a.id == h.request_id) => {
            Kind::Ours
        }
        // Only a filter has a data stream (the spec, 6.4); for the other
        // roles data records are ignored.
        DATA if active.is_some_and(|a| a.id == h.request_id && a.role == Role::Filter) => {
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
            let role = BeginRequest::decode(rec.content)
                .ok()
                .and_then(|b| b.role());
            refuse_request(io, h.request_id, role, ProtocolStatus::CantMpxConn)?;
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
        role => {
            refuse_request(io, h.request_id, role, ProtocolStatus::UnknownRole)?;
            Ok(Event::Refused {
                keep_conn: begin.keep_conn(),
            })
        }
    }
}

/// Refuses request `id` of `role` with `status`.
///
/// An authorizer request is denied too: a `403` response goes before the
/// end-request record. The spec has a web server deny access on any
/// status but 200 (section 6.3), but lighttpd reads an authorizer answer
/// without a `Status:` line as 200 and ignores the protocol status, so a
/// bare refusal would grant access to everything the authorizer guards.
/// The end-request still says why (`FCGI_UNKNOWN_ROLE`, `FCGI_CANT_MPX_CONN`)
/// for web servers that read it.
pub(crate) fn refuse_request(
    io: &dyn Transport,
    id: u16,
    role: Option<Role>,
    status: ProtocolStatus,
) -> std::io::Result<()> {
    if role == Some(Role::Authorizer) {
        return output::deny(io, id, status);
    }
    refuse(io, id, status)
}

/// Ends request `id` at once with an end-request record.
pub(crate) fn refuse(io: &dyn Transport, id: u16, status: ProtocolStatus) -> std::io::Result<()> {
    let rec = EndRequest::new(0, status).record(id);
    io.write_all(&mut [IoSlice::new(&rec)])
}

/// Answers a management record: `FCGI_GET_VALUES` with the names asked for
/// that we know, anything else with `FCGI_UNKNOWN_TYPE`.
fn management(io: &dyn Transport, h: &Header, content: &[u8], cfg: &Config) -> Result<(), Fault> {
    if h.record_type != record_type::GET_VALUES {
        let reply = UnknownType {
            record_type: h.record_type,
        }
        .record();
        return Ok(io.write_all(&mut [IoSlice::new(&reply)])?);
    }
    let mut body = Vec::with_capacity(96);
    let workers = cfg.workers().to_string();
    for pair in Pairs::new(content, cfg.max_params_bytes as u32) {
        let (name, _) = pair?;
        let value = match name {
            protocol::value_name::MAX_CONNS | protocol::value_name::MAX_REQS => workers.as_bytes(),
            protocol::value_name::MPXS_CONNS if cfg.multiplex > 1 => b"1",
            protocol::value_name::MPXS_CONNS => b"0",
            _ => continue,
        };
        protocol::encode_pair(&mut body, name, value);
    }
    body.truncate(protocol::MAX_ALIGNED_CONTENT_LEN);
    let mut reply = Vec::with_capacity(body.len() + 16);
    protocol::push_record(&mut reply, record_type::GET_VALUES_RESULT, 0, &body);
    Ok(io.write_all(&mut [IoSlice::new(&reply)])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESPONDING: Active = Active {
        id: 1,
        role: Role::Responder,
        keep_conn: true,
    };
    const FILTERING: Active = Active {
        role: Role::Filter,
        ..RESPONDING
    };

    #[test]
    fn classify_cases() {
        use record_type::*;
        let (active, filter) = (RESPONDING, FILTERING);
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
            (h(DATA, 1), Some(filter), Kind::Ours),
            (h(DATA, 2), Some(filter), Kind::Ignore),
            (h(DATA, 1), Some(active), Kind::Ignore),
            (h(DATA, 1), None, Kind::Ignore),
            (h(STDOUT, 1), Some(active), Kind::Invalid),
            (h(END_REQUEST, 5), None, Kind::Invalid),
            (h(200, 1), Some(active), Kind::Ignore),
        ];
        for (header, act, want) in cases {
            assert_eq!(classify(&header, act.as_ref()), want, "{header:?} {act:?}");
        }
    }

    /// The types of the records in `out`, and the protocol status of its
    /// end-request record, if any.
    fn written(out: &[u8]) -> (Vec<u8>, Option<u8>) {
        let (mut types, mut status, mut at) = (Vec::new(), None, 0);
        while let Some((rec, used)) = protocol::decode_record(&out[at..]).unwrap() {
            types.push(rec.header.record_type);
            if rec.header.record_type == record_type::END_REQUEST {
                status = Some(EndRequest::decode(rec.content).unwrap().protocol_status);
            }
            at += used;
        }
        (types, status)
    }

    #[test]
    fn dispatch_answers_what_concerns_the_connection() {
        use crate::memio::Mem;
        use record_type::*;
        let (active, filter) = (RESPONDING, FILTERING);
        let cfg = Config::default();
        let authorizer = BeginRequest { role: 2, flags: 1 }.encode();
        let filtering = BeginRequest { role: 3, flags: 1 }.encode();
        let rec = |t, id, content| Record {
            header: Header::new(t, id, 0),
            content,
        };
        let (cant_mpx, unknown_role) = (Some(1), Some(3));
        let denied = [STDERR, STDOUT, STDOUT, END_REQUEST];
        // (record, request in progress, event, what was written back:
        // record types and end-request status)
        type Written<'t> = (&'t [u8], Option<u8>);
        let cases: [(Record<'_>, Option<Active>, Event<'_>, Written<'_>); 9] = [
            (
                rec(STDIN, 1, b"x"),
                Some(active),
                Event::Stream(Stream::Stdin, b"x"),
                (&[], None),
            ),
            (
                rec(DATA, 1, b""),
                Some(filter),
                Event::Stream(Stream::Data, b""),
                (&[], None),
            ),
            // A responder has no data stream.
            (
                rec(DATA, 1, b"x"),
                Some(active),
                Event::Nothing,
                (&[], None),
            ),
            (
                rec(ABORT_REQUEST, 1, b""),
                Some(active),
                Event::Abort,
                (&[], None),
            ),
            // A second authorizer request, or one for a role not played:
            // refused, and denied too, so that no web server grants.
            (
                rec(BEGIN_REQUEST, 2, &authorizer),
                Some(active),
                Event::Nothing,
                (&denied, cant_mpx),
            ),
            (
                rec(BEGIN_REQUEST, 2, &authorizer),
                None,
                Event::Refused { keep_conn: true },
                (&denied, unknown_role),
            ),
            // Other roles are refused with the end-request alone.
            (
                rec(BEGIN_REQUEST, 2, &filtering),
                Some(active),
                Event::Nothing,
                (&[END_REQUEST], cant_mpx),
            ),
            (
                rec(BEGIN_REQUEST, 2, &filtering),
                None,
                Event::Refused { keep_conn: true },
                (&[END_REQUEST], unknown_role),
            ),
            (
                rec(99, 0, b""),
                None,
                Event::Nothing,
                (&[UNKNOWN_TYPE], None),
            ),
        ];
        for (record, act, want, (types, status)) in cases {
            let io = Mem::new(b"", &[], false);
            let event = dispatch(&io, &cfg, record, act.as_ref()).unwrap();
            assert_eq!(event, want, "{record:?}");
            let out = io.out.into_inner();
            assert_eq!(written(&out), (types.to_vec(), status), "{record:?}");
        }
    }
}
